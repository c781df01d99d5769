package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ActionID identifies a step execution: the salted digest of its labelled key
// lines (see runner.NewHash). It is the index of the cache.
type ActionID [sha256.Size]byte

// OutputID is the unsalted SHA-256 of stored bytes, so `sha256sum` agrees with
// it. It names objects in the cache and the results of steps.
type OutputID [sha256.Size]byte

// String returns the full lowercase hex form.
func (id ActionID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for messages.
func (id ActionID) Short() string { return hex.EncodeToString(id[:6]) }

// String returns the full lowercase hex form.
func (id OutputID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for messages.
func (id OutputID) Short() string { return hex.EncodeToString(id[:6]) }

// ParseActionID parses the hex form returned by String.
func ParseActionID(s string) (ActionID, error) {
	var id ActionID
	err := parseHex(id[:], s)
	return id, err
}

// ParseOutputID parses the hex form returned by String.
func ParseOutputID(s string) (OutputID, error) {
	var id OutputID
	err := parseHex(id[:], s)
	return id, err
}

// Sum returns the OutputID of data.
func Sum(data []byte) OutputID { return OutputID(sha256.Sum256(data)) }

func parseHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("invalid id %q: want %d hex digits", s, 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("invalid id %q: %w", s, err)
	}
	return nil
}
