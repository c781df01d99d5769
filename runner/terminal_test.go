package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// TestNotATerminal: what a run's output goes to when nobody watches it
// gets plain lines, not the live display. /dev/null is a character device,
// which an earlier check took for a terminal.
func TestNotATerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(filepath.Join(testdir.New(t), "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, v := range map[string]any{os.DevNull: null, "a file": file, "a pipe": w, "a buffer": &bytes.Buffer{}, "nil": nil} {
		if IsTerminal(v) {
			t.Errorf("%s is taken for a terminal", name)
		}
	}
}
