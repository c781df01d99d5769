// Package lazyre compiles a package-level regular expression on first use
// rather than at start-up: every command pays for every package's
// initialisation, and most commands use few of these expressions.
package lazyre

import (
	"regexp"
	"sync"
)

// New returns a function that compiles expr once, when first called, and
// panics as regexp.MustCompile does if it is not a valid expression.
func New(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
