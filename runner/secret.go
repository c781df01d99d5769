package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/internal/jsontext"
	"github.com/lifeos/lifeos/internal/lazyre"
)

// Secrets (API tokens, passwords) come from the environment, into params
// declared `secret: true`, or inside a URL (http://user:pw@host). They
// must reach the steps that use them and nothing else: not run records,
// --json, logs, reports or the cachehash debug output, and not cache keys
// either, where a new token would re-run every step for the same result.
// The redactor replaces each secret value with a placeholder that names
// its param, wherever such text goes.

// redactor replaces secret values in text.
type redactor struct {
	names    map[string]bool // secret params
	replacer *strings.Replacer
	values   []string // the secret values replaced, longest first
}

// minSecretLen is the shortest secret value replaced in free text: a
// shorter one ("1", "true") would mangle every line that contains it, and
// is no secret. Its param is still recorded as a placeholder.
const minSecretLen = 4

// urlPassword matches the password of a URL's userinfo.
var urlPassword = lazyre.New(`(://[^/@:\s"]*):[^/@\s"]*@`)

func newRedactor(decl []*Param, values map[string]any) *redactor {
	r := &redactor{names: map[string]bool{}}
	type secret struct{ name, value string }
	var secrets []secret
	for _, p := range decl {
		if !p.Secret {
			continue
		}
		r.names[p.Name] = true
		// A token of digits arrives typed as a number; it is text all
		// the same wherever it is printed.
		if v := values[p.Name]; v != nil {
			if s := fmt.Sprint(v); len(s) >= minSecretLen {
				secrets = append(secrets, secret{p.Name, s})
			}
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.SliceStable(secrets, func(i, j int) bool { return len(secrets[i].value) > len(secrets[j].value) })
	var pairs []string
	for _, s := range secrets {
		pairs = append(pairs, s.value, "<secret "+s.name+">")
		r.values = append(r.values, s.value)
	}
	if len(pairs) > 0 {
		r.replacer = strings.NewReplacer(pairs...)
	}
	return r
}

// String redacts secret values and URL passwords in s.
func (r *redactor) String(s string) string {
	if r != nil && r.replacer != nil {
		s = r.replacer.Replace(s)
	}
	if strings.Contains(s, "@") {
		s = urlPassword().ReplaceAllString(s, "$1:xxxxx@")
	}
	return s
}

// Params returns the params as they may be recorded: secret ones as their
// placeholder, and every string redacted.
func (r *redactor) Params(params map[string]any) map[string]any {
	out := make(map[string]any, len(params))
	for k, v := range params {
		if r != nil && r.names[k] {
			out[k] = "<secret " + k + ">"
			continue
		}
		out[k] = r.Value(v)
	}
	return out
}

// Value redacts every string in a JSON-like value.
func (r *redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.Value(e)
		}
		return out
	}
	return v
}

// JSON redacts the string literals of a JSON text, and nothing else: a
// secret of digits must not rewrite a duration, nor a replacement break
// the syntax.
func (r *redactor) JSON(b []byte) []byte {
	if r.String(string(b)) == string(b) {
		return b // nothing to hide: the common case
	}
	var out []byte
	last := 0
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(b) {
			break
		}
		var s string
		if json.Unmarshal(b[i:j+1], &s) == nil {
			if red := r.String(s); red != s {
				out = jsontext.AppendString(append(out, b[last:i]...), red)
				last = j + 1
			}
		}
		i = j
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// redactWriter redacts what goes through it, write by write: a command
// that prints a token prints it in one write far more often than not.
type redactWriter struct {
	r *redactor
	w io.Writer
}

func (rw redactWriter) Write(p []byte) (int, error) {
	if _, err := rw.w.Write([]byte(rw.r.String(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// copyBufs are the buffers redactWriter.ReadFrom copies through.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// ReadFrom writes what r gives through Write. os/exec copies a command's
// output into a writer that is not a file this way (io.Copy), so two
// things matter here. A secret the output splits across two reads is
// still replaced: the bytes at the end of a read that may begin one wait
// for the next. And the copy goes through a pooled buffer: io.Copy's own
// is 32 KB per command, 30 MB over a foreach of 1,000 commands, where
// each fresh page of heap is a page fault.
func (rw redactWriter) ReadFrom(r io.Reader) (n int64, err error) {
	pooled := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(pooled)
	buf := pooled[:]
	if rw.r != nil && len(rw.r.values) > 0 && 2*len(rw.r.values[0]) > len(buf) {
		// Room for a secret's held beginning and the rest of it.
		buf = make([]byte, 2*len(rw.r.values[0]))
	}
	held := 0 // bytes at the start of buf, kept from the read before
	for {
		m, rerr := r.Read(buf[held:])
		n += int64(m)
		end := held + m
		out := end
		if rerr == nil {
			out -= rw.r.pending(buf[:end])
		}
		if out > 0 {
			if _, err := rw.Write(buf[:out]); err != nil {
				return n, err
			}
		}
		held = copy(buf, buf[out:end])
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// pending is how many bytes at the end of b begin a secret value without
// completing it: the bytes that follow may complete it.
func (r *redactor) pending(b []byte) int {
	if r == nil {
		return 0
	}
	hold := 0
	for _, v := range r.values {
		for k := min(len(v)-1, len(b)); k > hold; k-- {
			if string(b[len(b)-k:]) == v[:k] {
				hold = k
				break
			}
		}
	}
	return hold
}
