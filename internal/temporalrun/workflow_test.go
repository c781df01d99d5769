package temporalrun

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

// fakeSteps stands in for the workers: each step's outcome is decided by
// the test, and the order in which they were started is kept.
type fakeSteps struct {
	mu      sync.Mutex
	started []string
	queues  map[string]string
	outcome func(t StepTask) (*runner.Outcome, error)
}

func (f *fakeSteps) CarryOut(ctx context.Context, t StepTask) (*runner.Outcome, error) {
	f.mu.Lock()
	f.started = append(f.started, t.Step)
	f.queues[t.Step] = activity.GetInfo(ctx).TaskQueue
	f.mu.Unlock()
	return f.outcome(t)
}

// seen returns what was started so far, and on which queues: an activity
// the workflow no longer waits for may still be finishing.
func (f *fakeSteps) seen() ([]string, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.started...), maps.Clone(f.queues)
}

func runWorkflow(t *testing.T, spec RunSpec, f *fakeSteps) (*Result, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivityWithOptions(f.CarryOut, activity.RegisterOptions{Name: ActivityName})
	env.ExecuteWorkflow(WorkflowName, spec)
	if !env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	var res Result
	if err := env.GetWorkflowError(); err != nil {
		return nil, err
	}
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return &res, nil
}

// diamond: a -> (b on gpu, c) -> d.
func diamond() RunSpec {
	return RunSpec{RunID: "20261130-120000-abcdef", Pipeline: "p.yaml", Snapshot: strings.Repeat("ab", 32), Steps: []StepSpec{
		{ID: "a", Queue: "default"},
		{ID: "b", Needs: []string{"a"}, Queue: "gpu"},
		{ID: "c", Needs: []string{"a"}, Queue: "default"},
		{ID: "d", Needs: []string{"b", "c"}, Queue: "default"},
	}}
}

