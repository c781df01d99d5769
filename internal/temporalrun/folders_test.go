package temporalrun

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/runner"
)

// A step takes a copy of its snapshot a step before it left, steps at once
// have their own, and the copies of snapshots no longer used go once free.
func TestFolders(t *testing.T) {
	root := testdir.New(t)
	f := newFolders(root)
	snap := func(i int) string { return fmt.Sprintf("%016x%048x", i, 0) }
	a, others := f.take(snap(1))
	if len(others) != 0 {
		t.Errorf("the first copy links from %q", others)
	}
	b, others := f.take(snap(1))
	if a == b {
		t.Fatalf("two steps at once share %s", a)
	}
	if !slices.Equal(others, []string{a}) {
		t.Errorf("the second copy links from %q, want the first (%s)", others, a)
	}
	for _, d := range []string{a, b} {
		os.MkdirAll(d, 0o777)
	}
	f.give(snap(1), a)
	if c, others := f.take(snap(1)); c != a || !slices.Equal(others, []string{b}) {
		t.Errorf("a step after another took %s (linking from %q), want the copy it left (%s, linking from %s)", c, others, a, b)
	}
	f.give(snap(1), a)
	f.give(snap(1), b)
	// Snapshot 1 is in use while newer ones come: kept; once free and
	// older than the last keepSnapshots, gone.
	busy, _ := f.take(snap(1))
	for i := 2; i < 2+keepSnapshots; i++ {
		d, _ := f.take(snap(i))
		os.MkdirAll(d, 0o777)
		f.give(snap(i), d)
	}
	if _, err := os.Stat(filepath.Join(root, snap(1)[:16])); err != nil {
		t.Fatalf("the copies of a snapshot in use were removed: %v", err)
	}
	f.give(snap(1), busy)
	if _, err := os.Stat(filepath.Join(root, snap(1)[:16])); err == nil {
		t.Errorf("the copies of snapshot 1, unused among the last %d, stay", keepSnapshots)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != keepSnapshots {
		t.Errorf("%d snapshots' copies kept, want %d", len(ents), keepSnapshots)
	}
	if d, others := f.take(snap(1)); !strings.HasSuffix(d, filepath.Join(snap(1)[:16], "0")) || len(others) != 0 {
		t.Errorf("snapshot 1 again: %s (linking from %q), want a new first copy", d, others)
	}
}

// A new snapshot's first copy is a free copy of the snapshot used last,
// moved: only what differs is then fetched. What the other snapshot's
// steps wrote, set aside in the attic, goes. A copy in use is not taken.
func TestFoldersSeedANewSnapshot(t *testing.T) {
	root := testdir.New(t)
	f := newFolders(root)
	snap := func(i int) string { return fmt.Sprintf("%016x%048x", i, 0) }
	a, _ := f.take(snap(1))
	os.MkdirAll(a, 0o777)
	os.WriteFile(filepath.Join(a, "dataset.png"), []byte("big"), 0o666)
	attic := runner.AtticDir(a)
	os.MkdirAll(attic, 0o777)
	os.WriteFile(filepath.Join(attic, "scores.json"), []byte("{}"), 0o666)
	f.give(snap(1), a)
	b, _ := f.take(snap(2))
	if !strings.Contains(b, snap(2)[:16]) {
		t.Fatalf("snapshot 2's copy is %s", b)
	}
	if data, err := os.ReadFile(filepath.Join(b, "dataset.png")); err != nil || string(data) != "big" {
		t.Fatalf("snapshot 2's first copy was not made from snapshot 1's: %v", err)
	}
	if _, err := os.Stat(a); err == nil {
		t.Errorf("snapshot 1's copy is still there as well")
	}
	if _, err := os.Stat(runner.AtticDir(b)); err == nil {
		t.Errorf("snapshot 2's copy kept what snapshot 1's steps set aside")
	}
	// Snapshot 1 has no free copy left, and snapshot 2's is in use.
	c, others := f.take(snap(1))
	if c == a || c == b {
		t.Fatalf("snapshot 1 again took %s", c)
	}
	if len(others) != 0 {
		t.Errorf("snapshot 1's new copy links from %q, which went to snapshot 2", others)
	}
	if _, err := os.Stat(c); err == nil {
		t.Errorf("a copy in use was moved to %s", c)
	}
}
