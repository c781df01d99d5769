package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/memstore"
	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/runner/cache"
)

func sharedCache(t *testing.T, store cache.Remote) *cache.Cache {
	t.Helper()
	c, err := cache.Open(testdir.New(t))
	if err != nil {
		t.Fatal(err)
	}
	c.SetRemote(store, nil)
	t.Cleanup(func() { c.FlushRemote(context.Background()); c.Close() })
	return c
}

func TestSnapshotMaterializes(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	root := testdir.New(t)
	writeFile(t, root, "pipelines/p.yaml", "version: 1\n")
	writeFile(t, root, "datasets/a/1.png", "png one")
	writeFile(t, root, "datasets/a/1.txt", "a caption")
	writeFile(t, root, "datasets/a/2.txt", "a caption") // the same content, packed once
	writeFile(t, root, "datasets/a/big.png", strings.Repeat("big ", packSmall/4+1))
	writeFile(t, root, "scripts/train.sh", "#!/bin/sh\necho train\n")
	os.Chmod(filepath.Join(root, "scripts/train.sh"), 0o755)
	writeFile(t, root, ".lifeos/runs/x/run.json", "{}")
	writeFile(t, root, ".git/HEAD", "ref: main")
	writeFile(t, root, "out/demo/report.html", "an output")

	here := sharedCache(t, store)
	id, st, err := TakeSnapshot(ctx, root, here, []string{"out/demo"})
	if err != nil {
		t.Fatal(err)
	}
	// The five small files in one pack, the big one on its own, the manifest.
	if st.Files != 6 || st.Sent != 3 || st.SentBytes > int64(packSmall)+1024 {
		t.Fatalf("snapshot: %+v, want 6 files, 3 sent", st)
	}

	worker := sharedCache(t, store)
	dir := filepath.Join(testdir.New(t), "not made yet")
	if err := Materialize(ctx, worker, id, dir, ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pipelines/p.yaml", "datasets/a/1.png", "datasets/a/1.txt", "datasets/a/2.txt", "datasets/a/big.png", "scripts/train.sh"} {
		want, _ := os.ReadFile(filepath.Join(root, f))
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %q, %v", f, got, err)
		}
	}
	for _, f := range []string{".lifeos/runs/x/run.json", ".git/HEAD", "out/demo/report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was snapshotted", f)
		}
	}
	if runtime.GOOS != "windows" {
		if info, err := os.Stat(filepath.Join(dir, "scripts/train.sh")); err != nil || info.Mode()&0o100 == 0 {
			t.Errorf("the script lost its executable bit: %v %v", info.Mode(), err)
		}
	}

	// Unchanged: nothing is sent again. One file changed: that file.
	if _, st, err := TakeSnapshot(ctx, root, here, []string{"out/demo"}); err != nil || st.Sent != 0 {
		t.Errorf("unchanged snapshot sent %d, %v", st.Sent, err)
	}
	writeFile(t, root, "datasets/a/1.txt", "a better caption")
	os.Remove(filepath.Join(root, "datasets/a/1.png"))
	id2, st, err := TakeSnapshot(ctx, root, here, []string{"out/demo"})
	if err != nil || st.Sent != 2 {
		t.Fatalf("changed snapshot sent %d, %v; want the pack and the manifest", st.Sent, err)
	}
	writeFile(t, dir, "out/demo/report.html", "left by a step")
	if err := Materialize(ctx, worker, id2, dir, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "datasets/a/1.txt")); string(got) != "a better caption" {
		t.Errorf("changed file: %q", got)
	}
	for _, gone := range []string{"datasets/a/1.png", "out/demo/report.html"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s is not in the snapshot and was kept", gone)
		}
	}
}

func TestMaterializeRefusesWhatLeavesItsFolder(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	c := sharedCache(t, store)
	for _, p := range []string{"../escape.txt", "/etc/x", "a/../../b", "a//b"} {
		data, _ := json.Marshal(Snapshot{Version: 1, Files: []SnapshotFile{{Path: p, SHA256: cache.Sum([]byte("x")), Size: 1}}})
		if _, err := c.UploadData(ctx, data); err != nil {
			t.Fatal(err)
		}
		err := Materialize(ctx, sharedCache(t, store), cache.Sum(data), testdir.New(t), "")
		if err == nil || !strings.Contains(err.Error(), "is not a relative workspace path") {
			t.Errorf("path %q: %v", p, err)
		}
	}
}

