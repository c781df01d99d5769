package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestWriteReplaces(t *testing.T) {
	dir := testdir.New(t)
	name := filepath.Join(dir, "sub", "f.txt")
	if err := WriteFile(name, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != "two" {
		t.Errorf("content %q, want two", b)
	}
}

func TestFailedWriteLeavesOriginal(t *testing.T) {
	dir := testdir.New(t)
	name := filepath.Join(dir, "f.txt")
	WriteFile(name, []byte("original"), 0o644)
	boom := errors.New("boom")
	err := Write(name, 0o644, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "original" {
		t.Errorf("content %q after a failed write, want original", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary file left behind: %v", ents)
	}
}

func TestSweepRemovesOnlyDeadProcessesTemps(t *testing.T) {
	dir := testdir.New(t)
	// A process that has exited: its id is free (or reused, then kept).
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	names := map[string]bool{ // name: should survive
		fmt.Sprintf(".run.json.tmp-%d-123", dead):        false,
		fmt.Sprintf(".run.json.tmp-%d-456", os.Getpid()): true,
		"run.json": true,
		".hidden":  true,
		fmt.Sprintf("sub/.x.png.tmp-%d-789", dead): false,
	}
	for n := range names {
		if err := WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Sweep(dir, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("sub/.x.png.tmp-%d-789", dead))); err != nil {
		t.Errorf("a non-recursive sweep went into sub/: %v", err)
	}
	removed, err := Sweep(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 {
		t.Errorf("second sweep removed %v, want only the one in sub/", removed)
	}
	for n, keep := range names {
		_, err := os.Stat(filepath.Join(dir, n))
		if got := err == nil; got != keep {
			t.Errorf("%s: exists %v, want %v", n, got, keep)
		}
	}
}

func TestTempPatternIsRecognised(t *testing.T) {
	f, err := os.CreateTemp(testdir.New(t), TempPattern("batch_report.html"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if pid, ok := TempOwner(filepath.Base(f.Name())); !ok || pid != os.Getpid() {
		t.Errorf("TempOwner(%s) = %d, %v; want %d, true", filepath.Base(f.Name()), pid, ok, os.Getpid())
	}
	for _, n := range []string{"batch_report.html", ".tmp-12-3", ".a.tmp-x-3", ".a.tmp-0-1"} {
		if _, ok := TempOwner(n); ok {
			t.Errorf("TempOwner(%q) = true", n)
		}
	}
}

func TestAppendJSONLineAfterTornLine(t *testing.T) {
	name := filepath.Join(testdir.New(t), "h.jsonl")
	os.WriteFile(name, []byte(`{"ok":1}`+"\n"+`{"torn":`), 0o666)
	if err := AppendJSONLine(name, map[string]int{"next": 2}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(name)
	want := `{"ok":1}` + "\n" + `{"torn":` + "\n" + `{"next":2}` + "\n"
	if string(b) != want {
		t.Errorf("history:\n%s\nwant:\n%s", b, want)
	}
}

// A batch syncs the file systems of the folders of what was added, once,
// and then forgets them; a folder that is gone is an error naming it.
func TestBatch(t *testing.T) {
	dir := testdir.New(t)
	var b Batch
	for _, name := range []string{"a/one.txt", "a/two.txt", "b/three.txt"} {
		name = filepath.Join(dir, filepath.FromSlash(name))
		if err := WriteFileUnsynced(name, []byte(name), 0o666); err != nil {
			t.Fatal(err)
		}
		b.Add(name)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone", "four.txt")
	b.Add(gone)
	err := b.Sync()
	if SyncsFS && (err == nil || !strings.Contains(err.Error(), filepath.Dir(gone))) {
		t.Fatalf("Sync with a folder gone: %v, want an error naming it", err)
	}
	if !SyncsFS && err != nil {
		t.Fatalf("Sync where each file is synced as written: %v", err)
	}
	if err := b.Sync(); err != nil {
		t.Fatalf("Sync after a failed one: %v, want the failed folder forgotten", err)
	}
}
