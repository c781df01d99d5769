package runner

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/testdir"
)

// A left file matches the patterns pathglob.Walk finds it by when it is
// on disk: itself, a folder above it named as it is, or a glob over files
// (not over folders: "out/*" finds nothing in out/sub).
func TestMatchesLeft(t *testing.T) {
	root := testdir.New(t)
	files := []string{"out/a.size", "out/a.sizes", "out/b.size", "out/sub/a.size", "out/x/y/a.png", "out/x/y/a.jpg", "outer/a.size", "a.txt"}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for _, pat := range []string{"out/a.size", "out", "out/sub", "out/*.size", "out/*", "out/**", "out/**/*.png", "*.txt", "o*", "out/{a,b}.size", "out/?.size"} {
		walked, err := pathglob.Files(root, []string{pat})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if got, want := matchesLeft(pat, f), slices.Contains(walked, f); got != want {
				t.Errorf("matchesLeft(%q, %q) = %v; a walk finds %v", pat, f, got, walked)
			}
		}
	}
}
