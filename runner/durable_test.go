package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/runner/cache"
)

// A restored output joins the run's batch of files to make durable before
// its record is written (where a file system can be synced at once), and a
// worker's scratch copy does not. Seen by the batch's one failure mode: it
// names a folder it was given that is gone by the time it syncs.
func TestRestoreJoinsTheDurableBatch(t *testing.T) {
	if !atomicfile.SyncsFS {
		t.Skip("each restored file is synced as it is written here")
	}
	data := []byte("42\n")
	res := &cache.Result{Files: []cache.File{{Path: "out/a.size", Object: cache.Sum(data), Size: int64(len(data)), Mode: 0o644, Data: data}}}
	for _, scratch := range []bool{false, true} {
		root := testdir.New(t)
		e := &engine{plan: &Plan{Root: root}, o: RunOptions{Scratch: scratch}, stat: cache.OpenStatCache("")}
		if _, _, err := e.syncOutputs(res, true); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(root, "out", "a.size")); err != nil || string(got) != string(data) {
			t.Fatalf("scratch %v: restored %q, %v", scratch, got, err)
		}
		if err := os.RemoveAll(filepath.Join(root, "out")); err != nil {
			t.Fatal(err)
		}
		err := e.durable.Sync()
		if joined := err != nil && strings.Contains(err.Error(), filepath.Join(root, "out")); joined == scratch {
			t.Errorf("scratch %v: the batch's sync said %v", scratch, err)
		}
	}
}
