package runner

import (
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
		writeFile(t, root, f, "")
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
