package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
)

// memoWorkspace has three inputs, a foreach that writes one output per
// input, and a filter over all outputs that reads a threshold.
func memoWorkspace(t *testing.T) string {
	t.Helper()
	root := testdir.New(t)
	for _, name := range []string{"a", "b", "c"} {
		writeFile(t, root, "in/"+name+".txt", name+name)
	}
	writeFile(t, root, "pipelines/p.yaml", `version: 1
params:
  tag: v1
steps:
  - id: each
    uses: exec
    foreach: {glob: "in/*.txt"}
    with:
      run: `+helperRun("each", "${{ item }}", "out/${{ item[3:] }}", "${{ params.tag }}")+`
      inputs: ["${{ item }}"]
      outputs: ["out/${{ item[3:] }}"]
      outputs_file: "-"
  - id: all
    uses: exec
    needs: each
    with:
      run: `+helperRun("all", "${{ policy.sharpness.min }}")+`
      inputs: ["out/*.txt"]
      outputs: [all.txt]
`)
	return root
}

func writeFile(t testing.TB, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, name)
	os.MkdirAll(filepath.Dir(p), 0o777)
	if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
		t.Fatal(err)
	}
}

// age sets every workspace file's and folder's mtime an hour back, so that
// stats are trusted (nothing is "racily" fresh) without waiting.
func age(t *testing.T, root string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !strings.Contains(p, ".lifeos") {
			os.Chtimes(p, old, old)
		}
		return nil
	})
}

type memoRun struct {
	hashed []string // elements whose key was computed (not served by memo)
	calls  string
	rec    *Record
}

