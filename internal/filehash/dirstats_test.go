package filehash

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// DirStats gives every file the stamp Stat gives it by its whole path:
// at the root, in folders, with names too long for its stack buffer, and
// in a folder replaced after Reset.
func TestDirStats(t *testing.T) {
	root := testdir.New(t)
	names := []string{"a.txt", "sub/b.png", "sub/deeper/c.txt", "sub/" + strings.Repeat("n", 200) + ".png"}
	for i, n := range names {
		p := filepath.Join(root, filepath.FromSlash(n))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDirStats(root)
	defer d.Reset()
	check := func() {
		t.Helper()
		for _, n := range names {
			got, err := d.Stat(n)
			want, _, werr := Stat(filepath.Join(root, filepath.FromSlash(n)))
			if err != nil || werr != nil || got != want {
				t.Errorf("Stat(%.20s...) = %+v, %v; want %+v, %v", n, got, err, want, werr)
			}
		}
	}
	check()
	for _, missing := range []string{"nope.txt", "sub/nope.txt", "none/x.txt"} {
		if _, err := d.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s): %v, want fs.ErrNotExist", missing, err)
		}
	}
	if _, err := d.Stat("a\x00b.txt"); err == nil {
		t.Error("Stat of a name holding NUL: no error")
	}
	// A folder replaced by another of the same name (new files): found
	// again after Reset.
	sub := filepath.Join(root, "sub")
	if err := os.Rename(sub, filepath.Join(root, "old")); err != nil {
		t.Fatal(err)
	}
	for i, n := range names[1:] {
		p := filepath.Join(root, filepath.FromSlash(n))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat("y", 10+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.Reset()
	check()
}
