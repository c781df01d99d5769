package runner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/memstore"
	"github.com/lifeos/lifeos/internal/testdir"
)

// A worker's scratch copy restores a file another copy of the same
// workspace holds with the stored content by linking it, not writing it;
// and before an element runs, its outputs linked that way get a file of
// their own, so that the command writing one in place leaves the other
// copy's as it was.
func TestRestoreLinksFromAnotherCopy(t *testing.T) {
	if _, ok := filehash.Links(statOf(t, os.Args[0])); !ok {
		t.Skip("link counts are not known here")
	}
	if err := os.Link(os.Args[0], filepath.Join(testdir.New(t), "probe")); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	wc := sharedCache(t, memstore.New())
	run := func(root string, linkFrom ...string) {
		t.Helper()
		plan, err := Load(root, "pipelines/p.yaml", Options{Only: []string{"each"}})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, Cache: wc, Scratch: true, LinkFrom: linkFrom}); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
	}
	first, second := memoWorkspace(t), memoWorkspace(t)
	run(first)
	writeFile(t, first, "out/b.txt", "BB") // changed since, in place
	run(second, first)
	same := func(f string) bool {
		return os.SameFile(statOf(t, filepath.Join(first, f)), statOf(t, filepath.Join(second, f)))
	}
	for f, want := range map[string]string{"out/a.txt": "aa", "out/b.txt": "bb", "out/c.txt": "cc"} {
		if got, _ := os.ReadFile(filepath.Join(second, f)); string(got) != want {
			t.Errorf("%s restored as %q, want %q", f, got, want)
		}
	}
	if !same("out/a.txt") || !same("out/c.txt") {
		t.Errorf("the files the first copy holds as stored were written, not linked")
	}
	if same("out/b.txt") {
		t.Errorf("out/b.txt, changed in the first copy, was linked from it")
	}

	writeFile(t, second, "in/a.txt", "zz") // element a runs again in the second copy
	run(second)
	if got, _ := os.ReadFile(filepath.Join(second, "out/a.txt")); string(got) != "zz" {
		t.Errorf("out/a.txt after its element ran: %q, want zz", got)
	}
	if got, _ := os.ReadFile(filepath.Join(first, "out/a.txt")); string(got) != "aa" {
		t.Errorf("the element that ran in the second copy wrote %q into the first copy's out/a.txt", got)
	}
}

func statOf(t *testing.T, p string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
