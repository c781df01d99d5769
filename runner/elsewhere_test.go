package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/comfytest"
	"github.com/lifeos/lifeos/internal/memstore"
	"github.com/lifeos/lifeos/internal/testdir"
)

// elsewhereRun runs root's pipeline with the cache in dir (shared by the
// workspaces of a test), returning the record, the helper calls made and
// the error.
func elsewhereRun(t *testing.T, root, cacheDir string, only []string, elsewhere map[string]*Outcome) (*Record, string, error) {
	t.Helper()
	t.Setenv("LIFEOS_CACHE", cacheDir)
	os.Remove(filepath.Join(root, "calls.log"))
	plan, err := Load(root, "pipelines/p.yaml", Options{Only: only})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rec, err := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, RunID: "20261130-120000-abcdef", Elsewhere: elsewhere})
	calls, _ := os.ReadFile(filepath.Join(root, "calls.log"))
	return rec, string(calls), err
}

func stepRecord(t *testing.T, rec *Record, id string) *StepRecord {
	t.Helper()
	for _, s := range rec.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in the record", id)
	return nil
}

func TestAssembleARunCarriedOutElsewhere(t *testing.T) {
	cacheDir := testdir.New(t)
	worker := memoWorkspace(t)
	if _, calls, err := elsewhereRun(t, worker, cacheDir, nil, nil); err != nil || !strings.Contains(calls, "all") {
		t.Fatalf("the worker's run: %v, calls %q", err, calls)
	}

	here := memoWorkspace(t)
	history := json.RawMessage(`{"run_id": "20261130-120000-abcdef", "grade": "B"}`)
	elsewhere := map[string]*Outcome{
		"each": {Status: StatusOK, Reason: "new element", DurationMS: 12, Worker: "pod-1 (queue gpu)"},
		"all":  {Status: StatusOK, Reason: "no cached result", DurationMS: 7, Worker: "pod-2 (queue default)", Appends: []Append{{File: "evals/h.jsonl", Line: history}}},
	}
	for range 2 { // assembling twice (a re-attached submitter) changes nothing
		rec, calls, err := elsewhereRun(t, here, cacheDir, nil, elsewhere)
		if err != nil {
			t.Fatal(err)
		}
		if calls != "" {
			t.Fatalf("steps ran again where the run was assembled: %q", calls)
		}
		if rec.ID != "20261130-120000-abcdef" {
			t.Errorf("run id %s, want the one given", rec.ID)
		}
		all := stepRecord(t, rec, "all")
		if all.Status != StatusOK || all.Worker != "pod-2 (queue default)" || all.Reason != "no cached result" || all.DurationMS != 7 {
			t.Errorf("record of all: %+v", all)
		}
		if stepRecord(t, rec, "each").Worker != "pod-1 (queue gpu)" {
			t.Errorf("record of each does not name its worker")
		}
		for _, f := range []string{"all.txt", "out/a.txt", "out/c.txt"} {
			want, _ := os.ReadFile(filepath.Join(worker, f))
			got, err := os.ReadFile(filepath.Join(here, f))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %q, want the worker's %q (%v)", f, got, want, err)
			}
		}
		lines, _ := os.ReadFile(filepath.Join(here, "evals/h.jsonl"))
		if got := strings.Count(string(lines), "\n"); got != 1 || !strings.Contains(string(lines), `"grade":"B"`) {
			t.Errorf("eval history holds %d lines: %q", got, lines)
		}
	}
}

