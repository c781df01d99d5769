package temporalrun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

// Worker carries out steps: it materialises the run's workspace snapshot
// in a folder of its own and runs the step there with the engine, its
// needs restored from the shared cache.
type Worker struct {
	// Cache is the worker's cache, with the shared store behind it.
	Cache *cache.Cache
	// Dir holds the materialised snapshots: a few copies of each of the
	// last runs' (folders), one per step carried out at once.
	Dir string
	// Name says where a step ran, in records ("pod-1").
	Name string
	// Jobs is how many elements run at once on the worker, whatever the
	// steps they belong to (0: CPUs, or more when it carries out more
	// steps at once: Serve).
	Jobs int
	// Log receives what the steps print, prefixed with run and step.
	Log io.Writer

	foldersOnce sync.Once
	folders     *folders

	// slots bound the elements running at once: each step's run has Jobs
	// workers, and two steps at once on two CPUs ran four commands, which
	// cost the worker and its commands a fifth more CPU than two.
	slotsOnce sync.Once
	slots     *runner.Slots

	plansMu sync.Mutex
	plans   []cachedPlan // the last few compiled, newest last
}

// cachedPlan is a pipeline compiled for the tasks of one key: their
// snapshot and options (Worker.plan).
type cachedPlan struct {
	key  string
	plan *runner.Plan
}

// maxPlans bounds the compiled plans a worker keeps: the runs it serves at
// once, give or take.
const maxPlans = 8

// plan returns the task's pipeline compiled for the folder dir, where its
// snapshot is materialised, restricted to the task's step. A pipeline is
// compiled once per snapshot and options, not once per step: for a DAG of
// 200 steps, parsing and compiling it was 9 ms of each step's 26.
func (w *Worker) plan(t StepTask, dir string) (*runner.Plan, error) {
	key := fmt.Sprintf("%s %q %q %q %q", t.Spec.Snapshot, t.Spec.Pipeline, t.Spec.PolicyFile, t.Spec.Sets, t.Spec.Params)
	w.plansMu.Lock()
	var plan *runner.Plan
	for _, c := range w.plans {
		if c.key == key {
			plan = c.plan
		}
	}
	w.plansMu.Unlock()
	if plan == nil {
		// The same files in every folder of the snapshot: compiled in
		// this one, used in all (Plan.At).
		var err error
		plan, err = runner.Load(dir, t.Spec.Pipeline, runner.Options{PolicyFile: t.Spec.PolicyFile, Sets: t.Spec.Sets, Params: t.Spec.Params})
		if err != nil {
			return nil, err
		}
		w.plansMu.Lock()
		w.plans = append(w.plans, cachedPlan{key, plan})
		if len(w.plans) > maxPlans {
			w.plans = w.plans[1:]
		}
		w.plansMu.Unlock()
	}
	return plan.At(dir, []string{t.Step})
}

