// Package temporalrun spreads a lifeos run over machines with Temporal: the
// run is one workflow, a small DAG interpreter, and each step an activity
// on the task queue the step names (`queue:`), carried out by `lifeos
// worker` with the same engine as a local run. Only small JSON crosses
// Temporal (the run's spec, each step's outcome); files travel through
// the shared cache by digest (runner.TakeSnapshot, the cache's remote).
//
// It is linked into the lifeos-temporal helper, not into lifeos: the
// Temporal SDK's package initialisation (protobuf registries, gRPC) costs
// every process several milliseconds, which every local command would pay.
package temporalrun

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeos/lifeos/runner"
)

// Names registered with Temporal. The workflow's name carries its version:
// a change to the commands it issues for a given history needs a new
// name, or workflow.GetVersion.
const (
	WorkflowName  = "lifeos.Run.v1"
	ActivityName  = "lifeos.CarryOut.v1"
	WorkflowQueue = runner.DefaultQueue // where the workflow itself runs
	ProgressQuery = "progress"
	SpecQuery     = "spec"
)

// RunSpec is a run as submitted: what every worker needs to carry out one
// of its steps. Files are not in it, only the snapshot's digest.
type RunSpec struct {
	RunID      string     `json:"run_id"`
	Pipeline   string     `json:"pipeline"` // workspace-relative
	Snapshot   string     `json:"snapshot"` // digest of the workspace snapshot
	PolicyFile string     `json:"policy_file,omitempty"`
	Sets       []string   `json:"sets,omitempty"`
	Params     []string   `json:"params,omitempty"`
	Steps      []StepSpec `json:"steps"` // in the plan's order
	// Heartbeat is how long a worker may go silent before its step is
	// given to another; 0 means 30 s.
	Heartbeat time.Duration `json:"heartbeat,omitempty"`
	// ChunkSize is how many elements of a foreach, or units of a shared
	// step (a generation's images), one activity carries out; 0 means
	// DefaultChunk or DefaultShare.
	ChunkSize int `json:"chunk_size,omitempty"`
	// Done are the outcomes of the steps a run carried out before it
	// continued as new (a run too long for one history): not carried out
	// again.
	Done map[string]*runner.Outcome `json:"done,omitempty"`
}

// DefaultChunk is how many elements of a foreach step one worker carries
// out at a time: enough that each activity's overhead (tens of
// milliseconds) is small beside its work.
const DefaultChunk = 100

// DefaultShare is how many images of a generation one worker makes at a
// time: an image takes seconds of a GPU, so a few make a share worth its
// activity, and a batch spreads over the GPU workers polling its queue.
const DefaultShare = 8

// StepSpec is what the workflow knows of a step: its place in the graph
// and where it runs.
type StepSpec struct {
	ID      string `json:"id"`
	Foreach bool   `json:"foreach,omitempty"`
	Gate    bool   `json:"gate,omitempty"` // checked on the whole step's outputs
	// Shares: the step's work splits over workers (runner.Step.Shares).
	Shares          bool     `json:"shares,omitempty"`
	Needs           []string `json:"needs,omitempty"`
	Queue           string   `json:"queue"`
	ContinueOnError bool     `json:"continue_on_error,omitempty"`
}

// StepTask is one activity: carry out step Step of the run, given what
// became of the steps it needs.
type StepTask struct {
	Spec  RunSpec                    `json:"spec"`
	Step  string                     `json:"step"`
	Chunk *runner.Chunk              `json:"chunk,omitempty"`
	Done  map[string]*runner.Outcome `json:"done,omitempty"`
	// Assemble: the step's work was shared out and is in the cache; this
	// run of the whole step gathers it (runner.RunOptions.Assemble).
	Assemble bool `json:"assemble,omitempty"`
}

// Result is what became of every step.
type Result struct {
	Status   string                     `json:"status"` // ok, failed, blocked, cancelled
	Outcomes map[string]*runner.Outcome `json:"outcomes"`
}

