package runner

import (
	"io"
	"regexp"
	"sort"
	"strings"
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
}

// urlPassword matches the password of a URL's userinfo.
var urlPassword = regexp.MustCompile(`(://[^/@:\s"]*):[^/@\s"]*@`)

func newRedactor(decl []*Param, values map[string]any) *redactor {
	r := &redactor{names: map[string]bool{}}
	var secrets []*Param
	for _, p := range decl {
		if !p.Secret {
			continue
		}
		r.names[p.Name] = true
		if s, ok := values[p.Name].(string); ok && s != "" {
			secrets = append(secrets, p)
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.SliceStable(secrets, func(i, j int) bool {
		return len(values[secrets[i].Name].(string)) > len(values[secrets[j].Name].(string))
	})
	var pairs []string
	for _, p := range secrets {
		pairs = append(pairs, values[p.Name].(string), "<secret "+p.Name+">")
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
		s = urlPassword.ReplaceAllString(s, "$1:xxxxx@")
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
