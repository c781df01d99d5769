package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/testdir"
)

func newCache(t *testing.T) *Cache {
	t.Helper()
	c, err := Open(testdir.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func action(s string) ActionID { return ActionID(Sum([]byte(s))) }

func TestPutGet(t *testing.T) {
	c := newCache(t)
	id := action("a")
	out, err := c.PutBytes(id, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if out != Sum([]byte("hello")) {
		t.Errorf("output id = %s, want sha256 of the data", out)
	}
	data, e, err := c.GetBytes(id)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "hello" || e.Size != 5 || e.Output != out {
		t.Errorf("GetBytes = %q, %+v", data, e)
	}
	if _, err := c.Get(action("other")); !IsMiss(err) {
		t.Errorf("Get(unknown) err = %v, want miss", err)
	}
}

// A result read mapped is the result read; a corrupt one is a miss too.
func TestGetBytesMapped(t *testing.T) {
	c := newCache(t)
	id := action("a")
	big := bytes.Repeat([]byte("lifeos "), inlineMax) // stored as an object
	out, err := c.PutBytes(id, big)
	if err != nil {
		t.Fatal(err)
	}
	if got, e, err := c.GetBytesMapped(id); err != nil || !bytes.Equal(got, big) || e.Output != out {
		t.Fatalf("GetBytesMapped = %d bytes, %+v, %v; want the %d stored", len(got), e, err, len(big))
	}
	small := action("small")
	if _, err := c.PutBytes(small, []byte("inline")); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.GetBytesMapped(small); err != nil || string(got) != "inline" {
		t.Fatalf("GetBytesMapped of an inline result = %q, %v", got, err)
	}
	// Replaced, as a damaged file would be, not changed in place: what was
	// mapped stays as it was read.
	p := c.ObjectPath(out)
	os.Chmod(p, 0o644) // objects are read-only; Windows renames over none
	bad := append([]byte("y"), big[1:]...)
	if err := os.WriteFile(p+".bad", bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".bad", p); err != nil {
		t.Fatal(err)
	}
	if data, _, err := c.GetBytesMapped(id); !IsMiss(err) {
		t.Fatalf("GetBytesMapped of a corrupt object = %d bytes, %v; want miss", len(data), err)
	}
}

func TestCorruptObjectIsMiss(t *testing.T) {
	c := newCache(t)
	id := action("a")
	big := bytes.Repeat([]byte("x"), inlineMax+1) // stored as an object
	out, err := c.PutBytes(id, big)
	if err != nil {
		t.Fatal(err)
	}
	p := c.ObjectPath(out)
	os.Chmod(p, 0o644)
	big[0] = 'y'
	if err := os.WriteFile(p, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _, err := c.GetBytes(id); !IsMiss(err) {
		t.Fatalf("GetBytes of corrupt object = %q, %v; want miss", data, err)
	}
	dst := filepath.Join(testdir.New(t), "restored")
	if err := c.CopyObject(out, dst, 0o644, true); err == nil {
		t.Fatal("CopyObject of corrupt object succeeded")
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("CopyObject left %s behind (err %v)", dst, err)
	}
	checked, problems, err := c.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if checked != 2 || len(problems) != 2 {
		t.Errorf("Verify checked %d, problems %v; want 2 and 2 (object and its entry)", checked, problems)
	}
	if _, err := c.Get(id); !IsMiss(err) {
		t.Errorf("entry of corrupt object still present after Verify")
	}
}

// Storing content the cache has keeps the intact copy (which may be open:
// Windows refuses a rename over an open file), marked used now, and
// repairs a damaged one.
func TestStoringAnObjectAgain(t *testing.T) {
	c := newCache(t)
	big := bytes.Repeat([]byte("x"), inlineMax+1)
	out, err := c.PutBytes(action("a"), big)
	if err != nil {
		t.Fatal(err)
	}
	p := c.ObjectPath(out)
	old := time.Now().Add(-40 * 24 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBytes(action("b"), big); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the intact object was replaced (%v)", err)
	} else if !after.ModTime().After(old.Add(time.Hour)) {
		t.Errorf("the object stored again is still marked used %s", after.ModTime())
	}

	os.Chmod(p, 0o644)
	damaged := bytes.Clone(big)
	damaged[0] = 'y' // the same size
	if err := os.WriteFile(p, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBytes(action("c"), big); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.GetBytes(action("a")); err != nil || !bytes.Equal(got, big) {
		t.Errorf("after storing it again: %d bytes, %v; want the object repaired", len(got), err)
	}
}

func TestCorruptInlineResultIsMiss(t *testing.T) {
	c := newCache(t)
	id := action("a")
	if _, err := c.PutBytes(id, []byte(`{"outputs":{"n":1}}`)); err != nil {
		t.Fatal(err)
	}
	name := c.fileName(id, "a")
	b, _ := os.ReadFile(name)
	if err := os.WriteFile(name, bytes.Replace(b, []byte(`"n":1`), []byte(`"n":2`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _, err := c.GetBytes(id); !IsMiss(err) {
		t.Errorf("GetBytes of edited inline result = %q, %v; want miss", data, err)
	}
	if _, problems, _ := c.Verify(); len(problems) != 1 {
		t.Errorf("Verify problems = %v, want the edited entry", problems)
	}
}

func TestTruncatedEntryIsMiss(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"extended", func(b []byte) []byte { return append(b, 'x') }},
		{"bad version", func(b []byte) []byte { return append([]byte("v9"), b[2:]...) }},
		{"other action", func(b []byte) []byte {
			return bytes.Replace(b, []byte(action("a").String()), []byte(action("b").String()), 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t)
			id := action("a")
			if _, err := c.PutBytes(id, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			name := c.fileName(id, "a")
			b, _ := os.ReadFile(name)
			if err := os.WriteFile(name, tc.edit(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(id); !IsMiss(err) {
				t.Errorf("Get = %v, want miss", err)
			}
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	c := newCache(t)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				// Every writer writes the same 50 actions with the same data.
				data := []byte(fmt.Sprintf("result %d", i))
				if _, err := c.PutBytes(action(fmt.Sprint(i)), data); err != nil {
					t.Error(err)
				}
				if got, _, err := c.GetBytes(action(fmt.Sprint(i))); err != nil || !bytes.Equal(got, data) {
					t.Errorf("writer %d: GetBytes(%d) = %q, %v", w, i, got, err)
				}
			}
		}(w)
	}
	wg.Wait()
	_, problems, err := c.Verify()
	if err != nil || len(problems) > 0 {
		t.Errorf("Verify after concurrent writes: %v %v", problems, err)
	}
	tmp, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp"))
	if len(tmp) != 0 {
		t.Errorf("%d temporary files left behind", len(tmp))
	}
}

func TestTrimKeepsReferencedFiles(t *testing.T) {
	c := newCache(t)
	now := time.Unix(1_800_000_000, 0)
	c.Now = func() time.Time { return now }
	file, _ := c.PutObject(bytes.NewReader([]byte("image bytes")))
	outs, _ := c.PutData([]byte(`{"items":["many"]}`))
	res := fmt.Sprintf(`{"outputs_object":"%s","outputs_size":18,"files":[{"path":"x.png","sha256":"%s","size":11,"mode":420}]}`, outs, file)
	keep := action("keep")
	if _, err := c.PutBytes(keep, []byte(res)); err != nil {
		t.Fatal(err)
	}
	old := action("old")
	c.PutBytes(old, []byte("old result"))
	orphan, _ := c.PutObject(bytes.NewReader([]byte("orphan")))

	// Age everything, then use "keep" again.
	past := now.Add(-40 * 24 * time.Hour)
	for _, p := range []string{c.fileName(keep, "a"), c.fileName(old, "a"), c.ObjectPath(file), c.ObjectPath(outs), c.ObjectPath(orphan)} {
		os.Chtimes(p, past, past)
	}
	if _, err := c.Get(keep); err != nil {
		t.Fatal(err)
	}
	r, err := c.Trim(DefaultMaxAge)
	if err != nil {
		t.Fatal(err)
	}
	// The old result was inline in its entry; the orphan is the one object.
	if r.Entries != 1 || r.Objects != 1 {
		t.Errorf("Trim removed %+v, want 1 entry and 1 object", r)
	}
	if _, _, err := c.GetBytes(keep); err != nil {
		t.Errorf("kept entry lost: %v", err)
	}
	if _, err := os.Stat(c.ObjectPath(file)); err != nil {
		t.Errorf("file referenced by kept result was removed")
	}
	if _, err := os.Stat(c.ObjectPath(outs)); err != nil {
		t.Errorf("outputs referenced by kept result were removed")
	}
	if _, err := c.Get(old); !IsMiss(err) {
		t.Errorf("old entry kept")
	}
}

// Trim reads the entries it keeps without marking them used: a daily
// trim that renewed them would keep every entry for ever.
func TestTrimDoesNotRenewWhatItReads(t *testing.T) {
	c := newCache(t)
	now := time.Unix(1_800_000_000, 0)
	c.Now = func() time.Time { return now }
	id := action("idle")
	if _, err := c.PutBytes(id, []byte("result")); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-20 * 24 * time.Hour)
	os.Chtimes(c.fileName(id, "a"), past, past)
	if r, err := c.Trim(DefaultMaxAge); err != nil || r.Entries != 0 {
		t.Fatalf("first Trim = %+v, %v; want the 20-day-old entry kept", r, err)
	}
	now = now.Add(15 * 24 * time.Hour) // the entry is 35 days unused
	if r, err := c.Trim(DefaultMaxAge); err != nil || r.Entries != 1 {
		t.Errorf("second Trim = %+v, %v; want the entry unused for 35 days removed", r, err)
	}
}

// A new cache is first trimmed a day after it was made, not at the end of
// its first run; then once a day.
func TestMaybeTrimDaily(t *testing.T) {
	c := newCache(t)
	made := time.Now()
	now := made
	c.Now = func() time.Time { return now }
	id := action("stale")
	if _, err := c.PutBytes(id, []byte("result")); err != nil {
		t.Fatal(err)
	}
	past := made.Add(-40 * 24 * time.Hour) // as if copied in from an old cache
	os.Chtimes(c.fileName(id, "a"), past, past)
	if c.MaybeTrim() {
		t.Fatal("a cache made now was trimmed")
	}
	now = made.Add(25 * time.Hour)
	if !c.MaybeTrim() {
		t.Fatal("not trimmed a day after it was made")
	}
	if _, err := c.Get(id); !IsMiss(err) {
		t.Errorf("an entry unused for 40 days survived the trim: %v", err)
	}
	now = now.Add(time.Hour)
	if c.MaybeTrim() {
		t.Error("trimmed twice within a day")
	}
}

func TestStatCache(t *testing.T) {
	dir := testdir.New(t)
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("one"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	scPath := filepath.Join(dir, "statcache")
	sc := OpenStatCache(scPath)
	sum, n, err := sc.Sum(p)
	if err != nil || sum != Sum([]byte("one")) || n != 3 {
		t.Fatalf("Sum = %s %d %v", sum, n, err)
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	sc = OpenStatCache(scPath)
	sc.once.Do(sc.load)
	if len(sc.m) != 1 {
		t.Fatalf("reloaded stat cache has %d entries, want 1", len(sc.m))
	}
	// Same size, new content, new mtime: must be re-hashed.
	os.WriteFile(p, []byte("two"), 0o644)
	os.Chtimes(p, old.Add(time.Second), old.Add(time.Second))
	if sum, _, _ := sc.Sum(p); sum != Sum([]byte("two")) {
		t.Errorf("changed file not re-hashed")
	}
	// A file modified just now is hashed but not remembered.
	q := filepath.Join(dir, "fresh")
	os.WriteFile(q, []byte("x"), 0o644)
	sc.Sum(q)
	if _, ok := sc.m[q]; ok {
		t.Errorf("racily fresh file remembered")
	}
	// A garbage stat cache is an empty one.
	os.WriteFile(scPath, []byte("garbage"), 0o644)
	sc = OpenStatCache(scPath)
	sc.once.Do(sc.load)
	if len(sc.m) != 0 {
		t.Errorf("garbage stat cache loaded %d entries", len(sc.m))
	}
}

// The stat cache's lines read back exactly, paths with spaces included; a
// malformed line is skipped, not the file. Lines of the first format,
// which had no day, are read as used today.
func TestStatCacheLines(t *testing.T) {
	dir := testdir.New(t)
	scPath := filepath.Join(dir, "statcache")
	sum := Sum([]byte("x")).String()
	now := time.Unix(20000*86400+3600, 0) // day 20000
	for _, tc := range []struct{ header, day string }{{statCacheHeaderV1, ""}, {statCacheHeader, "19999 "}} {
		os.WriteFile(scPath, []byte(tc.header+
			sum+" 1 -5 18446744073709551 "+tc.day+"/a b/c.png\n"+
			sum+" 1 2\n"+ // no inode, no path
			sum[:10]+" 1 2 3 "+tc.day+"/short-digest\n"+
			sum+" x 2 3 "+tc.day+"/bad-size\n"+
			sum+" 7 1700000000123456789 42 "+tc.day+"/d.png\n"+
			sum+" 1 2 3 "+tc.day+"/no-newline"), 0o644)
		sc := OpenStatCache(scPath)
		sc.now = func() time.Time { return now }
		sc.once.Do(sc.load)
		day := int32(20000)
		if tc.day != "" {
			day = 19999
		}
		want := map[string]statEntry{
			"/a b/c.png": {st: filehash.Stamp{Size: 1, Mtime: -5, Ino: 18446744073709551}, sum: Sum([]byte("x")), day: day},
			"/d.png":     {st: filehash.Stamp{Size: 7, Mtime: 1700000000123456789, Ino: 42}, sum: Sum([]byte("x")), day: day},
		}
		if !maps.Equal(sc.m, want) {
			t.Errorf("%sloaded %v\nwant %v", tc.header, sc.m, want)
		}
	}
}

// A file no run has looked up for 30 days is forgotten; one looked up is
// kept, from the day of its last lookup.
func TestStatCacheForgetsUnusedFiles(t *testing.T) {
	dir := testdir.New(t)
	scPath := filepath.Join(dir, "statcache")
	old := time.Now().Add(-time.Hour)
	var files []string
	for _, name := range []string{"used", "idle"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(name), 0o644)
		os.Chtimes(p, old, old)
		files = append(files, p)
	}
	day0 := time.Now()
	open := func(days int) *StatCache {
		sc := OpenStatCache(scPath)
		sc.now = func() time.Time { return day0.Add(time.Duration(days) * 24 * time.Hour) }
		return sc
	}
	sc := open(0)
	for _, p := range files {
		if _, _, err := sc.Sum(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	sc = open(20)
	sc.Sum(files[0]) // a hit
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	sc = open(40)
	sc.once.Do(sc.load)
	if _, ok := sc.m[files[1]]; ok {
		t.Error("a file not looked up for 40 days is still remembered")
	}
	if _, ok := sc.m[files[0]]; !ok {
		t.Error("a file looked up 20 days ago was forgotten")
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(scPath); strings.Contains(string(data), files[1]) {
		t.Error("the forgotten file is still in the saved stat cache")
	}
}

// SumLook lends a file it has to hash to look, and does not call look for
// a file the stat cache knows.
func TestStatCacheSumLook(t *testing.T) {
	dir := testdir.New(t)
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("hello, world"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	sc := OpenStatCache("")
	var head []byte
	look := func(r io.Reader) error {
		head = make([]byte, 5)
		_, err := io.ReadFull(r, head)
		return err
	}
	sum, st, looked, err := sc.SumLook(p, look)
	if err != nil || !looked || sum != Sum([]byte("hello, world")) || string(head) != "hello" {
		t.Fatalf("first SumLook = %s, %v, %v; saw %q", sum, looked, err, head)
	}
	if st.Size != 12 || st.Mtime != old.UnixNano() {
		t.Errorf("SumLook's stamp = %+v, want size 12 and mtime %d", st, old.UnixNano())
	}
	head = nil
	sum, _, looked, err = sc.SumLook(p, look)
	if err != nil || looked || head != nil || sum != Sum([]byte("hello, world")) {
		t.Errorf("known file: SumLook = %s, %v, %v; look called: %v", sum, looked, err, head != nil)
	}
	if _, _, _, err := sc.SumLook(dir, look); err == nil {
		t.Error("SumLook of a directory: no error")
	}
	// A known file that changed is read again, through its path's stamp.
	os.WriteFile(p, []byte("goodbye, world"), 0o644)
	os.Chtimes(p, old.Add(time.Minute), old.Add(time.Minute))
	head = nil
	sum, st, looked, err = sc.SumLook(p, look)
	if err != nil || !looked || string(head) != "goodb" || sum != Sum([]byte("goodbye, world")) || st.Size != 14 {
		t.Errorf("changed file: SumLook = %s, %+v, %v, %v; saw %q", sum, st, looked, err, head)
	}
	if _, _, _, err := sc.SumLook(filepath.Join(dir, "missing"), look); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SumLook of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// scores are n small results, as a score step packs them.
func scores(n int) (ids []ActionID, data [][]byte) {
	for i := range n {
		ids = append(ids, action(fmt.Sprint("score ", i)))
		data = append(data, []byte(fmt.Sprintf(`{"sharpness": %d}`, i)))
	}
	return ids, data
}

// A pack holds many small results in one file: another process finds
// them and stats count them.
func TestPacks(t *testing.T) {
	c := newCache(t)
	ids, data := scores(500)
	ids = append(ids, ids[7]) // a repeated action keeps its first result
	data = append(data, []byte("later"))
	if err := c.PutPack(ids, data); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.GetBytes(ids[7]); err != nil || string(got) != `{"sharpness": 7}` {
		t.Fatalf("same process: %q, %v", got, err)
	}
	packs, _ := filepath.Glob(filepath.Join(c.Dir(), "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("%d pack files, want 1", len(packs))
	}
	files := 0
	filepath.WalkDir(c.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) != "README" && filepath.Base(p) != trimStampFile {
			files++
		}
		return nil
	})
	if files != 1 {
		t.Errorf("500 results take %d files, want 1", files)
	}

	c2, _ := Open(c.Dir()) // another process
	defer c2.Close()
	for _, i := range []int{0, 250, 499} {
		if got, _, err := c2.GetBytes(ids[i]); err != nil || string(got) != string(data[i]) {
			t.Errorf("other process, result %d: %q, %v", i, got, err)
		}
	}
	// Closed, the cache still reads its packs (opening them again).
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c2.GetBytes(ids[250]); err != nil || string(got) != string(data[250]) {
		t.Errorf("after Close: %q, %v", got, err)
	}
	if _, _, err := c2.GetBytes(action("never stored")); !IsMiss(err) {
		t.Errorf("unknown action: %v, want a miss", err)
	}
	s, err := c2.Stats()
	if err != nil || s.Entries != 500 || s.Packs != 1 || s.Packed != 500 {
		t.Errorf("stats %+v, %v", s, err)
	}

}

// A damaged record of a pack is a miss (the others still hit), verify
// removes a damaged pack, and trim an unused one, closing the handle the
// cache has to it first (Windows keeps an open file's name).
func TestPackDamageVerifyTrim(t *testing.T) {
	c := newCache(t)
	ids, data := scores(500)
	if err := c.PutPack(ids, data); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(c.Dir(), "packs", "*.pack"))
	// Damage one record's data: that result is a miss, the others hit.
	pack := packs[0]
	raw, _ := os.ReadFile(pack)
	i := bytes.Index(raw, []byte(`{"sharpness": 42}`))
	raw[i+len(`{"sharpness": `)] = '9'
	os.Chmod(pack, 0o644)
	os.WriteFile(pack, raw, 0o644)
	c3, _ := Open(c.Dir())
	if _, _, err := c3.GetBytes(ids[42]); !IsMiss(err) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("damaged record: %v, want a miss that says corrupt", err)
	}
	if got, _, err := c3.GetBytes(ids[43]); err != nil || string(got) != string(data[43]) {
		t.Errorf("record beside a damaged one: %q, %v", got, err)
	}
	if _, problems, err := c3.Verify(); err != nil || len(problems) != 1 {
		t.Errorf("verify: %v, %v", problems, err)
	}
	if _, err := os.Stat(pack); !errors.Is(err, fs.ErrNotExist) {
		t.Error("verify kept the damaged pack")
	}

	// An unused pack is trimmed; a used one is kept.
	c.PutPack(ids[:10], data[:10])
	old := time.Now().Add(-40 * 24 * time.Hour)
	packs, _ = filepath.Glob(filepath.Join(c.Dir(), "packs", "*.pack"))
	os.Chtimes(packs[0], old, old)
	r, err := c.Trim(DefaultMaxAge)
	if err != nil || r.Packs != 1 {
		t.Errorf("trim: %+v, %v", r, err)
	}
	c.PutPack(ids[:10], data[:10])
	if r, _ := c.Trim(DefaultMaxAge); r.Packs != 0 {
		t.Errorf("trim removed a fresh pack: %+v", r)
	}
}

// PutStream stores what PutBytes stores, small results inside their entry
// and large ones as an object, and nothing when the writing fails.
func TestPutStream(t *testing.T) {
	c := newCache(t)
	for _, size := range []int{0, 10, inlineMax, inlineMax + 1, 3 * inlineMax} {
		data := bytes.Repeat([]byte("r"), size)
		id := action(fmt.Sprint("stream", size))
		out, err := c.PutStream(id, func(w io.Writer) error {
			for b := data; len(b) > 0; b = b[min(len(b), 1000):] {
				if _, err := w.Write(b[:min(len(b), 1000)]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || out != Sum(data) {
			t.Fatalf("size %d: PutStream = %s, %v; want %s", size, out.Short(), err, Sum(data).Short())
		}
		got, e, err := c.GetBytes(id)
		if err != nil || !bytes.Equal(got, data) || e.Size != int64(size) {
			t.Errorf("size %d: GetBytes = %d bytes, %+v, %v", size, len(got), e, err)
		}
		_, objErr := os.Stat(c.ObjectPath(out))
		if inline := size > 0 && size <= inlineMax; inline != (objErr != nil) {
			t.Errorf("size %d: object file: %v; want one only past %d bytes", size, objErr, inlineMax)
		}
	}
	id := action("fails")
	broken := errors.New("broken")
	if _, err := c.PutStream(id, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 2*inlineMax))
		return broken
	}); !errors.Is(err, broken) {
		t.Errorf("a failed write: %v", err)
	}
	if _, err := c.Get(id); !IsMiss(err) {
		t.Errorf("a failed write left an entry: %v", err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(c.Dir(), "tmp")); len(tmp) != 0 {
		t.Errorf("a failed write left %d temporary files", len(tmp))
	}
}

// EncodeResult writes what json.Marshal writes, whichever fields are set.
func TestEncodeResult(t *testing.T) {
	if n := reflect.TypeFor[Result]().NumField(); n != 6 {
		t.Fatalf("Result has %d fields: EncodeResult writes 6", n)
	}
	files := []File{
		{Path: "out/a.png", Object: Sum([]byte("a")), Size: 1, Mode: 0o644, Data: []byte("a")},
		{Path: "out/<b>.bin", Object: Sum([]byte("big")), Size: 1 << 20, Mode: 0o600},
		{Path: "out/\"q\" \\ é\u2028\x01.txt", Object: Sum([]byte("q")), Size: 3, Mode: 0o755, Data: []byte{0, 0xff, '\n'}},
		{Path: "out/empty", Object: Sum(nil), Mode: 0o644, Data: []byte{}},
	}
	// More than one block of files made in parallel.
	for i := range 1300 {
		data := []byte(fmt.Sprint("file ", i))
		files = append(files, File{Path: fmt.Sprintf("out/%d.png", i), Object: Sum(data), Size: int64(len(data)), Mode: 0o644, Data: data})
	}
	for _, res := range []Result{
		{},
		{Outputs: json.RawMessage(`{"a": "<&>", "n": 1}`)},
		{OutputsObject: Sum([]byte("o")), OutputsSize: 12},
		{Files: files},
		{Files: files[:1], Dirs: []string{"out"}, Roots: []string{"out"}},
		{Outputs: json.RawMessage(`{}`), Files: files, Dirs: []string{"out", "out/x"}, Roots: []string{"out"}},
		{Dirs: []string{"d"}},
		{Roots: []string{"r"}},
	} {
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		var made atomic.Int64
		err = EncodeResult(&got, &Result{Outputs: res.Outputs, OutputsObject: res.OutputsObject, OutputsSize: res.OutputsSize, Dirs: res.Dirs, Roots: res.Roots},
			len(res.Files), func(i int) (File, error) { made.Add(1); return res.Files[i], nil })
		if err != nil || made.Load() != int64(len(res.Files)) {
			t.Errorf("EncodeResult: %v (%d files made, want %d)", err, made.Load(), len(res.Files))
		}
		if g := got.Bytes(); !bytes.Equal(g, want) {
			i := 0
			for i < min(len(g), len(want)) && g[i] == want[i] {
				i++
			}
			t.Errorf("EncodeResult differs from json.Marshal at byte %d:\n got %.200s\nwant %.200s", i, g[max(i-50, 0):], want[max(i-50, 0):])
		}
	}
	broken := errors.New("unreadable")
	if err := EncodeResult(io.Discard, &Result{}, 2, func(int) (File, error) { return File{}, broken }); !errors.Is(err, broken) {
		t.Errorf("a file that cannot be made: %v", err)
	}
	// Of two files that cannot be made, the first is reported.
	err := EncodeResult(io.Discard, &Result{}, 2000, func(i int) (File, error) {
		if i == 700 || i == 701 {
			return File{}, fmt.Errorf("file %d unreadable", i)
		}
		return File{Path: "f"}, nil
	})
	if err == nil || err.Error() != "file 700 unreadable" {
		t.Errorf("two files that cannot be made: %v, want file 700's error", err)
	}
}

func TestReadSized(t *testing.T) {
	name := filepath.Join(testdir.New(t), "f")
	os.WriteFile(name, []byte("hello"), 0o666)
	if data, ok := ReadSized(name, 5); !ok || string(data) != "hello" || cap(data) != 5 {
		t.Errorf("ReadSized = %q (cap %d), %v", data, cap(data), ok)
	}
	for _, size := range []int64{4, 6, 0} {
		if data, ok := ReadSized(name, size); ok {
			t.Errorf("ReadSized of a 5-byte file as %d bytes = %q", size, data)
		}
	}
	if _, ok := ReadSized(name+".missing", 0); ok {
		t.Error("ReadSized of a missing file")
	}
}
