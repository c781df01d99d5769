package runner

import "testing"

// A left file matches the patterns pathglob.Walk would find it by, were
// it on disk: itself, a folder above it named as it is, or a glob over
// files (not over folders: "out/*" finds nothing in out/sub).
func TestMatchesLeft(t *testing.T) {
	for _, c := range []struct {
		pat, file string
		want      bool
	}{
		{"out/a.size", "out/a.size", true},
		{"out/a.size", "out/a.sizes", false},
		{"out", "out/sub/a.size", true},
		{"out", "outer/a.size", false},
		{"out/*.size", "out/a.size", true},
		{"out/*.size", "out/sub/a.size", false},
		{"out/*", "out/sub/a.size", false}, // a glob matches files, not folders
		{"out/**", "out/sub/a.size", true},
		{"o*", "out/a.size", false},
		{"out/**/*.png", "out/x/y/a.png", true},
		{"out/**/*.png", "out/x/y/a.jpg", false},
		{"*.txt", "out/a.txt", false},
		{"out/{a,b}.size", "out/b.size", true},
	} {
		if got := matchesLeft(c.pat, c.file); got != c.want {
			t.Errorf("matchesLeft(%q, %q) = %v, want %v", c.pat, c.file, got, c.want)
		}
	}
}