func TestWorkflowRunsTheGraphInOrder(t *testing.T) {
	f := &fakeSteps{queues: map[string]string{}, outcome: func(t StepTask) (*runner.Outcome, error) {
		return &runner.Outcome{Status: runner.StatusOK, Summary: "done " + t.Step}, nil
	}}
	var seen []map[string]bool
	f.outcome = func(task StepTask) (*runner.Outcome, error) {
		done := map[string]bool{}
		for id := range task.Done {
			done[id] = true
		}
		f.mu.Lock()
		seen = append(seen, done)
		f.mu.Unlock()
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}
	res, err := runWorkflow(t, diamond(), f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runner.StatusOK || len(res.Outcomes) != 4 {
		t.Fatalf("result %+v", res)
	}
	started, queues := f.seen()
	f.mu.Lock()
	seen = append([]map[string]bool(nil), seen...)
	f.mu.Unlock()
	if started[0] != "a" || started[3] != "d" {
		t.Errorf("started %v: a first, d last", started)
	}
	if queues["b"] != "gpu" || queues["c"] != "default" {
		t.Errorf("queues %v", queues)
	}
	for i, step := range started {
		if step == "d" && !(seen[i]["a"] && seen[i]["b"] && seen[i]["c"]) {
			t.Errorf("d started knowing only %v: it needs the outcomes of a, b and c", seen[i])
		}
	}
}

// A step is told of the steps it needs, directly or not, and of no other
// done before it: tasks as large as the run would make the history of
// thousands of steps grow with the square of their number.
// Each step is told the outcomes of the steps it needs, directly or not,
// and not the graph: every activity's input, kept in the history, would
// otherwise grow with the run.
func TestWorkflowTellsAStepOfItsNeeds(t *testing.T) {
	var mu sync.Mutex // activities run at once
	told := map[string][]string{}
	graphs := 0
	f := &fakeSteps{queues: map[string]string{}, outcome: func(task StepTask) (*runner.Outcome, error) {
		var ids []string
		for id := range task.Done {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		mu.Lock()
		defer mu.Unlock()
		told[task.Step] = ids
		if len(task.Spec.Steps) > 0 {
			graphs++
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}}
	spec := diamond()
	spec.Steps = []StepSpec{
		{ID: "a", Queue: "default"},
		{ID: "lone", Queue: "default"},
		{ID: "b", Needs: []string{"a"}, Queue: "default"},
		{ID: "c", Needs: []string{"b"}, Queue: "default"},
	}
	if _, err := runWorkflow(t, spec, f); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(told); got != "map[a:[] b:[a] c:[a b] lone:[]]" {
		t.Errorf("each step was told of %s", got)
	}
	if graphs > 0 {
		t.Errorf("%d steps were told the whole graph", graphs)
	}
}

// Past the history Temporal suggests, the run starts no other step, lets
// those running finish, and continues as new with the outcomes so far;
// every step is carried out once.
func TestWorkflowContinuesAsNew(t *testing.T) {
	f := &fakeSteps{queues: map[string]string{}, outcome: func(t StepTask) (*runner.Outcome, error) {
		if len(t.Spec.Done) > 0 {
			return nil, errors.New("the task carries the run's carried outcomes")
		}
		return &runner.Outcome{Status: runner.StatusOK, Summary: "done " + t.Step}, nil
	}}
	spec := diamond()
	var runs [][]string
	for range 5 {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
		env.RegisterActivityWithOptions(f.CarryOut, activity.RegisterOptions{Name: ActivityName})
		env.SetContinueAsNewSuggested(true)
		before, _ := f.seen()
		env.ExecuteWorkflow(WorkflowName, spec)
		after, _ := f.seen()
		runs = append(runs, after[len(before):])
		err := env.GetWorkflowError()
		var next *workflow.ContinueAsNewError
		if !errors.As(err, &next) {
			if err != nil {
				t.Fatal(err)
			}
			var res Result
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if res.Status != runner.StatusOK || len(res.Outcomes) != 4 || res.Outcomes["a"].Summary != "done a" {
				t.Errorf("result %+v", res)
			}
			break
		}
		spec = RunSpec{}
		if err := converter.GetDefaultDataConverter().FromPayloads(next.Input, &spec); err != nil {
			t.Fatal(err)
		}
	}
	// a; then b and c, started together; then d.
	want := "[[a] [b c] [d]]"
	for _, r := range runs {
		sort.Strings(r)
	}
	if fmt.Sprint(runs) != want {
		t.Errorf("steps carried out by each run: %v, want %s", runs, want)
	}
}

func TestWorkflowStopsAtTheFirstFailure(t *testing.T) {
	f := &fakeSteps{queues: map[string]string{}, outcome: func(task StepTask) (*runner.Outcome, error) {
		if task.Step == "b" {
			return &runner.Outcome{Status: runner.StatusFailed, Error: "exit status 1"}, nil
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}}
	res, err := runWorkflow(t, diamond(), f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runner.StatusFailed {
		t.Errorf("status %s, want failed", res.Status)
	}
	if o := res.Outcomes["d"]; o.Status != runner.StatusSkipped || !strings.Contains(o.Reason, "step b failed") {
		t.Errorf("d: %+v, want skipped because b failed", o)
	}
	started, _ := f.seen()
	for _, s := range started {
		if s == "d" {
			t.Error("d started after b failed")
		}
	}
}

func TestWorkflowBlockedGate(t *testing.T) {
	f := &fakeSteps{queues: map[string]string{}, outcome: func(task StepTask) (*runner.Outcome, error) {
		if task.Step == "a" {
			return &runner.Outcome{Status: runner.StatusBlocked}, nil
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}}
	res, err := runWorkflow(t, diamond(), f)
	if err != nil {
		t.Fatal(err)
	}
	if started, _ := f.seen(); res.Status != runner.StatusBlocked || len(started) != 1 {
		t.Errorf("status %s, started %v: want blocked after a alone", res.Status, started)
	}
}

func TestWorkflowContinueOnError(t *testing.T) {
	spec := diamond()
	spec.Steps[1].ContinueOnError = true
	f := &fakeSteps{queues: map[string]string{}, outcome: func(task StepTask) (*runner.Outcome, error) {
		if task.Step == "b" {
			return &runner.Outcome{Status: runner.StatusFailed, Error: "flaky"}, nil
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}}
	res, err := runWorkflow(t, spec, f)
	if err != nil {
		t.Fatal(err)
	}
	started, _ := f.seen()
	sort.Strings(started)
	if strings.Join(started, "") != "abcd" || res.Status != runner.StatusOK {
		t.Errorf("started %v, status %s: a failure that may continue stops nothing", started, res.Status)
	}
}

func TestWorkflowRetriesALostWorker(t *testing.T) {
	attempts := 0
	f := &fakeSteps{queues: map[string]string{}, outcome: func(task StepTask) (*runner.Outcome, error) {
		if task.Step == "a" {
			attempts++
			if attempts < 3 {
				return nil, errors.New("materialise snapshot: connection reset")
			}
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}}
	res, err := runWorkflow(t, diamond(), f)
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 3 || res.Status != runner.StatusOK {
		t.Errorf("%d attempts, status %s", attempts, res.Status)
	}
}

// A step whose worker gives up says what the worker said, not the SDK's
// chain around it.
func TestWorkflowSaysWhatTheWorkerSaid(t *testing.T) {
	f := &fakeSteps{queues: map[string]string{}, outcome: func(task StepTask) (*runner.Outcome, error) {
		if task.Step == "a" {
			return nil, temporal.NewNonRetryableApplicationError("p.yaml on worker w1: no such step", "lifeos.Load", errors.New("no such step"))
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}}
	res, err := runWorkflow(t, diamond(), f)
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Outcomes["a"]; o.Status != runner.StatusFailed || o.Error != "p.yaml on worker w1: no such step" {
		t.Errorf("a: %+v", o)
	}
}

func TestWorkflowCancelled(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivityWithOptions(func(ctx context.Context, t StepTask) (*runner.Outcome, error) {
		if t.Step == "b" { // a long step, heartbeating until cancelled
			for ctx.Err() == nil {
				activity.RecordHeartbeat(ctx, "working")
				time.Sleep(10 * time.Millisecond)
			}
			return nil, ctx.Err()
		}
		return &runner.Outcome{Status: runner.StatusOK}, nil
	}, activity.RegisterOptions{Name: ActivityName})
	env.RegisterDelayedCallback(env.CancelWorkflow, 100*time.Millisecond)
	env.ExecuteWorkflow(WorkflowName, diamond())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Fatalf("error %v, want cancelled", err)
	}
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	if p.Outcomes["a"].Status != runner.StatusOK || p.Outcomes["d"] == nil || p.Outcomes["d"].Status == runner.StatusOK {
		t.Errorf("outcomes after cancel: a %+v, d %+v", p.Outcomes["a"], p.Outcomes["d"])
	}
}

func TestWorkflowFansAForeachOutInChunks(t *testing.T) {
	spec := RunSpec{RunID: "20261130-120000-abcdef", Pipeline: "p.yaml", Snapshot: strings.Repeat("ab", 32), ChunkSize: 100, Steps: []StepSpec{
		{ID: "score", Foreach: true, Queue: "gpu"},
		{ID: "filter", Needs: []string{"score"}, Queue: "default"},
	}}
	var mu sync.Mutex
	var chunks []string
	failAt := -1
	var filterGot int // the entry bundles the step after was told of
	f := &fakeSteps{queues: map[string]string{}}
	f.outcome = func(task StepTask) (*runner.Outcome, error) {
		mu.Lock()
		defer mu.Unlock()
		if task.Chunk != nil {
			chunks = append(chunks, fmt.Sprintf("%d-%d", task.Chunk.From, task.Chunk.To))
			if task.Chunk.From == failAt {
				return &runner.Outcome{Status: runner.StatusFailed, Error: "element 117 failed", Elements: 250}, nil
			}
			bundle := cache.Sum([]byte(task.Chunk.Step + fmt.Sprint(task.Chunk.From)))
			return &runner.Outcome{Status: runner.StatusOK, Elements: 250, Entries: []cache.OutputID{bundle}}, nil
		}
		if d := task.Done["score"]; d != nil {
			filterGot = len(d.Entries)
		}
		chunks = append(chunks, task.Step)
		return &runner.Outcome{Status: runner.StatusCached, Elements: 250, Summary: "all " + task.Step}, nil
	}
	res, err := runWorkflow(t, spec, f)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(chunks[1:3])
	if got := strings.Join(chunks, " "); got != "0-100 100-200 200-300 filter" {
		t.Errorf("activities %q: the first chunk, the others, then what needs the step", got)
	}
	if o := res.Outcomes["score"]; res.Status != runner.StatusOK || o.Status != runner.StatusOK || o.Reason != "in 3 chunks" || o.Elements != 250 {
		t.Errorf("result %+v, score %+v", res, o)
	}
	if n := len(res.Outcomes["score"].Entries); n != 3 || filterGot != 3 {
		t.Errorf("the step's outcome names %d entry bundles, the step after was told of %d; want the 3 chunks'", n, filterGot)
	}

	// A gate reads the whole step's outputs: the step itself runs last,
	// every element cached, and decides.
	chunks = nil
	spec.Steps[0].Gate = true
	res, err = runWorkflow(t, spec, f)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(chunks[1:3])
	if got := strings.Join(chunks, " "); got != "0-100 100-200 200-300 score filter" {
		t.Errorf("activities %q: the chunks, the step, then what needs it", got)
	}
	if o := res.Outcomes["score"]; o.Status != runner.StatusOK || o.Summary != "all score" {
		t.Errorf("score %+v", o)
	}
	spec.Steps[0].Gate = false

	chunks, failAt = nil, 100
	res, err = runWorkflow(t, spec, f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runner.StatusFailed || !strings.Contains(res.Outcomes["score"].Error, "element 117") {
		t.Errorf("a failed chunk: %+v, score %+v", res.Status, res.Outcomes["score"])
	}
	for _, c := range chunks {
		if c == "score" || c == "filter" {
			t.Errorf("activities %q: nothing runs after a failed chunk", chunks)
		}
	}
}

// A generation is shared out in shares of its images (DefaultShare when
// no chunk size is given): the first says how many there are, the others
// run at once, and the step itself runs last, every image in the per-item
// cache, its outcome saying what the shares did. A generation the cache
// holds whole is one activity; a failed share fails the step.
func TestWorkflowSharesAGeneration(t *testing.T) {
	spec := RunSpec{RunID: "20261130-120000-abcdef", Pipeline: "p.yaml", Snapshot: strings.Repeat("ab", 32), Steps: []StepSpec{
		{ID: "gen", Shares: true, Queue: "gpu"},
		{ID: "keep", Needs: []string{"gen"}, Queue: "default"},
	}}
	var mu sync.Mutex
	var acts []string
	images, cachedWhole, failAt := 20, false, -1
	f := &fakeSteps{queues: map[string]string{}}
	f.outcome = func(task StepTask) (*runner.Outcome, error) {
		mu.Lock()
		defer mu.Unlock()
		if task.Chunk != nil {
			acts = append(acts, fmt.Sprintf("%d-%d", task.Chunk.From, task.Chunk.To))
			switch {
			case cachedWhole:
				return &runner.Outcome{Status: runner.StatusCached, Summary: "20 images"}, nil
			case task.Chunk.From == failAt:
				return &runner.Outcome{Status: runner.StatusFailed, Error: "server refused the prompt"}, nil
			}
			return &runner.Outcome{Status: runner.StatusOK, Elements: images, DurationMS: 1000, Worker: fmt.Sprintf("w%d", task.Chunk.From/DefaultShare%2)}, nil
		}
		acts = append(acts, task.Step)
		return &runner.Outcome{Status: runner.StatusOK, Summary: fmt.Sprintf("%d images", images), DurationMS: 10, Worker: "w9"}, nil
	}
	res, err := runWorkflow(t, spec, f)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(acts[1:3])
	if got := strings.Join(acts, " "); got != "0-8 16-24 8-16 gen keep" {
		t.Errorf("activities %q: the first share, the others, the step, then what needs it", got)
	}
	if o := res.Outcomes["gen"]; res.Status != runner.StatusOK || o.Status != runner.StatusOK || o.Reason != "in 3 shares" ||
		o.Worker != "w0, w1" || o.DurationMS != 3010 || o.Summary != "20 images" {
		t.Errorf("result %s, gen %+v", res.Status, o)
	}

	acts, images = nil, 5 // one share: then the step
	if res, err = runWorkflow(t, spec, f); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(acts, " "); got != "0-8 gen keep" || res.Outcomes["gen"].Reason != "in 1 share" {
		t.Errorf("activities %q, gen %+v", got, res.Outcomes["gen"])
	}

	acts, cachedWhole = nil, true
	if res, err = runWorkflow(t, spec, f); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(acts, " "); got != "0-8 keep" || res.Outcomes["gen"].Status != runner.StatusCached {
		t.Errorf("cached whole: activities %q, gen %+v", got, res.Outcomes["gen"])
	}

	acts, cachedWhole, images, failAt = nil, false, 20, 8
	if res, err = runWorkflow(t, spec, f); err != nil {
		t.Fatal(err)
	}
	if res.Status != runner.StatusFailed || !strings.Contains(res.Outcomes["gen"].Error, "refused") {
		t.Errorf("a failed share: %s, gen %+v", res.Status, res.Outcomes["gen"])
	}
	for _, a := range acts {
		if a == "gen" || a == "keep" {
			t.Errorf("activities %q: nothing runs after a failed share", acts)
		}
	}
}