func TestMaterializeRefusesADamagedFile(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("the real content ", packSmall/16)
	for _, tc := range []struct{ name, content, want string }{
		{"small.txt", "the real content", "pack 1"}, // its pack is damaged
		{"big.png", big, "big.png"},
	} {
		store := memstore.New()
		root := testdir.New(t)
		writeFile(t, root, tc.name, tc.content)
		id, _, err := TakeSnapshot(ctx, root, sharedCache(t, store), nil)
		if err != nil {
			t.Fatal(err)
		}
		// The object sent, small file or pack: the same bytes here.
		sum := cache.Sum([]byte(tc.content)).String()
		store.Set("cas/"+sum[:2]+"/"+sum, []byte(strings.Replace(tc.content, "real", "r3al", 1)))
		dir := testdir.New(t)
		if err := Materialize(ctx, sharedCache(t, store), id, dir, ""); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "mismatch") {
			t.Fatalf("damaged %s: %v", tc.name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, tc.name)); err == nil {
			t.Errorf("a damaged %s was written", tc.name)
		}
	}
}

// A manifest that places a file where its pack holds other content, or
// past the pack's end, is refused: nothing unchecked is written.
func TestMaterializeChecksPackedFiles(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	c := sharedCache(t, store)
	pack := []byte("onetwo")
	if _, err := c.UploadData(ctx, pack); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    SnapshotFile
		want string
	}{
		{SnapshotFile{Path: "a.txt", SHA256: cache.Sum([]byte("one")), Size: 3, Pack: 1, Offset: 3}, "other content"},
		{SnapshotFile{Path: "a.txt", SHA256: cache.Sum([]byte("one")), Size: 3, Pack: 1, Offset: 5}, "not in its pack"},
		{SnapshotFile{Path: "a.txt", SHA256: cache.Sum([]byte("one")), Size: 3, Pack: 2}, "no pack 2"},
	} {
		data, _ := json.Marshal(Snapshot{Version: 2, Packs: []cache.OutputID{cache.Sum(pack)}, Files: []SnapshotFile{tc.f}})
		if _, err := c.UploadData(ctx, data); err != nil {
			t.Fatal(err)
		}
		dir := testdir.New(t)
		if err := Materialize(ctx, sharedCache(t, store), cache.Sum(data), dir, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "a.txt")); err == nil {
			t.Errorf("%+v: a.txt was written", tc.f)
		}
	}
}

// A folder a step or another run left, whatever it holds, is made the
// snapshot: a link is replaced, not written through; a folder where the
// snapshot has a file and a file where it has a folder give way.
func TestMaterializeOverAnotherCopy(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	root := testdir.New(t)
	writeFile(t, root, "a.txt", "a")
	writeFile(t, root, "b.txt", "b")
	writeFile(t, root, "c/d.txt", "d")
	id, _, err := TakeSnapshot(ctx, root, sharedCache(t, store), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, elsewhere := testdir.New(t), testdir.New(t)
	writeFile(t, elsewhere, "target.txt", "not to be written")
	writeFile(t, dir, "b.txt/inside", "a folder where the snapshot has a file")
	writeFile(t, dir, "c", "a file where the snapshot has a folder")
	writeFile(t, dir, "old.txt", "from another run")
	writeFile(t, dir, ".lifeos/state", "kept")
	if err := os.Symlink(filepath.Join(elsewhere, "target.txt"), filepath.Join(dir, "a.txt")); err != nil {
		t.Skipf("no links here: %v", err)
	}
	if err := Materialize(ctx, sharedCache(t, store), id, dir, ""); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"a.txt": "a", "b.txt": "b", "c/d.txt": "d", ".lifeos/state": "kept"} {
		if got, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", f, got, err, want)
		}
	}
	if st, err := os.Lstat(filepath.Join(dir, "a.txt")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("a.txt is still a link")
	}
	if got, _ := os.ReadFile(filepath.Join(elsewhere, "target.txt")); string(got) != "not to be written" {
		t.Errorf("written through the link: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.txt")); err == nil {
		t.Error("old.txt is not in the snapshot and was kept")
	}
}

