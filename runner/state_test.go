package runner

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/runner/cache"
)

// The key state reads back what it saved: memos with their policy lines,
// stamps of paths that need escaping, and the folders found clean.
func TestKeyStateRoundTrip(t *testing.T) {
	path := filepath.Join(testdir.New(t), "p.ids")
	ks := loadKeyStateAsync(path, false)
	m := &memo{key: [16]byte{1}, output: cache.OutputID{2}, outputs: `{"n":1}`, policy: "face.min=0.5\nscorecard.grades={\"A\":0.9}\n",
		patterns: []string{"in/odd\\name.txt"},
		inputs:   []stamp{{path: "in/odd\\name.txt", size: 3, mtime: 1e18, ino: 7}},
		writes:   []stamp{{path: "out/two\nlines.txt", size: 4, mtime: 2e18, ino: 8}}}
	ks.set("each", "in/odd\\name.txt", cache.ActionID{3}, m)
	big := &memo{key: [16]byte{4}, output: cache.OutputID{5}, outRef: cache.OutputID{6}, outSize: 123456, outItems: true,
		outHead: `{"summary":"a b","count":3}`}
	ks.set("score", "", cache.ActionID{7}, big)
	ks.setClean(stamp{path: "out", size: 4096, mtime: 3e18, ino: 9})
	ks.confirmTrim(1234, map[string]bool{"each": true, "score": true})
	if err := ks.save(); err != nil {
		t.Fatal(err)
	}
	back := loadKeyStateAsync(path, false)
	if got := back.memo("each", "in/odd\\name.txt"); !got.equal(m) {
		t.Errorf("memo read back as %+v, want %+v", got, m)
	}
	if got := back.memo("score", ""); !got.equal(big) {
		t.Errorf("memo by reference read back as %+v, want %+v", got, big)
	}
	if a, ok := back.get("each", "in/odd\\name.txt"); !ok || a != (cache.ActionID{3}) {
		t.Errorf("action read back as %v, %v", a, ok)
	}
	if back.trimmedSince(1234) || !back.trimmedSince(1235) {
		t.Errorf("trim stamp read back as %d, want 1234", back.trimStamp)
	}
	// Confirming a newer trim drops the memos of steps not checked.
	back.confirmTrim(2000, map[string]bool{"each": true})
	if back.memo("score", "") != nil || back.memo("each", "in/odd\\name.txt") == nil {
		t.Error("confirmTrim kept an unchecked step's memo or dropped a checked one")
	}
	if !back.clean(stamp{path: "out", size: 4096, mtime: 3e18, ino: 9}) {
		t.Error("the clean folder's stamp was not read back")
	}
}

// A record nobody asked for is saved as it was read, and one that does not
// parse is no record at all.
//
// Read from a mapping too (RunOptions.MapState): the unread records are
// written out of the mapped file while its replacement is written.
func TestKeyStateKeepsUnreadRecords(t *testing.T) {
	for _, mapped := range []bool{false, true} {
		testKeyStateKeepsUnreadRecords(t, mapped)
	}
}

func testKeyStateKeepsUnreadRecords(t *testing.T, mapped bool) {
	path := filepath.Join(testdir.New(t), "p.ids")
	ks := loadKeyStateAsync(path, mapped)
	m := &memo{key: [16]byte{1}, output: cache.OutputID{2}, outputs: `{"n":1}`, patterns: []string{"a.txt"},
		inputs: []stamp{{path: "a.txt", size: 3, mtime: 1e18, ino: 7}}}
	ks.set("one", "a.txt", cache.ActionID{3}, m)
	ks.set("two", "", cache.ActionID{4}, nil)
	if err := ks.save(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A third record whose action is damaged, after the others.
	if err := os.WriteFile(path, append(data, "E nothex three\nM zz\n"...), 0o666); err != nil {
		t.Fatal(err)
	}
	back := loadKeyStateAsync(path, mapped)
	back.set("two", "", cache.ActionID{5}, nil) // only "two" is read and changed
	if err := back.save(); err != nil {
		t.Fatal(err)
	}
	again := loadKeyStateAsync(path, mapped)
	if got := again.memo("one", "a.txt"); !got.equal(m) {
		t.Errorf("mapped %v: unread record saved as %+v, want %+v", mapped, got, m)
	}
	if a, ok := again.get("two", ""); !ok || a != (cache.ActionID{5}) {
		t.Errorf("mapped %v: changed record read back as %v, %v", mapped, a, ok)
	}
	if _, ok := again.get("three", ""); ok || again.memo("three", "") != nil {
		t.Errorf("mapped %v: a damaged record was read as a record", mapped)
	}
}

// Stamps read back as written, whatever their numbers; anything else in
// their place is no stamp.
func TestParseStamp(t *testing.T) {
	for _, st := range []stamp{
		{path: "out/a.png", size: 2901, mtime: 1796040832810958289, ino: 9990611},
		{path: "old\\and\nodd name", size: 0, mtime: -86400e9, ino: math.MaxUint64},
		{path: "", size: math.MaxInt64, mtime: 0, ino: 0},
	} {
		line := string(st.appendTo(nil))
		if got, ok := parseStamp(line); !ok || got != st {
			t.Errorf("parseStamp(%q) = %+v, %v; want %+v", line, got, ok, st)
		}
	}
	for _, bad := range []string{"", "1", "1 2", "1 2 3", "x 2 3 p", "1 -x 3 p", "1 2 -3 p", "99999999999999999999 2 3 p", "1 2 18446744073709551616 p", " 2 3 p", "1  3 p"} {
		if got, ok := parseStamp(bad); ok {
			t.Errorf("parseStamp(%q) = %+v, want no stamp", bad, got)
		}
	}
}

// memo is a record's memo, nil when there is none: what memoHit reads.
func (ks *keyState) memo(step, label string) *memo {
	if es := ks.elem(step, label); es != nil {
		return es.memo
	}
	return nil
}
