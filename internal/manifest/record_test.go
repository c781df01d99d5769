package manifest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/testdir"
)

// stampingHash is HashFile that also takes the file's stamp, as the stat
// cache's hasher does.
func stampingHash(abs string, look func(io.Reader) error) (Sum, error) {
	st, _, err := filehash.Stat(abs)
	if err != nil {
		return Sum{}, err
	}
	sum, err := HashFile(abs, look)
	sum.Stamp = st
	return sum, err
}

// age sets every file and folder under dir to an hour ago: stamps older
// than filehash.RacyWindow are trusted.
func age(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	var paths []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	// Deepest first: setting a file's time does not touch its folder's,
	// but the order keeps that obvious.
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Chtimes(paths[i], old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// dataset makes a two-folder dataset with captions, aged.
func dataset(t *testing.T) string {
	dir := testdir.New(t)
	os.MkdirAll(filepath.Join(dir, "10_a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "5_b"), 0o755)
	writePNG(t, filepath.Join(dir, "10_a", "x.png"), 4, 3)
	os.WriteFile(filepath.Join(dir, "10_a", "x.txt"), []byte("x caption"), 0o644)
	writePNG(t, filepath.Join(dir, "10_a", "y.png"), 5, 5)
	writePNG(t, filepath.Join(dir, "5_b", "z.png"), 6, 2)
	os.WriteFile(filepath.Join(dir, "5_b", "z.txt"), []byte("z caption"), 0o644)
	os.WriteFile(filepath.Join(dir, "5_b", "notes.md"), []byte("not part of it"), 0o644)
	age(t, dir)
	return dir
}

func record(t *testing.T, dir string) ([]byte, [32]byte) {
	t.Helper()
	s, err := Scan(context.Background(), dir, stampingHash, 2)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := s.Record(time.Now())
	if !ok {
		t.Fatal("Record of an aged dataset: not ok")
	}
	return rec, s.Key()
}

// An unchanged dataset has the key its record was made with; any change
// that changes what a scan would find (a file's content, a file added,
// removed or renamed, in any folder) is seen.
func TestUnchanged(t *testing.T) {
	ctx := context.Background()
	dir := dataset(t)
	rec, key := record(t, dir)
	if got, ok := Unchanged(ctx, dir, rec, 2); !ok || got != key {
		t.Fatalf("unchanged dataset: Unchanged = %x, %v; want %x, true", got, ok, key)
	}
	changes := map[string]func(dir string){
		"image rewritten": func(dir string) { writePNG(t, filepath.Join(dir, "10_a", "y.png"), 5, 6) },
		"caption edited": func(dir string) {
			os.WriteFile(filepath.Join(dir, "5_b", "z.txt"), []byte("z caption!"), 0o644)
		},
		"image added in a subfolder": func(dir string) { writePNG(t, filepath.Join(dir, "5_b", "w.png"), 1, 1) },
		"caption added":              func(dir string) { os.WriteFile(filepath.Join(dir, "10_a", "y.txt"), []byte("y"), 0o644) },
		"image removed":              func(dir string) { os.Remove(filepath.Join(dir, "10_a", "y.png")) },
		"caption removed":            func(dir string) { os.Remove(filepath.Join(dir, "10_a", "x.txt")) },
		"image renamed": func(dir string) {
			os.Rename(filepath.Join(dir, "10_a", "y.png"), filepath.Join(dir, "10_a", "v.png"))
		},
		"folder added": func(dir string) { os.Mkdir(filepath.Join(dir, "3_c"), 0o755) },
		// Only the inode tells: a new file of the same size renamed over
		// the old one (as editors save), and every time set back.
		"a file replaced, its times set back": func(dir string) {
			p := filepath.Join(dir, "10_a", "x.png")
			st, _ := os.Stat(p)
			data, _ := os.ReadFile(p)
			data[len(data)-1] ^= 1
			os.WriteFile(p+".new", data, 0o644)
			os.Rename(p+".new", p)
			os.Chtimes(p, st.ModTime(), st.ModTime())
			os.Chtimes(filepath.Join(dir, "10_a"), st.ModTime(), st.ModTime())
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(name, "replaced") && runtime.GOOS == "windows" {
				t.Skip("no inodes here: a file replaced with the same size and times is not seen (as by make)")
			}
			dir := dataset(t)
			rec, _ := record(t, dir)
			change(dir)
			if _, ok := Unchanged(ctx, dir, rec, 2); ok {
				t.Errorf("after %s: Unchanged says ok", name)
			}
		})
	}
}

// A record is not kept when it could not be trusted later: a file or
// folder modified within the racy window, a link, a file the hasher took
// no stamp of.
func TestRecordRefuses(t *testing.T) {
	ctx := context.Background()
	fresh := testdir.New(t)
	writePNG(t, filepath.Join(fresh, "x.png"), 2, 2)
	s, err := Scan(ctx, fresh, stampingHash, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Record(time.Now()); ok {
		t.Error("a file modified just now: recorded")
	}
	if _, ok := s.Record(time.Now().Add(time.Hour)); !ok {
		t.Error("the same scan an hour later: not recorded")
	}

	dir := dataset(t)
	if s, err = Scan(ctx, dir, HashFile, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Record(time.Now()); ok {
		t.Error("a hasher that took no stamps: recorded")
	}

	other := testdir.New(t)
	writePNG(t, filepath.Join(other, "far.png"), 2, 2)
	link := filepath.Join(dir, "10_a", "far.png")
	if err := os.Symlink(filepath.Join(other, "far.png"), link); err != nil {
		t.Skipf("no links here: %v", err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Skip("a link here does not read back as one (Wine)")
	}
	age(t, dir)
	if s, err = Scan(ctx, dir, stampingHash, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Record(time.Now()); ok {
		t.Error("a dataset with a link: recorded")
	}
}

// A damaged or foreign record is never taken for an unchanged dataset.
func TestUnchangedRejectsBadRecords(t *testing.T) {
	dir := dataset(t)
	rec, _ := record(t, dir)
	head, _, _ := bytes.Cut(rec, []byte("\n"))
	lines := strings.SplitAfter(string(rec), "\n")
	bad := map[string]string{
		"empty":          "",
		"other version":  strings.Replace(string(rec), string(head), recordHeader+"99", 1),
		"a line missing": strings.Join(lines[:len(lines)-2], ""),
		"a line more":    string(rec) + lines[len(lines)-2],
		"no last break":  strings.TrimSuffix(string(rec), "\n"),
		"bad stamp":      strings.Replace(string(rec), lines[3], "x"+lines[3], 1),
		"stamp changed":  strings.Replace(string(rec), lines[3], "1"+lines[3], 1),
		"bad key":        strings.Replace(string(rec), "\n", "\nzz", 1),
	}
	for name, r := range bad {
		if _, ok := Unchanged(context.Background(), dir, []byte(r), 2); ok {
			t.Errorf("%s record: Unchanged says ok", name)
		}
	}
}
