package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/steps"
)

// storedWorkspace has a step whose outputs are large (200 items) and a
// filter over them that reads a threshold.
func storedWorkspace(t *testing.T) string {
	t.Helper()
	root := testdir.New(t)
	for i := range 200 {
		writeFile(t, root, "in/x"+strconv.Itoa(1000+i)+".txt", strconv.Itoa(i))
	}
	writeFile(t, root, "pipelines/p.yaml", `version: 1
steps:
  - id: list
    uses: exec
    with:
      run: `+helperRun("list")+`
      inputs: ["in/*.txt"]
      outputs_file: "-"
  - id: keep
    uses: filter
    needs: list
    with:
      approve: item.n >= policy.sharpness.min
      output: out
`)
	return root
}

var approvedRE = regexp.MustCompile(`^(\d+) approved, (\d+) rejected`)

func filterCounts(t *testing.T, rec *Record) (approved, rejected int) {
	t.Helper()
	for _, s := range rec.Steps {
		if s.ID != "keep" {
			continue
		}
		m := approvedRE.FindStringSubmatch(summaryOf(s.Outputs))
		if m == nil {
			t.Fatalf("keep: summary %q", summaryOf(s.Outputs))
		}
		a, _ := strconv.Atoi(m[1])
		r, _ := strconv.Atoi(m[2])
		return a, r
	}
	t.Fatal("no step keep")
	return
}

// A no-op run serves large outputs by reference without decoding them; a
// threshold edit re-runs the filter, which gets every item; a damaged
// object is a miss, and the step that made it runs again and repairs it.
func TestStoredOutputs(t *testing.T) {
	root := storedWorkspace(t)
	age(t, root)
	first := runMemo(t, root, Options{})
	if first.calls != "list" {
		t.Fatalf("first run calls %q", first.calls)
	}
	// Once the filter has its items, list's large outputs leave memory:
	// they are the cache object its result refers to.
	if so, ok := first.rec.Steps[0].Outputs.(*storedOutputs); !ok || so.v != nil || summaryOf(so) != "200 items" {
		t.Errorf("first run: list's outputs are %T", first.rec.Steps[0].Outputs)
	}
	if a, rj := filterCounts(t, first.rec); a+rj != 200 {
		t.Errorf("first run: %d approved, %d rejected", a, rj)
	}
	// The filter's folders are stamped too: old enough to be trusted.
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{"out", "out/approved", "out/rejected"} {
		os.Chtimes(filepath.Join(root, d), old, old)
	}
	settle(t, root)
	state, _ := filepath.Glob(filepath.Join(root, ".lifeos/state/*.ids"))
	data, _ := os.ReadFile(state[0])
	if n := strings.Count(string(data), "\nR "); n != 2 {
		t.Fatalf("%d memos by reference, want 2 (list, keep):\n%.2000s", n, data)
	}

	r := runMemo(t, root, Options{})
	so, ok := r.rec.Steps[0].Outputs.(*storedOutputs)
	if !ok || so.v != nil || so.err != nil {
		t.Fatalf("no-op: list's outputs are %T, loaded: %v", r.rec.Steps[0].Outputs, ok && so.v != nil)
	}
	if a, rj := filterCounts(t, r.rec); a+rj != 200 || summaryOf(so) != "200 items" {
		t.Errorf("no-op: %d approved, %d rejected, summary %q", a, rj, summaryOf(so))
	}
	if w := r.rec.written.Steps[0]; w.OutputsObject != so.ref.String() || w.Outputs.(map[string]any)["summary"] != "200 items" {
		t.Errorf("record: outputs_object %q, outputs %v", w.OutputsObject, w.Outputs)
	}

	// Without memos (the key state gone), list is restored from the cache:
	// its large outputs stay in the object there too, not decoded whole.
	os.Remove(state[0])
	r = runMemo(t, root, Options{})
	if so, ok := r.rec.Steps[0].Outputs.(*storedOutputs); !ok || so.v != nil || summaryOf(so) != "200 items" || len(r.hashed) == 0 {
		t.Errorf("restored: list's outputs are %T, hashed %v", r.rec.Steps[0].Outputs, r.hashed)
	}
	if a, rj := filterCounts(t, r.rec); a+rj != 200 || r.calls != "" {
		t.Errorf("restored: %d approved, %d rejected, calls %q", a, rj, r.calls)
	}

	r = runMemo(t, root, Options{Sets: []string{"sharpness.min=150"}})
	if a, rj := filterCounts(t, r.rec); a != 50 || rj != 150 || r.calls != "" {
		t.Errorf("threshold edit: %d approved, %d rejected, calls %q; want 50, 150, none", a, rj, r.calls)
	}

	// Same size, other bytes: the object is damaged.
	obj := filepath.Join(r.rec.written.Steps[0].OutputsObject[:2], r.rec.written.Steps[0].OutputsObject+"-d")
	objPath := filepath.Join(root, ".lifeos/cache", obj)
	orig, err := os.ReadFile(objPath)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(objPath, 0o644)
	os.WriteFile(objPath, []byte(strings.Repeat("x", len(orig))), 0o644)
	r = runMemo(t, root, Options{Sets: []string{"sharpness.min=100"}})
	if a, rj := filterCounts(t, r.rec); a != 100 || rj != 100 || r.calls != "list" {
		t.Errorf("damaged object: %d approved, %d rejected, calls %q; want 100, 100, list", a, rj, r.calls)
	}
	if fixed, _ := os.ReadFile(objPath); string(fixed) != string(orig) {
		t.Error("the damaged object was not repaired")
	}
	r = runMemo(t, root, Options{Sets: []string{"sharpness.min=100"}})
	if r.calls != "" {
		t.Errorf("after the repair: calls %q", r.calls)
	}
}

