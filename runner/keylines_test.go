package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
)

// Packs of key lines go once no key state refers to them, and not before
// they are a day old: a run may have written one its state does not
// name yet.
func TestPruneKeyPacks(t *testing.T) {
	root := testdir.New(t)
	dir := keyPacksDir(root)
	now := time.Now()
	old := now.Add(-48 * time.Hour)
	for _, name := range []string{"used", "other", "gone", "young"} {
		writeFile(t, dir, name, "step x\n")
		if name != "young" {
			os.Chtimes(filepath.Join(dir, name), old, old)
		}
	}
	writeFile(t, root, ".lifeos/state/a-1234.ids", stateHeader+"E 00 s\x00a\nK used 0 7\nE 00 s\x00b\nK used 7 7\n")
	writeFile(t, root, ".lifeos/state/b-5678.ids", stateHeader+"E 00 s\x00a\nK other 0 7\n")
	if err := pruneKeyPacks(root, now); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"used": true, "other": true, "gone": false, "young": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s: kept %v, want %v", name, err == nil, want)
		}
	}
}
