package runner

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/runner/cache"
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

// An element's key lines come from the pack its record names; a record
// written before the packs has none, and its lines are in the file the
// cache kept beside its entry. A reference past its pack's end is an
// error (the reason says less), not a read of what follows.
func TestKeyLinesOf(t *testing.T) {
	root := testdir.New(t)
	c, err := cache.Open(filepath.Join(root, ".lifeos", "cache"))
	if err != nil {
		t.Fatal(err)
	}
	old, packed, bad := cache.ActionID{1}, cache.ActionID{2}, cache.ActionID{3}
	h := hex.EncodeToString(old[:])
	writeFile(t, c.Dir(), h[:2]+"/"+h+"-k", "kind exec\nfile a.txt 01\n")
	writeFile(t, keyPacksDir(root), "0123abcd", "kind other\nkind exec\nfile b.txt 02\n")
	state := filepath.Join(root, ".lifeos", "state", "p-0000.ids")
	writeFile(t, root, ".lifeos/state/p-0000.ids", stateHeader+
		"E "+old.String()+" s\x00a\n"+
		"E "+packed.String()+" s\x00b\nK 0123abcd 11 24\n"+
		"E "+bad.String()+" s\x00c\nK 0123abcd 11 25\n")
	e := &engine{plan: &Plan{Root: root}, cache: c, state: loadKeyStateAsync(state, false)}
	for label, want := range map[string]string{"a": "kind exec|file a.txt 01", "b": "kind exec|file b.txt 02"} {
		id := map[string]cache.ActionID{"a": old, "b": packed}[label]
		lines, err := e.keyLinesOf("s", label, id)
		if got := strings.Join(lines, "|"); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", label, got, err, want)
		}
	}
	if lines, err := e.keyLinesOf("s", "c", bad); err == nil {
		t.Errorf("a reference past its pack read %q", lines)
	}
}