// A second copy of a snapshot links the files the first holds as the
// snapshot has them; a file that differs there, in content or mode, is
// written.
func TestMaterializeLinksFromAnotherCopy(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	root := testdir.New(t)
	writeFile(t, root, "pipelines/p.yaml", "version: 1\n")
	writeFile(t, root, "images/1.png", "png one")
	writeFile(t, root, "images/big.png", strings.Repeat("big ", packSmall/4+1))
	writeFile(t, root, "images/changed.png", "as snapshotted")
	writeFile(t, root, "run.sh", "#!/bin/sh\n")
	os.Chmod(filepath.Join(root, "run.sh"), 0o755)
	id, _, err := TakeSnapshot(ctx, root, sharedCache(t, store), nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := sharedCache(t, store)
	first, second := filepath.Join(testdir.New(t), "0"), filepath.Join(testdir.New(t), "1")
	if err := Materialize(ctx, worker, id, first, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(first, "run.sh"), filepath.Join(testdir.New(t), "probe")); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	writeFile(t, first, "images/changed.png", "changed by a step") // in place
	linked := []string{"pipelines/p.yaml", "images/1.png", "images/big.png"}
	written := []string{"images/changed.png"}
	if runtime.GOOS != "windows" {
		os.Chmod(filepath.Join(first, "run.sh"), 0o644)
		written = append(written, "run.sh")
	}
	if err := Materialize(ctx, worker, id, second, first); err != nil {
		t.Fatal(err)
	}
	same := func(f string) bool {
		a, _ := os.Stat(filepath.Join(first, f))
		b, err := os.Stat(filepath.Join(second, f))
		return err == nil && os.SameFile(a, b)
	}
	for _, f := range linked {
		want, _ := os.ReadFile(filepath.Join(root, f))
		if got, _ := os.ReadFile(filepath.Join(second, f)); string(got) != string(want) || !same(f) {
			t.Errorf("%s: %q, linked %v; want the first copy's file", f, got, same(f))
		}
	}
	for _, f := range written {
		want, _ := os.ReadFile(filepath.Join(root, f))
		if got, _ := os.ReadFile(filepath.Join(second, f)); string(got) != string(want) || same(f) {
			t.Errorf("%s: %q, linked %v; want the snapshot's, written", f, got, same(f))
		}
	}
	if info, err := os.Stat(filepath.Join(second, "run.sh")); runtime.GOOS != "windows" && (err != nil || info.Mode()&0o100 == 0) {
		t.Errorf("run.sh lost its executable bit: %v", err)
	}
}

// Small files fill one pack after another; each lands where the manifest
// says, whichever pack holds it.
func TestSnapshotPacks(t *testing.T) {
	defer func(n int) { packBytes = n }(packBytes)
	packBytes = 20
	ctx := context.Background()
	store := memstore.New()
	root := testdir.New(t)
	contents := map[string]string{}
	for i := range 7 {
		name := fmt.Sprintf("captions/%d.txt", i)
		contents[name] = fmt.Sprintf("caption number %d", i) // 16 bytes: one a pack
		writeFile(t, root, name, contents[name])
	}
	writeFile(t, root, "captions/same.txt", contents["captions/3.txt"])
	contents["captions/same.txt"] = contents["captions/3.txt"]
	id, st, err := TakeSnapshot(ctx, root, sharedCache(t, store), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 8 { // seven packs (the copy shares one) and the manifest
		t.Errorf("sent %d, want 8", st.Sent)
	}
	dir := testdir.New(t)
	if err := Materialize(ctx, sharedCache(t, store), id, dir, ""); err != nil {
		t.Fatal(err)
	}
	for name, want := range contents {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}

// A manifest of a newer format, or not a manifest, says so: the worker
// that reads it runs an older lifeos than the submitting side.
func TestMaterializeRefusesAnotherFormat(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	c := sharedCache(t, store)
	for _, data := range [][]byte{[]byte(`{"version": 3, "files": []}`), []byte("not json")} {
		if _, err := c.UploadData(ctx, data); err != nil {
			t.Fatal(err)
		}
		err := Materialize(ctx, sharedCache(t, store), cache.Sum(data), testdir.New(t), "")
		if !errors.Is(err, ErrSnapshotFormat) {
			t.Errorf("%s: %v, want ErrSnapshotFormat", data, err)
		}
	}
}

// What a step wrote in a copy is set aside when the copy is used again,
// not deleted: the step restoring the same file links it back
// (RunOptions.LinkFrom) instead of creating it anew. The attic holds the
// last file set aside under each path.
func TestMaterializeSetsAsideWhatStepsWrote(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	root := testdir.New(t)
	writeFile(t, root, "pipelines/p.yaml", "version: 1\n")
	id, _, err := TakeSnapshot(ctx, root, sharedCache(t, store), nil)
	if err != nil {
		t.Fatal(err)
	}
	worker := sharedCache(t, store)
	dir := filepath.Join(testdir.New(t), "0")
	if err := Materialize(ctx, worker, id, dir, ""); err != nil {
		t.Fatal(err)
	}
	use := func(files map[string]string) {
		t.Helper()
		for name, content := range files {
			writeFile(t, dir, name, content) // a step's outputs
		}
		if err := Materialize(ctx, worker, id, dir, ""); err != nil {
			t.Fatal(err)
		}
		for name := range files {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s, which the snapshot lacks, is still in the copy", name)
			}
		}
	}
	use(map[string]string{"out/a.size": "1", "out/b.size": "2"})
	// The next use linked a.size back, and wrote b.size again.
	if err := os.Link(filepath.Join(AtticDir(dir), "out/a.size"), filepath.Join(dir, "out/a.size")); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	use(map[string]string{"out/b.size": "22", "out/c.size": "3"})
	for name, want := range map[string]string{"out/a.size": "1", "out/b.size": "22", "out/c.size": "3"} {
		if got, err := os.ReadFile(filepath.Join(AtticDir(dir), name)); err != nil || string(got) != want {
			t.Errorf("%s set aside: %q, %v; want %q", name, got, err, want)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "pipelines/p.yaml")); string(got) != "version: 1\n" {
		t.Errorf("pipelines/p.yaml: %q", got)
	}
}