func runMemo(t *testing.T, root string, o Options) memoRun {
	t.Helper()
	t.Setenv("LIFEOS_CACHE", "")
	t.Setenv("LIFEOS_DEBUG", "cachehash=1")
	os.Remove(filepath.Join(root, "calls.log"))
	plan, err := Load(root, "pipelines/p.yaml", o)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	rec, err := plan.Run(context.Background(), RunOptions{Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var r memoRun
	for _, line := range strings.Split(stderr.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "HASH["); ok {
			name = name[:strings.Index(name, "]: ")]
			if !seen[name] {
				seen[name] = true
				r.hashed = append(r.hashed, name)
			}
		}
	}
	calls, _ := os.ReadFile(filepath.Join(root, "calls.log"))
	r.calls = strings.ReplaceAll(strings.TrimSpace(string(calls)), "\n", " ")
	r.rec = rec
	return r
}

// settle runs until every element is memoised: the first run creates the
// outputs (too fresh to memoise), aging makes them trustworthy, the next
// run records the memos.
func settle(t *testing.T, root string) {
	t.Helper()
	age(t, root)
	if r := runMemo(t, root, Options{}); r.calls != "" {
		t.Fatalf("settling re-ran: %s", r.calls)
	}
	if r := runMemo(t, root, Options{}); len(r.hashed) != 0 {
		t.Fatalf("memos not recorded: hashed %v", r.hashed)
	}
}

func TestMemoServesUnchangedRun(t *testing.T) {
	root := memoWorkspace(t)
	age(t, root)
	if r := runMemo(t, root, Options{}); r.calls != "each each each all" {
		t.Fatalf("first run calls %q", r.calls)
	}
	settle(t, root)
	r := runMemo(t, root, Options{})
	for _, s := range r.rec.Steps {
		if s.Status != StatusCached {
			t.Errorf("step %s: %s", s.ID, s.Status)
		}
	}
	if got := r.rec.Steps[0].Outputs.([]any)[2].(map[string]any)["tag"]; got != "v1" {
		t.Errorf("memoised outputs lost: %v", r.rec.Steps[0].Outputs)
	}
	// The filter's memo holds the stamp of the folder its pattern lists,
	// so that an unchanged folder is not listed again.
	ks := loadKeyStateAsync(stateFile(root, "pipelines/p.yaml"), false)
	if m := ks.memo("all", ""); m == nil || m.dir.path != "out" {
		t.Errorf("the filter's memo has no stamp of out/: %+v", m)
	}
}

func TestMemoInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string) Options
		calls  string   // commands that must run
		hashed []string // elements that must take the full path (at least)
		memo   []string // elements that must be served from their memo
	}{
		{"input edited", func(t *testing.T, root string) Options {
			writeFile(t, root, "in/b.txt", "BB")
			return Options{}
		}, "each all", []string{"each[1]", "all"}, nil},
		{"input added", func(t *testing.T, root string) Options {
			writeFile(t, root, "in/d.txt", "dd")
			return Options{}
		}, "each all", []string{"each[3]", "all"}, nil},
		// The folder the filter lists changed: it is listed again.
		{"file added beside the outputs", func(t *testing.T, root string) Options {
			writeFile(t, root, "out/z.txt", "zz")
			return Options{}
		}, "all", []string{"all"}, []string{"each[0]", "each[1]", "each[2]"}},
		// ...and its result for the three files is still in the cache.
		{"file removed beside the outputs", func(t *testing.T, root string) Options {
			writeFile(t, root, "out/z.txt", "zz")
			runMemo(t, root, Options{})
			age(t, root)
			runMemo(t, root, Options{})
			os.Remove(filepath.Join(root, "out/z.txt"))
			return Options{}
		}, "", []string{"all"}, []string{"each[0]", "each[1]", "each[2]"}},
		{"output deleted", func(t *testing.T, root string) Options {
			os.Remove(filepath.Join(root, "out/a.txt"))
			return Options{}
		}, "", []string{"each[0]"}, nil},
		{"output edited", func(t *testing.T, root string) Options {
			writeFile(t, root, "all.txt", "tampered")
			return Options{}
		}, "", []string{"all"}, nil},
		{"param changed", func(t *testing.T, root string) Options {
			return Options{Params: []string{"tag=v2"}}
		}, "each each each", []string{"each[0]", "each[1]", "each[2]", "all"}, nil},
		// Only the step that reads the threshold takes the full path: the
		// elements that do not read it keep their memos.
		{"threshold changed", func(t *testing.T, root string) Options {
			return Options{Sets: []string{"sharpness.min=0.9"}}
		}, "all", []string{"all"}, []string{"each[0]", "each[1]", "each[2]"}},
		{"step edited", func(t *testing.T, root string) Options {
			p := filepath.Join(root, "pipelines/p.yaml")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"${{ policy.sharpness.min }}"]`), []byte(`"${{ policy.sharpness.min }}", "edited"]`), 1), 0o666)
			return Options{}
		}, "all", []string{"all"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := memoWorkspace(t)
			age(t, root)
			runMemo(t, root, Options{})
			settle(t, root)
			o := tc.change(t, root)
			r := runMemo(t, root, o)
			if r.calls != tc.calls {
				t.Errorf("calls %q, want %q", r.calls, tc.calls)
			}
			for _, h := range tc.hashed {
				found := false
				for _, x := range r.hashed {
					found = found || x == h
				}
				if !found {
					t.Errorf("%s served from its memo; hashed only %v", h, r.hashed)
				}
			}
			for _, m := range tc.memo {
				if slices.Contains(r.hashed, m) {
					t.Errorf("%s took the full path (hashed %v); want it served from its memo", m, r.hashed)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(root, "out/a.txt")); string(got) != "aa" {
				t.Errorf("out/a.txt = %q", got)
			}
		})
	}
}

// memoKey's fast path for plain strings hashes what json.Marshal would
// give, so keys do not depend on which path computed them.
func TestMemoKeyFastPath(t *testing.T) {
	fp := [16]byte{1, 2, 3}
	for i, item := range []any{"images/img001.png", "a b/c-d_e.txt", "<x>&", "é.png", "tab\there", `quote"`, 3, map[string]any{"k": "v"}, nil} {
		el := &element{index: i, item: item}
		j, _ := json.Marshal(item)
		want := sha256.Sum256(append(append([]byte{}, fp[:]...), fmt.Sprintf("%d %s", i, j)...))
		if got := memoKey(fp, el); got != [16]byte(want[:16]) {
			t.Errorf("%#v: memoKey differs from the JSON form", item)
		}
	}
}