// CarryOut is the activity: one step of a run.
func (w *Worker) CarryOut(ctx context.Context, t StepTask) (*runner.Outcome, error) {
	info := activity.GetInfo(ctx)
	snap, err := cache.ParseOutputID(t.Spec.Snapshot)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("bad snapshot digest", "lifeos.BadTask", err)
	}
	hb := &heartbeat{}
	stop := hb.start(ctx, heartbeatEvery(info.HeartbeatTimeout))
	defer stop()
	if info.Attempt > 1 {
		var last string
		if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &last) == nil && last != "" {
			fmt.Fprintf(w.Log, "%s %s: attempt %d, after: %s (what finished then is in the shared cache)\n", t.Spec.RunID, t.Step, info.Attempt, last)
		}
	}
	// A copy of the snapshot for this step alone, most often one a step
	// before it left: only what differs is fixed.
	w.foldersOnce.Do(func() { w.folders = newFolders(w.Dir) })
	dir, others := w.folders.take(t.Spec.Snapshot)
	defer w.folders.give(t.Spec.Snapshot, dir)
	hb.set("fetching the workspace snapshot")
	like := ""
	if len(others) > 0 {
		like = others[0]
	}
	if err := runner.Materialize(ctx, w.Cache, snap, dir, like); err != nil {
		if errors.Is(err, runner.ErrSnapshotFormat) {
			// Another attempt here would read it no better.
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("on worker %s: %v: run the same lifeos where the run is submitted and on its workers", w.Name, err), "lifeos.Snapshot", err)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("materialise snapshot %s: %w (not in this worker's shared cache %s: is LIFEOS_CACHE the same bucket for the run and its workers?)", snap.Short(), err, w.Cache.Remote())
		}
		return nil, fmt.Errorf("materialise snapshot %s: %w", snap.Short(), err)
	}
	plan, err := w.plan(t, dir)
	if err != nil {
		// It loaded where it was submitted: this worker runs another
		// lifeos. Retrying here would not help.
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on worker %s: %v", t.Spec.Pipeline, w.Name, err), "lifeos.Load", err)
	}
	prefix := t.Spec.RunID[len(t.Spec.RunID)-6:] + " " + t.Step + " | "
	out := runner.NewPrefixWriter(io.MultiWriter(w.Log, lastLine{prefix, hb.set}), prefix)
	w.useSlots(1)
	rec, err := plan.Run(ctx, runner.RunOptions{RunID: t.Spec.RunID, Elsewhere: t.Done, Chunk: t.Chunk, Cache: w.Cache, Scratch: true, LinkFrom: append([]string{runner.AtticDir(dir)}, others...), Share: true, Assemble: t.Assemble, Stdout: out, Stderr: out, Jobs: w.Jobs, Slots: w.slots, Color: "never"})
	out.Flush()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if rec == nil {
		return nil, err // the run could not start: retried
	}
	o, oerr := rec.OutcomeOf(t.Step)
	if oerr != nil {
		return nil, oerr
	}
	o.Worker = fmt.Sprintf("%s (queue %s)", w.Name, info.TaskQueue)
	return o, nil
}

// useSlots sets how many elements run at once, once: Jobs, or by default
// the CPUs, and at least one per step carried out at once (a generation
// step's element mostly waits on its GPU servers).
func (w *Worker) useSlots(steps int) {
	w.slotsOnce.Do(func() { w.slots = runner.NewSlots(cmp.Or(w.Jobs, max(runtime.NumCPU(), steps))) })
}

func heartbeatEvery(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 10 * time.Second
	}
	// The SDK sends at most one heartbeat per 0.8 of the timeout anyway.
	return max(timeout/3, 100*time.Millisecond)
}

// heartbeat tells Temporal the activity is alive, with the step's last
// progress line as details.
type heartbeat struct {
	mu   sync.Mutex
	line string
}

func (h *heartbeat) set(line string) {
	h.mu.Lock()
	h.line = line
	h.mu.Unlock()
}

func (h *heartbeat) start(ctx context.Context, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			h.mu.Lock()
			line := h.line
			h.mu.Unlock()
			activity.RecordHeartbeat(ctx, line)
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done) }
}

// lastLine tells set each non-empty line written to it, without the
// prefix: the heartbeat's progress detail.
type lastLine struct {
	prefix string
	set    func(string)
}

func (l lastLine) Write(b []byte) (int, error) {
	if s := strings.TrimSpace(strings.TrimPrefix(string(b), l.prefix)); s != "" {
		l.set(s)
	}
	return len(b), nil
}

// Serve polls queues until ctx is done: the workflow on WorkflowQueue
// when it is one of them, steps on all. steps is how many steps it
// carries out at once.
func Serve(ctx context.Context, c client.Client, queues []string, w *Worker, steps int) error {
	if len(queues) == 0 {
		return errors.New("no queue: name one or more with --queue")
	}
	w.useSlots(steps)
	var started []worker.Worker
	defer func() {
		for _, wk := range started {
			wk.Stop()
		}
	}()
	for _, q := range queues {
		wk := worker.New(c, q, worker.Options{MaxConcurrentActivityExecutionSize: steps})
		wk.RegisterActivityWithOptions(w.CarryOut, activity.RegisterOptions{Name: ActivityName})
		if q == WorkflowQueue {
			wk.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
		}
		if err := wk.Start(); err != nil {
			return fmt.Errorf("worker on queue %s: %w", q, err)
		}
		started = append(started, wk)
	}
	fmt.Fprintf(w.Log, "lifeos worker %s: polling %s (pid %d)\n", w.Name, strings.Join(queues, ", "), os.Getpid())
	<-ctx.Done()
	return nil
}
