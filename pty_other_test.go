//go:build !unix

package main

import "github.com/rogpeppe/go-internal/testscript"

// cmdPty needs a pseudo-terminal: the scenarios that use it skip elsewhere
// ([!unix] skip), so reaching it is a scenario's mistake.
func cmdPty(ts *testscript.TestScript, neg bool, args []string) {
	ts.Fatalf("pty: no pseudo-terminals here; add [!unix] skip to the scenario")
}
