package mapfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestRead(t *testing.T) {
	dir := testdir.New(t)
	for _, size := range []int{0, 1, 4095, 4096, 4097, 1 << 20} {
		name := filepath.Join(dir, "f")
		want := bytes.Repeat([]byte("lifeos\n"), size/7+1)[:size]
		if err := os.WriteFile(name, want, 0o666); err != nil {
			t.Fatal(err)
		}
		got, err := Read(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Read of %d bytes: %d bytes, %v", size, len(got), err)
		}
		// Replacing the file by a rename, as its writers do, leaves what
		// was read as it was.
		if err := os.WriteFile(name+".new", []byte("other"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".new", name); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Read of %d bytes changed when the file was replaced", size)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file: %v, want not exist", err)
	}
}
