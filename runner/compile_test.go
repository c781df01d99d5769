package runner

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// A plan compiled in one workspace runs in another holding the same files
// (a worker's copies of a snapshot), restricted to a step and its needs,
// two at once: its files land in the workspace it was given, and running
// it changes nothing the other run reads (the race detector checks).
func TestPlanAtAnotherWorkspace(t *testing.T) {
	first := memoWorkspace(t)
	second := testdir.New(t)
	for _, f := range []string{"in/a.txt", "in/b.txt", "in/c.txt", "pipelines/p.yaml"} {
		data, err := os.ReadFile(filepath.Join(first, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, second, f, string(data))
	}
	t.Setenv("LIFEOS_CACHE", "off")
	plan, err := Load(first, "pipelines/p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.At(second, []string{"nosuch"}); err == nil {
		t.Error("At accepted an unknown step")
	}
	var wg sync.WaitGroup
	for _, c := range []struct {
		root string
		only []string
		want int // steps run
	}{{first, nil, 2}, {second, []string{"each"}, 1}} {
		p, err := plan.At(c.root, c.only)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			rec, err := p.Run(context.Background(), RunOptions{})
			if err != nil || len(rec.Steps) != c.want {
				t.Errorf("%s: %v, %d steps, want %d", c.root, err, len(rec.Steps), c.want)
			}
		})
	}
	wg.Wait()
	for _, root := range []string{first, second} {
		if got, err := os.ReadFile(filepath.Join(root, "out/b.txt")); err != nil || string(got) != "bb" {
			t.Errorf("%s: out/b.txt = %q, %v", root, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(second, "all.txt")); err == nil {
		t.Error("the run restricted to each ran all")
	}
	if _, err := os.Stat(filepath.Join(first, "all.txt")); err != nil {
		t.Error("the whole run did not run all")
	}
}