// Malformed items fail the step that made them, whether its outputs are
// small (decoded whole) or large (kept in the cache, checked one item at
// a time as they are stored), and nothing downstream runs.
func TestMalformedItemsFailTheirStep(t *testing.T) {
	for _, n := range []int{3, 200} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			root := storedWorkspace(t)
			for i := n; i < 200; i++ {
				os.Remove(filepath.Join(root, "in/x"+strconv.Itoa(1000+i)+".txt"))
			}
			p := filepath.Join(root, "pipelines/p.yaml")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), helperRun("list"), helperRun("list", "1"), 1)), 0o666)
			t.Setenv("LIFEOS_CACHE", "")
			plan, err := Load(root, "pipelines/p.yaml", Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := plan.Run(context.Background(), RunOptions{})
			if err == nil || rec.Status != StatusFailed {
				t.Errorf("the run: %v, status %s; want it failed", err, rec.Status)
			}
			list, keep := rec.Steps[0], rec.Steps[1]
			if list.Status != StatusFailed || !strings.Contains(list.Error, "step list: outputs.items[1]: an item needs a path and a sha256") {
				t.Errorf("list: %s: %s", list.Status, list.Error)
			}
			if keep.Status != StatusSkipped {
				t.Errorf("keep: %s", keep.Status)
			}
		})
	}
}

// eachItem gives the items steps.ItemsFrom gives from the same JSON
// decoded by encoding/json, and the same errors. (The JSON is always
// json.Marshal's, which writes no key twice: gjson would keep the first.)
func TestEachItemAsItemsFrom(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, list := range []string{
		`[]`,
		`null`,
		`[{"path": "a.png", "sha256": "` + sum + `", "width": 1e3, "height": 7, "n": -0.5, "big": 12345678901234567890, "s": "\u00e9\n\"", "l": [1, "x", null, true], "m": {"k": {"k": []}}}]`,
		`[{"path": "a.png", "sha256": "` + sum + `"}, {"path": "b.png"}]`,
		`[{"path": "a.png", "sha256": "` + sum + `"}, 3]`,
		`{"path": "a.png"}`,
		`"x"`,
	} {
		var v any
		if err := json.Unmarshal([]byte(list), &v); err != nil {
			t.Fatal(err)
		}
		want, wantErr := steps.ItemsFrom(v)
		var got []steps.Item
		err := eachItem(jsonOf([]byte(list)), func(it steps.Item) { got = append(got, it) })
		if len(got) == 0 && len(want) == 0 {
			got, want = nil, nil
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || (wantErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", list, got, err, want, wantErr)
		}
	}
}
