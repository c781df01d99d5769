package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