func TestRunOneStepWhoseNeedsRanElsewhere(t *testing.T) {
	cacheDir := testdir.New(t)
	first := memoWorkspace(t)
	if _, calls, err := elsewhereRun(t, first, cacheDir, []string{"each"}, nil); err != nil || strings.Contains(calls, "all") {
		t.Fatalf("each on the first worker: %v, calls %q", err, calls)
	}
	second := memoWorkspace(t)
	rec, calls, err := elsewhereRun(t, second, cacheDir, []string{"all"}, map[string]*Outcome{"each": {Status: StatusOK, Worker: "pod-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != "all\n" {
		t.Errorf("calls %q: the need ran again, or the step did not run", calls)
	}
	o, err := rec.OutcomeOf("all")
	if err != nil || o.Status != StatusOK || o.Outputs != nil {
		t.Errorf("outcome of all: %+v, %v (a cached step's outputs travel through the cache)", o, err)
	}
}

func TestANeedMissingFromTheSharedCacheIsAnError(t *testing.T) {
	root := memoWorkspace(t)
	_, calls, err := elsewhereRun(t, root, testdir.New(t), []string{"all"}, map[string]*Outcome{"each": {Status: StatusOK, Worker: "pod-1"}})
	if err == nil || !strings.Contains(err.Error(), "carried out on pod-1, and its result is not in the shared cache") {
		t.Fatalf("error %v", err)
	}
	if calls != "" {
		t.Errorf("calls %q: nothing may run", calls)
	}
}

func TestAFailureElsewhereIsTheRunsFailure(t *testing.T) {
	root := memoWorkspace(t)
	rec, calls, err := elsewhereRun(t, root, testdir.New(t), nil, map[string]*Outcome{
		"each": {Status: StatusFailed, Error: "exit status 3", Worker: "pod-1"},
		"all":  {Status: StatusSkipped},
	})
	if err == nil || calls != "" {
		t.Fatalf("error %v, calls %q", err, calls)
	}
	if s := stepRecord(t, rec, "each"); s.Status != StatusFailed || !strings.Contains(s.Error, "on pod-1: exit status 3") {
		t.Errorf("record of each: %+v", s)
	}
}

// A step that is not cached (a health check) and was blocked by its gate
// elsewhere is blocked here too, from the outputs its worker reported.
func TestABlockedStepNotCachedIsAssembledFromItsOutputs(t *testing.T) {
	cacheDir := testdir.New(t)
	root := testdir.New(t)
	writeFile(t, root, "pipelines/p.yaml", `version: 1
steps:
  - id: check
    uses: exec
    with:
      run: `+helperRun("each", "pipelines/p.yaml", "out/copy.txt", "on-the-worker")+`
      outputs_file: "-"
    gate: outputs.tag == "expected"
`)
	worker := testdir.New(t)
	writeFile(t, worker, "pipelines/p.yaml", mustRead(t, filepath.Join(root, "pipelines/p.yaml")))
	rec, _, err := elsewhereRun(t, worker, cacheDir, nil, nil)
	if err == nil {
		t.Fatal("the gate did not block on the worker")
	}
	o, err := rec.OutcomeOf("check")
	if err != nil || o.Status != StatusBlocked || o.Outputs == nil {
		t.Fatalf("outcome %+v, %v: a blocked step that is not cached carries its outputs", o, err)
	}
	rec, calls, err := elsewhereRun(t, root, cacheDir, nil, map[string]*Outcome{"check": o})
	if err == nil || calls != "" {
		t.Fatalf("assembled: %v, calls %q; want blocked, nothing run", err, calls)
	}
	if s := stepRecord(t, rec, "check"); s.Status != StatusBlocked || s.Cached {
		t.Errorf("check: %+v; want blocked, and not cached (it ran there)", s)
	}

	// A worker stores its result under the run's id (RunOptions.Share):
	// assembled from it, the step still ran there, and its line says so.
	t.Setenv("LIFEOS_CACHE", cacheDir)
	plan, err := Load(worker, "pipelines/p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	wrec, _ := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, RunID: "20261130-120001-abcdef", Share: true})
	if o, err = wrec.OutcomeOf("check"); err != nil || o.Status != StatusBlocked || o.Cached {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	if plan, err = Load(root, "pipelines/p.yaml", Options{}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	rec, _ = plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, RunID: "20261130-120001-abcdef", Elsewhere: map[string]*Outcome{"check": o}})
	if s := stepRecord(t, rec, "check"); s.Status != StatusBlocked || s.Cached || s.UpToDate || strings.Contains(out.String(), "cached, gate false") {
		t.Errorf("check: %+v; want blocked, not cached:\n%s", s, out.String())
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestChunkRunsItsShareOfAForeach(t *testing.T) {
	cacheDir := testdir.New(t)
	root := memoWorkspace(t)
	t.Setenv("LIFEOS_CACHE", cacheDir)
	plan, err := Load(root, "pipelines/p.yaml", Options{Only: []string{"each"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rec, err := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, Chunk: &Chunk{Step: "each", From: 1, To: 2}})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := rec.OutcomeOf("each")
	if o.Elements != 3 {
		t.Errorf("elements %d, want all 3 counted", o.Elements)
	}
	calls, _ := os.ReadFile(filepath.Join(root, "calls.log"))
	if string(calls) != "each\n" {
		t.Fatalf("the chunk ran %q, want one element", calls)
	}
	if _, err := os.Stat(filepath.Join(root, "out/b.txt")); err != nil {
		t.Errorf("the chunk's element (index 1, in/b.txt) did not run: %v", err)
	}
	// The whole step then runs only the elements outside the chunk.
	_, calls2, err := elsewhereRun(t, root, cacheDir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(calls2, "each") != 2 {
		t.Errorf("the whole step ran %q: the chunk's element was not cached", calls2)
	}
}

// A chunk of a generation is a share of its images: only those are made
// (and kept in the per-item cache), the record counts all of them, and
// nothing is stored as the step's result, so the whole step, run next,
// makes only the others. A step whose work does not split refuses a chunk.
func TestChunkRunsAShareOfAGeneration(t *testing.T) {
	srv := comfytest.New(comfytest.Options{Loras: []string{"placeholder.safetensors"}})
	defer srv.Close()
	root := testdir.New(t)
	t.Setenv("LIFEOS_CACHE", testdir.New(t))
	wf, err := os.ReadFile("../steps/testdata/sdxl_lora_api.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "workflows/w.json", string(wf))
	writeFile(t, root, "pipelines/p.yaml", `version: 1
steps:
  - id: gen
    uses: comfyui.generate
    with: {server: "`+srv.URL+`", workflow: workflows/w.json, prompts: [a portrait], seed: 10, count: 4, output: out/gen}
  - id: other
    uses: exec
    with:
      run: `+helperRun("other")+`
`)
	run := func(chunk *Chunk) (*Record, error) {
		plan, err := Load(root, "pipelines/p.yaml", Options{Only: []string{chunk.Step}})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		return plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, Chunk: chunk})
	}
	rec, err := run(&Chunk{Step: "gen", From: 1, To: 3})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := rec.OutcomeOf("gen")
	if posts, _, _ := srv.Counts(); posts != 2 || o.Status != StatusOK || o.Elements != 4 || o.Summary != "images 1 to 3 of 4" {
		t.Errorf("the share: %d prompts, outcome %+v; want 2 of 4 images", posts, o)
	}
	if _, err := run(&Chunk{Step: "gen", From: 0, To: 4}); err != nil {
		t.Fatal(err)
	}
	if posts, _, _ := srv.Counts(); posts != 4 {
		t.Errorf("%d prompts after the whole range: the share stored a result, or its images were not kept", posts)
	}
	if _, _, err := elsewhereRun(t, root, os.Getenv("LIFEOS_CACHE"), []string{"gen"}, nil); err != nil {
		t.Fatal(err)
	}
	if posts, _, _ := srv.Counts(); posts != 4 {
		t.Errorf("%d prompts after the whole step: want none more, every image cached", posts)
	}
	if _, err := os.Stat(filepath.Join(root, "out/gen/0003_seed13.png")); err != nil {
		t.Error(err)
	}
	rec, _ = run(&Chunk{Step: "other", From: 0, To: 1})
	if o, _ := rec.OutcomeOf("other"); o.Status != StatusFailed || !strings.Contains(o.Error, "cannot be carried out in shares") {
		t.Errorf("a share of a step that does not split: %+v", o)
	}
}

// The outputs a sub-run declared, carried with its pipeline step: each
// once, a path inside a declared folder left to the folder.
func TestWriteSetList(t *testing.T) {
	var w writeSet
	w.add([]string{"out/p/images", "out/p/approved/", "out/p/filter.json"})
	w.add([]string{"out/p", "out/p/images/x.png", "out/q*.txt", "out/q*.txt/a", "out/pp"})
	got := w.list()
	want := []string{"out/p", "out/pp", "out/q*.txt", "out/q*.txt/a"}
	if !slices.Equal(got, want) {
		t.Errorf("list = %q, want %q", got, want)
	}
}

// An outcome's cost is that of the cost lines it appended, and only those.
func TestOutcomeCost(t *testing.T) {
	o := &Outcome{Appends: []Append{
		{File: ".lifeos/cost.jsonl", Line: json.RawMessage(`{"activity":"generation","seconds":3600,"rate_per_hour":0.5,"cost":0.5}`)},
		{File: "evals/h.jsonl", Line: json.RawMessage(`{"cost":7}`)},
		{File: ".lifeos/cost.jsonl", Line: json.RawMessage(`{"activity":"training","cost":1.25}`)},
	}}
	if c, ok := o.Cost(); !ok || c != 1.75 {
		t.Errorf("Cost = %v, %v; want 1.75", c, ok)
	}
	if _, ok := (&Outcome{}).Cost(); ok {
		t.Error("an outcome without cost lines logged a cost")
	}
}

// A worker's run bundles the entries of a step's elements, and the machine
// that assembles the run adopts them with one request, not one per
// element; the files it restores are the worker's.
func TestAssembleAdoptsTheWorkersBundle(t *testing.T) {
	store := memstore.New()
	worker := memoWorkspace(t)
	plan, err := Load(worker, "pipelines/p.yaml", Options{Only: []string{"each"}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	wc := sharedCache(t, store)
	wrec, err := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, RunID: "20261130-120000-abcdef", Cache: wc, Share: true, Scratch: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wc.FlushRemote(context.Background())
	o, err := wrec.OutcomeOf("each")
	if err != nil || len(o.Entries) != 1 {
		t.Fatalf("outcome %+v, %v: want one bundle of the 3 elements' entries", o, err)
	}

	here := memoWorkspace(t)
	plan, err = Load(here, "pipelines/p.yaml", Options{Only: []string{"each"}})
	if err != nil {
		t.Fatal(err)
	}
	store.Mu.Lock()
	gets := store.Gets
	store.Mu.Unlock()
	rec, err := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, RunID: "20261130-120000-abcdef", Cache: sharedCache(t, store), Elsewhere: map[string]*Outcome{"each": o}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	store.Mu.Lock()
	gets = store.Gets - gets
	store.Mu.Unlock()
	if gets != 1 {
		t.Errorf("%d requests to assemble 3 elements, want 1 (the bundle)", gets)
	}
	if s := stepRecord(t, rec, "each"); s.Status != StatusOK {
		t.Errorf("each: %s, want ok (it ran on the worker)", s.Status)
	}
	if calls, _ := os.ReadFile(filepath.Join(here, "calls.log")); len(calls) > 0 {
		t.Errorf("ran again where assembled: %q", calls)
	}
	for _, f := range []string{"out/a.txt", "out/b.txt", "out/c.txt"} {
		want, _ := os.ReadFile(filepath.Join(worker, f))
		if got, err := os.ReadFile(filepath.Join(here, f)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v; want the worker's %q", f, got, err, want)
		}
	}
}

// A cold foreach with a shared store behind the cache asks it once for
// each element's entry: the batch's prefetch finds them missing, and the
// lookup that decides to run an element takes that answer. A run that
// does not read the cache (--no-cache) does not ask at all.
func TestAColdBatchAsksTheStoreOncePerElement(t *testing.T) {
	for _, noCache := range []bool{false, true} {
		store := memstore.New()
		root := memoWorkspace(t)
		for _, name := range []string{"d", "e", "f", "g", "h"} {
			writeFile(t, root, "in/"+name+".txt", name)
		}
		plan, err := Load(root, "pipelines/p.yaml", Options{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		// One job: the eight elements are probed in batches of two.
		if _, err := plan.Run(context.Background(), RunOptions{Stdout: &out, Stderr: &out, Jobs: 1, Cache: sharedCache(t, store), NoCache: noCache}); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		want := 9 // eight elements of each, and all
		if noCache {
			want = 0
		}
		if store.Gets != want {
			t.Errorf("--no-cache %v: %d lookups in the store, want %d", noCache, store.Gets, want)
		}
	}
}
