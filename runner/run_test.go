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
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/steps"
)

// fake is a step type for scheduler tests: it counts calls and the largest
// number of concurrent runs (buildkit's vtxOpt counters).
type fake struct {
	Name string `yaml:"name"`
	Fail bool   `yaml:"fail"`
	Wait bool   `yaml:"wait"` // block until cancelled
	// Hold keeps it running a while, so that runs that could overlap do.
	Hold bool `yaml:"hold"`
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
	if f.Hold {
		time.Sleep(20 * time.Millisecond)
	}
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

// TestSlotsBoundRunsTogether runs two pipelines at once, as a worker
// carries out two steps, each with two jobs: sharing two slots, no more
// than two of their steps run at once, where each run alone would run two.
func TestSlotsBoundRunsTogether(t *testing.T) {
	resetFake()
	t.Setenv("LIFEOS_CACHE", "off")
	slots := NewSlots(2)
	var wg sync.WaitGroup
	for range 2 {
		plan := fakePipeline(t, testdir.New(t), wide(8, ", hold: true"))
		wg.Go(func() {
			if _, err := plan.Run(context.Background(), RunOptions{Jobs: 2, Slots: slots}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := fakeMax.Load(); m > 2 {
		t.Errorf("%d steps ran at once sharing 2 slots", m)
	}
	if n := fakeCalls["s0"]; n != 2 {
		t.Errorf("s0 ran %d times, want once in each run", n)
	}
}

// TestSlotWaitEndsWithTheRun: a run cancelled while its step waits for a
// slot another run holds ends, its step not started.
func TestSlotWaitEndsWithTheRun(t *testing.T) {
	resetFake()
	t.Setenv("LIFEOS_CACHE", "off")
	slots := NewSlots(1)
	holder, cancelHolder := context.WithCancel(context.Background())
	defer cancelHolder()
	held := make(chan struct{})
	go func() {
		defer close(held)
		plan := fakePipeline(t, testdir.New(t), "version: 1\nsteps:\n  - id: hold\n    uses: test.fake\n    with: {name: hold, wait: true}\n")
		plan.Run(holder, RunOptions{Slots: slots})
	}()
	for fakeRunning.Load() == 0 { // the slot taken
		runtime.Gosched()
	}
	// Cancelled once it waits, most likely (or before: the same outcome);
	// a wait that ignored the cancellation would never end.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	plan := fakePipeline(t, testdir.New(t), wide(1, ""))
	rec, _ := plan.Run(ctx, RunOptions{Slots: slots})
	if rec == nil || rec.Steps[0].Status != StatusCancelled {
		t.Fatalf("step waiting for a slot: %s, want cancelled", rec.Steps[0].Status)
	}
	fakeMu.Lock()
	ran := fakeCalls["s0"]
	fakeMu.Unlock()
	if ran != 0 {
		t.Error("the step ran without a slot")
	}
	cancelHolder()
	<-held
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
