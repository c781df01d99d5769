package steps

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// place leaves approved/ and rejected/ holding exactly what is wanted,
// each entry the very file of its source, whatever they held before:
// verdicts that flipped (a swap of two images of one name included),
// images no longer in the batch, junk, and a stale file under a kept name.
func TestPlace(t *testing.T) {
	root := testdir.New(t)
	src := func(name, content string) string {
		p := filepath.Join(root, "src", name)
		os.MkdirAll(filepath.Dir(p), 0o777)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c := src("a.png", "a"), src("b.png", "b"), src("c.png", "c")
	a1, a2 := src("one/x.png", "x1"), src("two/x.png", "x2")
	out := filepath.Join(root, "out")
	check := func(step string, want []placed) {
		t.Helper()
		var got []string
		for _, sub := range []string{"approved", "rejected"} {
			ents, _ := os.ReadDir(filepath.Join(out, sub))
			for _, e := range ents {
				got = append(got, sub+"/"+e.Name())
			}
		}
		var names []string
		for _, w := range want {
			names = append(names, w.sub+"/"+w.name)
			fi, err := os.Stat(filepath.Join(out, w.sub, w.name))
			si, _ := os.Stat(w.src)
			if err != nil || !os.SameFile(fi, si) {
				t.Errorf("%s: %s/%s is not %s (%v)", step, w.sub, w.name, w.src, err)
			}
		}
		sort.Strings(got)
		sort.Strings(names)
		if len(got) != len(names) {
			t.Errorf("%s: folders hold %v, want %v", step, got, names)
		}
	}
	steps := []struct {
		name string
		want []placed
		mess func()
	}{
		{"first", []placed{{"approved", "a.png", a}, {"rejected", "b.png", b}, {"approved", "x.png", a1}, {"rejected", "x.png", a2}}, nil},
		{"flips and a swap", []placed{{"rejected", "a.png", a}, {"rejected", "b.png", b}, {"rejected", "x.png", a1}, {"approved", "x.png", a2}}, nil},
		{"gone, new, junk, stale", []placed{{"approved", "b.png", b}, {"approved", "c.png", c}}, func() {
			os.MkdirAll(filepath.Join(out, "approved", "junk", "deep"), 0o777)
			os.WriteFile(filepath.Join(out, "approved", "c.png"), []byte("not c"), 0o644)
		}},
	}
	for _, s := range steps {
		if s.mess != nil {
			s.mess()
		}
		if err := place(context.Background(), out, s.want); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		check(s.name, s.want)
	}
}