// Progress is the answer to the progress query: the outcomes so far and
// the steps running, with the worker's last heartbeat line where known.
type Progress struct {
	Outcomes map[string]*runner.Outcome `json:"outcomes"`
	Running  []string                   `json:"running"`
	Done     bool                       `json:"done"`
}

// Run is the workflow: it starts every step whose needs are done, in the
// plan's order, and waits for any to finish; the first failure (or a
// blocking gate) cancels the steps running and starts no other. It does
// no I/O and reads no clock: its decisions depend on its history alone.
func Run(ctx workflow.Context, spec RunSpec) (*Result, error) {
	res := &Result{Outcomes: map[string]*runner.Outcome{}}
	index := map[string]int{}
	for i, s := range spec.Steps {
		index[s.ID] = i
		if o := spec.Done[s.ID]; o != nil {
			res.Outcomes[s.ID] = o
		}
	}
	carried := len(res.Outcomes)
	// What every activity is told of the run: how to load it. Not the
	// carried outcomes (each is told those of the steps it needs), nor
	// the graph, which is the workflow's: either would make every input
	// as large as the run, and the history grow with the square of its
	// steps.
	taskSpec := spec
	taskSpec.Done, taskSpec.Steps = nil, nil
	running := map[string]bool{}
	done := func(id string) bool { return res.Outcomes[id] != nil }
	if err := workflow.SetQueryHandler(ctx, SpecQuery, func() (RunSpec, error) { return spec, nil }); err != nil {
		return nil, err
	}
	finished := false
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) {
		p := Progress{Outcomes: res.Outcomes, Done: finished}
		for _, s := range spec.Steps { // sorted, as the plan orders them
			if running[s.ID] {
				p.Running = append(p.Running, s.ID)
			}
		}
		return p, nil
	}); err != nil {
		return nil, err
	}
	heartbeat := spec.Heartbeat
	if heartbeat <= 0 {
		heartbeat = 30 * time.Second
	}
	actx, cancel := workflow.WithCancel(ctx)
	selector := workflow.NewSelector(ctx)
	stopped := "" // why no step starts any more: failed, blocked, cancelled
	inflight := 0
	// execute starts one activity of step s (one chunk of it, or all of
	// it) and calls then with its outcome.
	execute := func(s StepSpec, chunk *runner.Chunk, then func(runner.Outcome)) {
		// A shared step is carried out whole only after its shares: that
		// run assembles them.
		task := StepTask{Spec: taskSpec, Step: s.ID, Chunk: chunk, Done: map[string]*runner.Outcome{}, Assemble: s.Shares && chunk == nil}
		// The outcomes of the steps it needs, directly or not: what its
		// worker's plan of it holds (runner.Plan.At).
		for _, d := range ancestorsOf(spec.Steps, index, s) {
			if o := res.Outcomes[d]; o != nil {
				task.Done[d] = o
			}
		}
		id := s.ID
		if chunk != nil {
			id = fmt.Sprintf("%s#%d", s.ID, chunk.From)
		}
		opts := workflow.ActivityOptions{
			// Named by the step: a replay then catches steps started in
			// another order, not only other activities.
			ActivityID:          id,
			TaskQueue:           s.Queue,
			StartToCloseTimeout: 7 * 24 * time.Hour, // a training run; each heartbeat says it is alive
			HeartbeatTimeout:    heartbeat,
			RetryPolicy: &temporal.RetryPolicy{
				// A step's own failure is its outcome, not an error: what is
				// retried is a worker lost or a snapshot that could not be
				// fetched.
				InitialInterval:    time.Second,
				BackoffCoefficient: 2,
				MaximumInterval:    time.Minute,
				MaximumAttempts:    5,
			},
		}
		inflight++
		f := workflow.ExecuteActivity(workflow.WithActivityOptions(actx, opts), ActivityName, task)
		selector.AddFuture(f, func(f workflow.Future) {
			inflight--
			var o runner.Outcome
			if err := f.Get(ctx, &o); err != nil {
				o = runner.Outcome{Status: runner.StatusFailed, Error: activityError(err)}
				var ce *temporal.CanceledError
				if errors.As(err, &ce) || stopped != "" {
					o = runner.Outcome{Status: runner.StatusCancelled, Reason: "not finished: " + cmp.Or(stopped, "cancelled")}
				}
			}
			then(o)
		})
	}
	finish := func(s StepSpec, o runner.Outcome) {
		delete(running, s.ID)
		res.Outcomes[s.ID] = &o
		if stopped == "" && !s.ContinueOnError && (o.Status == runner.StatusFailed || o.Status == runner.StatusBlocked) {
			stopped = "step " + s.ID + " " + o.Status
			cancel()
		}
	}
	start := func(s StepSpec) {
		running[s.ID] = true
		if !s.Foreach && !s.Shares {
			execute(s, nil, func(o runner.Outcome) { finish(s, o) })
			return
		}
		chunkSize := cmp.Or(spec.ChunkSize, DefaultChunk)
		if s.Shares {
			chunkSize = cmp.Or(spec.ChunkSize, DefaultShare)
		}
		// A foreach fans out: its first chunk says how many elements there
		// are, the others run at once on whichever workers poll the queue,
		// and the step itself is carried out last, every element cached.
		// A shared step (a generation) the same, in shares of its units;
		// the step itself then always runs last, finding every unit in the
		// per-item cache: a share's outputs are not the step's.
		execute(s, &runner.Chunk{Step: s.ID, From: 0, To: chunkSize}, func(o runner.Outcome) {
			if s.Shares && o.Status == runner.StatusOK && o.Elements <= chunkSize && stopped == "" {
				execute(s, nil, func(w runner.Outcome) { finish(s, fromShares(w, []runner.Outcome{o})) })
				return
			}
			if o.Status != runner.StatusOK && o.Status != runner.StatusCached || o.Elements <= chunkSize || stopped != "" {
				finish(s, o) // failed, cached whole, or one chunk was the whole step
				return
			}
			pending, chunks := 0, []runner.Outcome{o}
			var failed *runner.Outcome
			for from := chunkSize; from < o.Elements; from += chunkSize {
				pending++
				execute(s, &runner.Chunk{Step: s.ID, From: from, To: from + chunkSize}, func(c runner.Outcome) {
					pending--
					chunks = append(chunks, c)
					if failed == nil && c.Status != runner.StatusOK && c.Status != runner.StatusCached {
						failed = &c
					}
					if pending > 0 {
						return
					}
					if failed != nil || stopped != "" {
						finish(s, *cmp.Or(failed, &runner.Outcome{Status: runner.StatusCancelled, Reason: "not finished: " + stopped}))
						return
					}
					if s.Shares {
						execute(s, nil, func(w runner.Outcome) { finish(s, fromShares(w, chunks)) })
						return
					}
					if !s.Gate {
						// Every element is in the shared cache: the steps
						// after it restore them as they need them.
						finish(s, fromChunks(runner.Outcome{Status: runner.StatusCached, Elements: o.Elements}, chunks))
						return
					}
					// Its gate reads all its outputs: the step itself,
					// every element cached, decides.
					execute(s, nil, func(o runner.Outcome) { finish(s, fromChunks(o, chunks)) })
				})
			}
		})
	}
	// The workflow is cancelled (runs cancel) through ctx: the activities,
	// on actx, are cancelled with it.
	workflow.Go(ctx, func(gctx workflow.Context) {
		gctx.Done().Receive(gctx, nil)
		if stopped == "" {
			stopped = "cancelled"
		}
	})
	for {
		// A history has room for some thousands of steps: when Temporal
		// suggests it, no step starts any more, and once those running
		// are done the run continues as new with the outcomes so far.
		draining := stopped == "" && len(res.Outcomes) > carried && len(res.Outcomes) < len(spec.Steps) &&
			workflow.GetInfo(ctx).GetContinueAsNewSuggested()
		if draining && inflight == 0 && ctx.Err() == nil {
			next := spec
			next.Done = res.Outcomes
			return nil, workflow.NewContinueAsNewError(ctx, WorkflowName, next)
		}
		if stopped == "" && !draining && ctx.Err() == nil {
			for _, s := range spec.Steps {
				if done(s.ID) || running[s.ID] {
					continue
				}
				ready := true
				for _, n := range s.Needs {
					ready = ready && done(n)
				}
				if ready {
					start(s)
				}
			}
		}
		if inflight == 0 {
			break
		}
		selector.Select(ctx)
	}
	for _, s := range spec.Steps {
		if !done(s.ID) {
			res.Outcomes[s.ID] = &runner.Outcome{Status: runner.StatusSkipped, Reason: "not started: " + stopped}
		}
	}
	res.Status = runner.StatusOK
	switch {
	case stopped == "cancelled" || ctx.Err() != nil:
		res.Status = runner.StatusCancelled
	case stopped != "":
		res.Status = runner.StatusFailed
		for _, s := range spec.Steps {
			if res.Outcomes[s.ID].Status == runner.StatusBlocked {
				res.Status = runner.StatusBlocked
			}
		}
	}
	finished = true
	if ctx.Err() != nil {
		// Cancelled: say so to Temporal, with the outcomes recorded by the
		// query (the submitter assembles what finished).
		return res, temporal.NewCanceledError(fmt.Sprintf("run %s cancelled", spec.RunID))
	}
	return res, nil
}

