// Package filehash computes the SHA-256 of files, with pooled read buffers:
// hashing thousands of small dataset files is otherwise dominated by
// allocating and clearing a fresh 32 KiB io.Copy buffer per file.
package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

var bufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// Sum returns the SHA-256 of the file at path and the number of bytes read.
func Sum(path string) (sum [sha256.Size]byte, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	// Read directly: io.Copy would take *os.File's WriteTo path, which
	// allocates its own buffer.
	for {
		k, rerr := f.Read(*bp)
		h.Write((*bp)[:k])
		n += int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sum, n, fmt.Errorf("hash %s: %w", path, rerr)
		}
	}
	h.Sum(sum[:0])
	return sum, n, nil
}

// Hex is Sum as a hex string, as sha256sum prints it.
func Hex(path string) (string, error) {
	sum, _, err := Sum(path)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}
