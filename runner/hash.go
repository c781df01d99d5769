package runner

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/lifeos/lifeos/internal/manifest"
	"github.com/lifeos/lifeos/runner/cache"
)

// keySalt starts every key. It names the key format, not the lifeos
// version: a new lifeos release must not throw away generated images, so a
// step type bumps its own Version when its results change instead (Go salts
// with the toolchain version because a new compiler changes every output).
const keySalt = "lifeos key-v1"

// Hash builds an ActionID from labelled key lines, Go's buildActionID
// recipe: one line per input, `kind exec`, `param with.count 20`,
// `file data/a.txt <sha256>`. The lines are kept so that `plan` can say
// which one changed and LIFEOS_DEBUG=cachehash=1 can print them.
type Hash struct {
	h     hash.Hash
	lines []string
	debug io.Writer
	name  string
}

// NewHash starts a key for the step (or element) called name.
func NewHash(name string, debug io.Writer) *Hash {
	h := &Hash{h: sha256.New(), debug: debug, name: name}
	fmt.Fprintln(h.h, keySalt)
	return h
}

// Line adds one labelled line. Lines must not contain newlines; values are
// JSON or %q-quoted by callers.
func (h *Hash) Line(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	line = strings.ReplaceAll(line, "\n", `\n`)
	h.lines = append(h.lines, line)
	io.WriteString(h.h, line)
	io.WriteString(h.h, "\n")
	if h.debug != nil {
		fmt.Fprintf(h.debug, "HASH[%s]: %s\n", h.name, line)
	}
}

// Add adds one line made of space-separated fields: the allocation-light
// form of Line for the per-element hot path.
func (h *Hash) Add(fields ...string) {
	n := len(fields)
	for _, f := range fields {
		n += len(f)
	}
	b := make([]byte, 0, n)
	for i, f := range fields {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	line := strings.ReplaceAll(string(b), "\n", `\n`)
	h.lines = append(h.lines, line)
	h.h.Write(b)
	h.h.Write([]byte{'\n'})
	if h.debug != nil {
		fmt.Fprintf(h.debug, "HASH[%s]: %s\n", h.name, line)
	}
}

// Sum returns the ActionID of the lines written so far.
func (h *Hash) Sum() cache.ActionID {
	var id cache.ActionID
	h.h.Sum(id[:0])
	return id
}

// Lines returns the key lines written so far.
func (h *Hash) Lines() []string { return h.lines }

// DebugFlag reports whether LIFEOS_DEBUG sets name (name=1).
func DebugFlag(name string) bool { return debugFlags()[name] }

// debugFlags parses LIFEOS_DEBUG=name=1,name=1 (GODEBUG style).
func debugFlags() map[string]bool {
	flags := map[string]bool{}
	for _, kv := range strings.Split(os.Getenv("LIFEOS_DEBUG"), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && v != "0" {
			flags[k] = true
		}
	}
	return flags
}

// Hasher hashes files through the stat cache sc, for steps (Env.Hash) and
// dataset manifests.
func Hasher(sc *cache.StatCache) manifest.Hasher {
	return func(abs string, look func(io.Reader) error) (manifest.Sum, error) {
		sum, st, looked, err := sc.SumLook(abs, look)
		return manifest.Sum{SHA256: sum.String(), Looked: looked, Stamp: st}, err
	}
}