// ancestorsOf returns the steps s needs directly or not, in the plan's
// order. No map is ranged over: a workflow's decisions follow its
// history alone (workflowcheck).
func ancestorsOf(steps []StepSpec, index map[string]int, s StepSpec) []string {
	seen := make([]bool, len(steps))
	stack := slices.Clone(s.Needs)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i, ok := index[id]; ok && !seen[i] {
			seen[i] = true
			stack = append(stack, steps[i].Needs...)
		}
	}
	var out []string
	for i, ok := range seen {
		if ok {
			out = append(out, steps[i].ID)
		}
	}
	return out
}

// fromShares is a shared step's outcome after its shares ran: the step's
// own, run last from the per-item cache, with what the shares did (their
// time, the lines they appended, their workers).
func fromShares(o runner.Outcome, shares []runner.Outcome) runner.Outcome {
	if o.Status != runner.StatusOK && o.Status != runner.StatusCached {
		return o
	}
	o.Worker, _ = addParts(&o, shares)
	o.Status = runner.StatusOK // its units were made in the shares
	o.Reason = fmt.Sprintf("in %d shares", len(shares))
	if len(shares) == 1 {
		o.Reason = "in 1 share"
	}
	return o
}

// activityError is what a step's failure says: the worker's own error
// when it returned one, not the SDK's chain around it ("activity error
// (type: ..., scheduledEventID: ...): ... (type: wrapError, retryable:
// true): ..." repeated once per wrapping).
func activityError(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Message() != "" {
		return app.Message()
	}
	return err.Error()
}

// fromChunks is a foreach's outcome after its chunks ran: the step's own,
// which found every element cached, says what the chunks did.
func fromChunks(o runner.Outcome, chunks []runner.Outcome) runner.Outcome {
	if o.Status != runner.StatusCached {
		return o
	}
	if workers, ran := addParts(&o, chunks); ran {
		o.Status, o.Reason, o.Worker = runner.StatusOK, fmt.Sprintf("in %d chunks", len(chunks)), workers
	}
	return o
}

// addParts adds to a step's outcome the time and appended lines of the
// parts (chunks, shares) it was carried out in, and returns their workers,
// sorted, and whether any part ran.
func addParts(o *runner.Outcome, parts []runner.Outcome) (workers string, ran bool) {
	var names []string
	for _, p := range parts {
		o.DurationMS += p.DurationMS
		o.Appends = append(o.Appends, p.Appends...)
		o.Entries = append(o.Entries, p.Entries...)
		ran = ran || p.Status == runner.StatusOK
		if p.Worker != "" && !slices.Contains(names, p.Worker) {
			names = append(names, p.Worker)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", "), ran
}
