package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/steps"
)

// fake is a step type for scheduler tests: it counts calls and the largest
// number of concurrent runs (buildkit's vtxOpt counters).
type fake struct {
	Name string `yaml:"name"`
	Fail bool   `yaml:"fail"`
	Wait bool   `yaml:"wait"` // block until cancelled
}

var (
	fakeMu      sync.Mutex
	fakeCalls   = map[string]int{}
	fakeRunning atomic.Int32
	fakeMax     atomic.Int32
)

func (f *fake) Run(ctx context.Context, env *steps.Env) (steps.Outputs, error) {
	n := fakeRunning.Add(1)
	defer fakeRunning.Add(-1)
	for {
		m := fakeMax.Load()
		if n <= m || fakeMax.CompareAndSwap(m, n) {
			break
		}
	}
	fakeMu.Lock()
	fakeCalls[f.Name]++
	fakeMu.Unlock()
	if f.Wait {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.Fail {
		return nil, errors.New("fake failure")
	}
	return steps.Outputs{"name": f.Name}, nil
}

func (f *fake) Deps(map[string]steps.Outputs) steps.Deps { return steps.Deps{} }

func init() {
	steps.Register(&steps.Type{Name: "test.fake", Version: 1, New: func() steps.Step { return new(fake) }})
}

func resetFake() {
	fakeMu.Lock()
	fakeCalls = map[string]int{}
	fakeMu.Unlock()
	fakeMax.Store(0)
}

func fakePipeline(t *testing.T, root, src string) *Plan {
	t.Helper()
	p, err := parsePipeline("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(root, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func wide(n int, extra string) string {
	var b strings.Builder
	b.WriteString("version: 1\nsteps:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - id: s%d\n    uses: test.fake\n    with: {name: s%d%s}\n", i, i, extra)
	}
	return b.String()
}

func TestJobsLimit(t *testing.T) {
	resetFake()
	t.Setenv("LIFEOS_CACHE", "")
	root := testdir.New(t)
	plan := fakePipeline(t, root, wide(12, ""))
	if _, err := plan.Run(context.Background(), RunOptions{Jobs: 3}); err != nil {
		t.Fatal(err)
	}
	if m := fakeMax.Load(); m > 3 {
		t.Errorf("%d steps ran at once with --jobs 3", m)
	}
	for i := 0; i < 12; i++ {
		if c := fakeCalls[fmt.Sprintf("s%d", i)]; c != 1 {
			t.Errorf("s%d ran %d times, want 1", i, c)
		}
	}
	// Everything is cached now.
	resetFake()
	rec, err := plan.Run(context.Background(), RunOptions{Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(fakeCalls) != 0 {
		t.Errorf("cached re-run called %v", fakeCalls)
	}
	for _, s := range rec.Steps {
		if s.Status != StatusCached || s.Outputs.(map[string]any)["name"] != s.ID {
			t.Errorf("step %s: status %s outputs %v", s.ID, s.Status, s.Outputs)
		}
	}
}

func TestFailureCancelsRunning(t *testing.T) {
	resetFake()
	t.Setenv("LIFEOS_CACHE", "")
	root := testdir.New(t)
	plan := fakePipeline(t, root, `version: 1
steps:
  - id: waiter
    uses: test.fake
    with: {name: waiter, wait: true}
  - id: failer
    uses: test.fake
    with: {name: failer, fail: true}
  - id: after
    uses: test.fake
    needs: waiter
    with: {name: after}
`)
	// waiter only ends when cancelled: the run returning at all shows the
	// failure cancelled it (or stopped it from starting).
	rec, err := plan.Run(context.Background(), RunOptions{Jobs: 2})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "failer" {
		t.Fatalf("err = %v, want failer's StepError", err)
	}
	got := map[string]string{}
	for _, s := range rec.Steps {
		got[s.ID] = s.Status
	}
	if w := got["waiter"]; w != StatusCancelled && w != StatusSkipped {
		t.Errorf("waiter: %s, want cancelled or skipped", w)
	}
	if got["after"] != StatusSkipped || rec.Status != StatusFailed {
		t.Errorf("statuses %v, run %s", got, rec.Status)
	}
	// Nothing of the failed or cancelled steps is cached.
	resetFake()
	plan.Run(context.Background(), RunOptions{Jobs: 2})
	if fakeCalls["failer"] != 1 {
		t.Errorf("failer not re-run: calls %v", fakeCalls)
	}
}

func TestInterruptCancelsRun(t *testing.T) {
	resetFake()
	t.Setenv("LIFEOS_CACHE", "")
	plan := fakePipeline(t, testdir.New(t), `version: 1
steps:
  - id: waiter
    uses: test.fake
    with: {name: waiter, wait: true}
`)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for fakeRunning.Load() == 0 {
			runtime.Gosched()
		}
		cancel()
	}()
	rec, err := plan.Run(ctx, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want interrupted", err)
	}
	if rec.Status != StatusCancelled || rec.Steps[0].Status != StatusCancelled {
		t.Errorf("run %s, step %s; want cancelled", rec.Status, rec.Steps[0].Status)
	}
}

// A failure while a foreach is still being probed drops the batches not
// yet probed; every element of the step must still be accounted for, or
// the step never finishes and its record says nothing. (Dropping a batch
// once overwrote the first element of the next one.)
func TestFailureWhileProbingFinishesTheStep(t *testing.T) {
	t.Setenv("LIFEOS_CACHE", "")
	root := testdir.New(t)
	items := []string{`"bad"`}
	for i := 1; i < 40; i++ {
		items = append(items, fmt.Sprintf(`{a: {b: %d}}`, i))
	}
	plan := fakePipeline(t, root, `version: 1
steps:
  - id: each
    uses: test.fake
    foreach: '[`+strings.Join(items, ", ")+`]'
    with: {name: "${{ item.a.b }}"}
  - id: after
    uses: test.fake
    needs: each
    with: {name: after}
`)
	rec, err := plan.Run(context.Background(), RunOptions{Jobs: 2})
	if err == nil {
		t.Fatal("the run succeeded")
	}
	each := rec.Steps[0]
	total := 0
	for _, n := range each.Counts {
		total += n
	}
	if each.Status != StatusFailed || total != 40 {
		t.Errorf("each: status %q, counts %v (want failed, 40 elements)", each.Status, each.Counts)
	}
	if s := rec.Steps[1].Status; s != StatusSkipped {
		t.Errorf("after: status %q, want skipped", s)
	}
}