// A foreach over one folder is listed again only when the folder changed;
// a listing that went through a link is never kept, since the link's
// target may change while the folder does not.
func TestForeachListing(t *testing.T) {
	root := memoWorkspace(t)
	age(t, root)
	runMemo(t, root, Options{})
	settle(t, root)
	listed := func() []string {
		ks := loadKeyStateAsync(stateFile(root, "pipelines/p.yaml"), false)
		<-ks.ready
		if l := ks.listings["each"]; l != nil {
			return l.files
		}
		return nil
	}
	if got := listed(); !slices.Equal(got, []string{"in/a.txt", "in/b.txt", "in/c.txt"}) {
		t.Fatalf("listing kept: %q", got)
	}
	total := func() int { return runMemo(t, root, Options{}).rec.Steps[0].Total }
	if n := total(); n != 3 {
		t.Errorf("no-op: %d elements, want 3", n)
	}
	os.Remove(filepath.Join(root, "in/c.txt"))
	if n := total(); n != 2 {
		t.Errorf("after removing in/c.txt: %d elements, want 2", n)
	}
	writeFile(t, root, "elsewhere/x.txt", "xx")
	if err := os.Symlink("../elsewhere/x.txt", filepath.Join(root, "in/l.txt")); err != nil {
		t.Skip(err)
	}
	if st, err := os.Stat(filepath.Join(root, "in/l.txt")); err != nil || !st.Mode().IsRegular() {
		t.Skip("a link to a file does not read as the file here (Wine)")
	}
	age(t, root)
	if n := total(); n != 3 {
		t.Errorf("with a link: %d elements, want 3", n)
	}
	if got := listed(); got != nil {
		t.Errorf("a listing through a link was kept: %q", got)
	}
	os.Remove(filepath.Join(root, "elsewhere/x.txt"))
	os.Mkdir(filepath.Join(root, "elsewhere/x.txt"), 0o777) // in/ itself unchanged
	if n := total(); n != 2 {
		t.Errorf("once the link leads to a folder: %d elements, want 2", n)
	}
}

// A folder named as an input (`inputs: [data]`) holding files only is
// checked by its stamp and its files' stamps, without listing it; one
// holding a folder is listed every time, since a file added down there
// leaves its own stamp alone. Each case right after the memo is made, and
// after the folder changed and changed back (its stamp is new, what it
// holds is not: the memo is kept, and its folder stamp renewed only when
// the folder alone decides).
func TestMemoOfAFolderNamedAsItIs(t *testing.T) {
	for _, sub := range []bool{false, true} {
		for _, changedBack := range []bool{false, true} {
			root := testdir.New(t)
			writeFile(t, root, "data/a.txt", "a")
			if sub {
				writeFile(t, root, "data/sub/b.txt", "b")
			}
			writeFile(t, root, "pipelines/p.yaml", `version: 1
steps:
  - id: all
    uses: exec
    with:
      run: `+helperRun("all", "1")+`
      inputs: [data]
      outputs: [all.txt]
`)
			age(t, root)
			runMemo(t, root, Options{})
			settle(t, root)
			// Old times, each later than the last, for what the test
			// touches: stamps change, nothing is racily fresh.
			clock := time.Now().Add(-time.Hour)
			touch := func(rel string) {
				clock = clock.Add(time.Second)
				os.Chtimes(filepath.Join(root, rel), clock, clock)
			}
			if changedBack {
				writeFile(t, root, "data/tmp.txt", "x")
				os.Remove(filepath.Join(root, "data/tmp.txt"))
				touch("data")
				if r := runMemo(t, root, Options{}); r.calls != "" {
					t.Fatalf("sub %v: the same files re-ran %q", sub, r.calls)
				}
			}
			added := "data/c.txt"
			if sub {
				added = "data/sub/c.txt" // data's own stamp does not change
			}
			writeFile(t, root, added, "c")
			touch(added)
			touch(path.Dir(added))
			if r := runMemo(t, root, Options{}); r.calls != "all" {
				t.Errorf("sub %v, changed back %v: a file added as %s: calls %q, want the step run", sub, changedBack, added, r.calls)
			}
		}
	}
}
