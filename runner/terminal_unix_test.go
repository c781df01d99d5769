//go:build unix

package runner

import (
	"testing"

	"github.com/creack/pty"
)

// TestPtyIsATerminal: a pseudo-terminal, what a person's shell runs on,
// gets the live display.
func TestPtyIsATerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if !IsTerminal(tty) {
		t.Error("a pty is not taken for a terminal")
	}
}
