//go:build !unix

package main

import "github.com/rogpeppe/go-internal/testscript"

// cmdPty needs a pseudo-terminal: the scenarios that use it skip elsewhere.
func cmdPty(ts *testscript.TestScript, neg bool, args []string) {
	ts.Skip("no pseudo-terminals here")
}
