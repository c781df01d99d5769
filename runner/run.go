package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/par"
	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
)

// RunOptions control an execution.
type RunOptions struct {
	// Jobs is how many steps (or foreach elements) run at once; 0 means the
	// number of CPUs.
	Jobs int
	// NoCache runs every step even when a cached result exists; results are
	// still stored.
	NoCache bool
	// Stdout receives one progress line per step; Stderr the tails of failed
	// steps' logs and debug output.
	Stdout, Stderr io.Writer
	// NoWait fails at once, with ErrBusy, when another run holds the
	// workspace, instead of waiting for it.
	NoWait bool
	// Quiet prints only failures and the summary; Verbose also prints the
	// logs of the steps that did not run (kept in the cache with their
	// results).
	Quiet, Verbose bool
	// Color is "always", "never" or "auto" (or ""): colour on a terminal,
	// unless NO_COLOR is set or TERM is dumb.
	Color string
	// RunID, when set, is the run's id instead of a new one: a run carried
	// out on several machines has one id on all of them. Started, when
	// set, is when it began (its submission).
	RunID   string
	Started time.Time
	// Elsewhere holds the steps carried out on other machines, by id: they
	// are restored from the cache, not run (elsewhere.go).
	Elsewhere map[string]*Outcome
	// NoDownload leaves the declared outputs of the steps carried out
	// elsewhere in the shared cache: the run is recorded, not restored.
	NoDownload bool
	// Chunk, when set, runs only elements From to To (exclusive) of its
	// foreach step, or units From to To of its Sharer step (not stored as
	// the step's result): a share of a step spread over workers.
	Chunk *Chunk
	// Cache, when set, is the cache to use instead of the workspace's: a
	// worker's, shared by the steps it carries out. The run waits for its
	// uploads and leaves it open.
	Cache *cache.Cache
	// MapState lets the run map its key state file into memory for the
	// rest of the process (mapfile) instead of copying it onto the heap:
	// for a process that runs a pipeline and exits, as lifeos run does. A
	// long-lived one (a worker, a test) leaves it false, or each of its
	// runs would keep a mapping, and the replaced file's disk space, alive.
	MapState bool
	// Scratch says the workspace is a worker's disposable copy of a
	// snapshot: what is restored into it and its run record are not synced
	// file by file (the submitter's workspace gets the durable copies).
	Scratch bool
	// LinkFrom are folders laid out as the workspace (the copy's attic,
	// AtticDir; other scratch copies of the same snapshot): a file
	// restored from the cache that one of them holds with the stored
	// content and mode is hard-linked from it rather than written (why:
	// AtticDir). Before an element runs in a scratch copy, its declared outputs that share
	// their content with another name get a copy of their own, so that a
	// command writing one in place cannot reach into another copy.
	LinkFrom []string
	// Share makes every result the run reports reach the shared store,
	// for a worker of a run spread over machines: the steps after it and
	// the submitting side look there. The results of elements that are
	// not cached (cache: false, an exec without declared inputs, a
	// notify) are stored too, under the run's id (carriedID), so that
	// their files travel; and a result served from the worker's own cache
	// is put in the shared store when this process does not know it is
	// there (the worker's cache may predate the bucket, or outlive an
	// expiry rule).
	Share bool
	// Assemble says the step's work was shared out over workers (Chunk)
	// and is in the cache: this run of it gathers the shares, and logs no
	// cost of its own (each share logged the GPU time it took; a local
	// run logs one line per step run).
	Assemble bool
	// Slots, when set, bounds the elements that run at once across the
	// runs sharing it, whatever each one's Jobs (a worker's).
	Slots *Slots
	// writes, when set, gathers the declared outputs of the run's
	// elements (runSub on a worker).
	writes *writeSet
	// nested marks the run of a pipeline step, which holds the lock of the
	// run that started it.
	nested bool
}

// engine is one execution (or, with explain set, one dry run) of a plan.
type engine struct {
	plan  *Plan
	o     RunOptions
	cache *cache.Cache // nil when caching is off
	// trimmed: the cache lost entries since the memos were recorded, so a
	// memo hit also needs its entry (memoHit); trimStamp is when.
	trimmed   func() bool
	trimStamp int64
	stat      *cache.StatCache
	state     *keyState
	debug     map[string]bool
	explain   bool
	rec       *Record
	dir       string // run directory; "" when explaining
	nodes     []*node
	byStep    map[*Step]*node
	policy    map[string]any
	// policyJS caches policyJSON.
	policyMu sync.Mutex
	policyJS map[string]string
	runEnv   map[string]any
	idWidth  int // for aligned progress lines
	seen     seenStamps
	// left are the files --no-download left in the shared cache, which
	// the steps after them read (left.go).
	left leftFiles
	// keys are the key lines of the elements stored, written at the end
	// (keylines.go).
	keys  keyLines
	stats *filehash.DirStats // stats through open folders, for memos
	// durable are the outputs restored unsynced, made durable together
	// before the run is recorded (atomicfile.SyncsFS).
	durable atomicfile.Batch
	sweptMu sync.Mutex
	swept   map[string]bool // directories swept of temporary files this run
	// noRecord says the run record could not be written.
	noRecord bool
	// prepared waits for the run's record file (Run) and says whether it
	// could be made.
	prepared func() error
	con      *console
}

func (plan *Plan) newEngine(o RunOptions, explain bool) (*engine, error) {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	// LIFEOS_TERMINAL=1 forces the live display where stdout is not a
	// terminal (a recording, a test).
	var e *engine
	forced := os.Getenv("LIFEOS_TERMINAL") == "1"
	tty := !o.nested && !explain && (isTerminal(o.Stdout) || forced)
	// Workers write debug lines while the scheduler prints progress.
	// Secrets never reach the console, whatever prints them.
	o.Stdout = &syncWriter{w: redactWriter{plan.redact, o.Stdout}}
	stderr, errOut := o.Stderr, o.Stderr
	if tty && (isTerminal(o.Stderr) || forced) {
		// One screen: warnings go above the live area, or they would
		// break it (it redraws by moving the cursor up over its lines).
		stderr = &PrefixWriter{w: lineFunc(func(line string) { e.con.printErr(line) })}
	}
	o.Stderr = &syncWriter{w: redactWriter{plan.redact, stderr}}
	e = &engine{plan: plan, o: o, debug: debugFlags(), explain: explain, byStep: map[*Step]*node{}, stats: filehash.NewDirStats(plan.Root)}
	var err error
	if o.Cache != nil {
		// One run among others on the cache (a worker's): it waits for
		// its own uploads and reports its own.
		e.cache = o.Cache.Session()
	} else if e.cache, err = OpenCache(plan.Root, func(msg string) { fmt.Fprintf(e.o.Stderr, "lifeos: warning: %s\n", msg) }); err != nil {
		return nil, err
	}
	if e.cache != nil {
		e.stat = e.cache.StatCache()
	} else {
		e.stat = cache.OpenStatCache("")
	}
	e.state = loadKeyStateAsync(stateFile(plan.Root, plan.Pipeline.File), o.MapState)
	if e.cache != nil {
		e.trimStamp = e.cache.TrimStamp()
	}
	e.trimmed = sync.OnceValue(func() bool { return e.state.trimmedSince(e.trimStamp) })
	now := time.Now()
	p := plan.Pipeline
	e.rec = &Record{
		ID:             cmp.Or(o.RunID, newRunID(now)),
		Pipeline:       p.File,
		Name:           p.Name,
		PipelineDigest: p.Digest.String(),
		Policy:         plan.Policy.File,
		PolicyDigest:   plan.Policy.Digest().String(),
		Params:         plan.redact.Params(plan.Params),
		redact:         plan.redact,
		Started:        now,
	}
	e.policy = plan.Policy.Map()
	e.runEnv = map[string]any{"id": e.rec.ID, "started": now.UTC().Format(time.RFC3339), "pipeline": p.Name}
	for _, s := range plan.Order {
		n := &node{s: s, rec: &StepRecord{ID: s.ID, Uses: s.Uses}, index: len(e.nodes)}
		e.nodes = append(e.nodes, n)
		e.byStep[s] = n
		e.rec.Steps = append(e.rec.Steps, n.rec)
		e.idWidth = max(e.idWidth, len(s.ID))
	}
	e.con = newConsole(o.Stdout, errOut, consoleOptions{terminal: tty, color: colorWanted(o.Color, tty), quiet: o.Quiet, steps: len(e.nodes), idWidth: e.idWidth})
	for _, n := range e.nodes {
		for _, id := range n.s.Needs {
			if d := e.byStep[plan.byID[id]]; d != nil {
				n.deps = append(n.deps, d)
				d.dependents = append(d.dependents, n)
			}
		}
		n.pending = len(n.deps)
	}
	return e, nil
}

// syncWriter serialises writes, so concurrent lines do not tear.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// node is the run state of one step. It is owned by the scheduler
// goroutine; workers only touch the elements handed to them.
type node struct {
	s          *Step
	rec        *StepRecord
	deps       []*node
	dependents []*node
	pending    int
	status     string
	outputs    any
	elems      []*element
	remaining  int
	fp         [16]byte    // memo fingerprint, when the step may use memos
	until      *Evaluation // a repeat step's last until evaluation
	key        *stepKey    // the key lines its elements share
	started    time.Time
	env        Env    // what its expressions see (element.env adds the item)
	itemsID    string // itemsIdentity, once finished
	index      int    // in the plan's order: the colour of its output
	announced  bool   // its start line is printed: an element of it runs
	upToDate   int    // elements cached with their outputs already in place

	// Made on demand: the outputs of the needs by step id, for elements
	// that take the full path (nodeInputs), and their merged items, for
	// elements that run (nodeInItems).
	inputsOnce  sync.Once
	up          map[string]steps.Outputs
	inItemsOnce sync.Once
	inItems     []steps.Item
	inItemsErr  error

	// What the step passes on (nodeItems), decided once.
	// What its dependents see of its outputs (upstreamView), made once
	// however many read it.
	viewOnce sync.Once
	view     map[string]any

	itemsOnce sync.Once
	items     []steps.Item
	itemsErr  error
}

// Run executes the plan: independent steps in parallel up to Jobs, each
// step's result from the cache when its key is unchanged. It writes the run
// record and returns it with nil, a *StepError (a step failed), a
// *GateError (a gate blocked) or the context's error (interrupted).
func (plan *Plan) Run(ctx context.Context, o RunOptions) (*Record, error) {
	e, err := plan.newEngine(o, false)
	if err != nil {
		return nil, err
	}
	if !o.nested {
		unlock, err := lockWorkspace(ctx, plan.Root, lockHolder{Run: e.rec.ID, PID: os.Getpid(), Pipeline: plan.Pipeline.File, Started: e.rec.Started},
			o.NoWait, e.o.Stderr)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// The run starts when it has the workspace: the wait is not its time.
		e.rec.Started = cmp.Or(o.Started, time.Now())
		e.runEnv["started"] = e.rec.Started.UTC().Format(time.RFC3339)
	}
	e.dir = filepath.Join(RunsDir(plan.Root), e.rec.ID)
	// Under the lock, what an earlier run left half-written is garbage; and
	// the record's folder and file are made. In the background, while the
	// first steps are expanded and probed: a no-op run never waits for it
	// (a fifth of its time on a file system that allocates inodes slowly),
	// a step that runs for real does (prepared).
	var recFile *atomicfile.Pending
	var recErr error
	ready := make(chan struct{})
	e.prepared = func() error { <-ready; return recErr }
	go func() {
		defer close(ready)
		e.sweepDir(".lifeos", false, false)
		e.sweepDir(".lifeos/runs/.tmp", false, false) // run records are written through it
		e.sweepDir(".lifeos/state", false, false)
		if e.cache != nil {
			// Objects are written in the cache's tmp/ before their rename.
			e.sweepDir(filepath.Join(e.cache.Dir(), "tmp"), false, false)
		}
		recFile, recErr = atomicfile.Create(filepath.Join(e.dir, "run.json"), tmpDir(plan.Root), 0o666)
	}()
	e.con.header(fmt.Sprintf("run %s: %s (%d steps, %d jobs)", e.rec.ID, plan.Pipeline.File, len(e.nodes), e.o.Jobs))
	e.adoptBundles()
	runErr := e.schedule(ctx)
	e.bundle(ctx)
	e.con.close()
	e.stats.Reset()
	rec := e.rec
	rec.Finished = time.Now()
	rec.DurationMS = ms(rec.Finished.Sub(rec.Started))
	var ge *GateError
	switch {
	case errors.As(runErr, &ge):
		rec.Status = StatusBlocked
	case ctx.Err() != nil:
		rec.Status = StatusCancelled
		runErr = errors.New("interrupted")
	case runErr != nil:
		rec.Status = StatusFailed
	case e.cancelledElsewhere():
		rec.Status = StatusCancelled
		runErr = errors.New("cancelled where it was carried out")
	default:
		rec.Status = StatusOK
	}
	if err := e.durable.Sync(); err != nil {
		// A record must not say restored what a crash could still lose.
		rec.Status = StatusFailed
		runErr = errors.Join(runErr, fmt.Errorf("restored outputs: %w", err))
	}
	if runErr != nil {
		rec.Error = runErr.Error()
	}
	// The record is written before the verdict is printed: a run whose
	// record is lost has failed, and says so once.
	var put func([]byte) (string, error)
	if e.cache != nil {
		put = func(data []byte) (string, error) {
			id, err := e.cache.PutData(data)
			return id.String(), err
		}
	}
	written := rec.compact(put)
	// The record is written (and synced) while the key state is saved: by
	// another goroutine, or after it by this one when that goroutine's
	// thread is slow to start (par.Each).
	var writeErr error
	writeRecord := func() {
		if writeErr = e.prepared(); writeErr == nil {
			writeErr = written.write(recFile, !e.o.Scratch)
		}
	}
	par.Each(context.Background(), 2, []func(){e.saveState, writeRecord}, func(f func()) error { f(); return nil })
	if err := writeErr; err != nil {
		e.noRecord = true
		err = fmt.Errorf("write run record: %w", err)
		rec.Status, rec.Error = StatusFailed, err.Error()
		if runErr == nil {
			runErr = err
		} else {
			runErr = errors.Join(runErr, err)
		}
	}
	if !e.noRecord {
		rec.written = written
	}
	if e.cache != nil && e.cache.Remote() != nil {
		e.flushRemote(ctx)
	}
	if e.cache != nil && e.cache.MaybeTrim() {
		// Daily, with the cache: old run records go too.
		if err := pruneRuns(plan.Root, keepRuns, cache.DefaultMaxAge, time.Now()); err != nil {
			fmt.Fprintf(e.o.Stderr, "lifeos: prune run records: %v\n", err)
		}
		if err := pruneKeyPacks(plan.Root, time.Now()); err != nil {
			fmt.Fprintf(e.o.Stderr, "lifeos: prune key lines: %v\n", err)
		}
	}
	e.summary()
	return rec, runErr
}

// saveState keeps, at the end of a run, what the next run starts from: the
// stat cache, the key state (only the elements of steps that finished), the
// key lines. None of it is the run's result: a failure is a warning.
func (e *engine) saveState() {
	if err := e.stat.Save(); err != nil {
		fmt.Fprintf(e.o.Stderr, "lifeos: %v\n", err)
	}
	for _, n := range e.nodes {
		if n.status == StatusOK || n.status == StatusCached {
			labels := make(map[string]bool, len(n.elems))
			for _, el := range n.elems {
				labels[el.label] = true
			}
			e.state.retain(n.s.ID, labels)
		}
	}
	if e.trimmed() {
		checked := map[string]bool{}
		for _, n := range e.nodes {
			checked[n.s.ID] = n.status == StatusOK || n.status == StatusCached
		}
		e.state.confirmTrim(e.trimStamp, checked)
	}
	if err := e.saveKeyLines(); err != nil {
		fmt.Fprintf(e.o.Stderr, "lifeos: warning: key lines not kept (the next run will say less of what changed): %v\n", err)
	}
	if err := e.state.save(); err != nil {
		fmt.Fprintf(e.o.Stderr, "lifeos: save key state: %v\n", err)
	}
}

// flushRemote waits for the run's uploads to the shared store (abandoned
// when the run was interrupted) and says what was exchanged with it.
func (e *engine) flushRemote(ctx context.Context) {
	var st cache.RemoteStats
	if e.o.Cache != nil {
		st = e.cache.WaitUploads(ctx)
	} else {
		st = e.cache.FlushRemote(ctx)
	}
	url := e.cache.Remote().String()
	if line := remoteSummary(url, st); line != "" && !e.o.Quiet {
		fmt.Fprintln(e.o.Stdout, line)
	}
	if st.Failed > 0 {
		fmt.Fprintf(e.o.Stderr, "lifeos: warning: %d uploads to %s failed (first: %v); the next run or `lifeos cache push` sends what is missing\n", st.Failed, url, st.FirstError)
	}
}

func (e *engine) summary() {
	counts := map[string]int{}
	for _, n := range e.nodes {
		if n.rec.UpToDate {
			counts[labelUpToDate]++
		} else {
			counts[n.status]++
		}
	}
	var parts []string
	for _, st := range []string{StatusOK, labelUpToDate, StatusCached, StatusSkipped, StatusBlocked, StatusFailed, StatusCancelled} {
		if counts[st] > 0 {
			word := st
			if st == StatusOK {
				word = "ran"
			}
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], word))
		}
	}
	rel, err := filepath.Rel(e.plan.Root, filepath.Join(e.dir, "run.json"))
	if err != nil {
		rel = filepath.Join(e.dir, "run.json")
	}
	if e.rec.Cost > 0 {
		parts = append(parts, fmt.Sprintf("cost %.2f", e.rec.Cost))
	}
	record := "record: " + filepath.ToSlash(rel)
	if e.noRecord {
		record = "no record written"
	}
	fmt.Fprintf(e.o.Stdout, "%s in %s: %s (%s)\n", e.rec.Status, fmtDuration(time.Duration(e.rec.DurationMS*float64(time.Millisecond))), strings.Join(parts, ", "), record)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// task is a unit of work for the pool: a batch of elements to probe (key
// and cache lookup), or one element to run for real. Probing in batches
// keeps a cached foreach of thousands of elements from handing every
// element to a worker one at a time: the handoffs, not the lookups, were
// most of a cached run's time.
type task struct {
	probe []*element
	run   *element
}

// probeBatches splits elements into batches for the probe phase: about four
// per worker, so the workers stay busy while batches differ in cost.
func probeBatches(elems []*element, jobs int) []task {
	size := max(1, len(elems)/(4*jobs))
	var tasks []task
	for i := 0; i < len(elems); i += size {
		tasks = append(tasks, task{probe: elems[i:min(i+size, len(elems))]})
	}
	return tasks
}

// inlineProbe is how many elements the scheduler probes at a time when no
// worker is free: about 0.2 ms of memo checks.
const inlineProbe = 32

// schedule runs the DAG: a ready queue of tasks, Jobs workers, and a single
// goroutine (this one) that owns all run state, after cmd/go's Builder.Do.
// The first failure cancels the context (fail-fast) unless the step has
// continue_on_error.
func (e *engine) schedule(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	work := make(chan task)
	// A result never waits for this goroutine (which may be probing):
	// each worker has one task at a time.
	results := make(chan task, e.o.Jobs)
	for i := 0; i < e.o.Jobs; i++ {
		go func() {
			for t := range work {
				e.probeBatch(ctx, t.probe)
				if t.run != nil {
					e.run(ctx, t.run)
				}
				results <- t
			}
		}()
	}
	defer close(work)

	var queue []task
	var ready []*node
	for _, n := range e.nodes {
		if n.pending == 0 {
			ready = append(ready, n)
		}
	}
	var firstErr error // the failure or gate that decides the exit status
	done := func(el *element) {
		nodes, next := e.elementDone(ctx, el, &firstErr, cancel)
		ready = append(ready, nodes...)
		if next != nil {
			queue = append(queue, task{probe: []*element{next}})
		}
	}
	// handle takes in a probed or run task: a probed element that missed
	// is queued to run.
	handle := func(t task) {
		for _, el := range t.probe {
			if o := e.o.Elsewhere[el.n.s.ID]; el.status == "" && o != nil {
				e.fromElsewhere(el, o) // not run twice
				done(el)
			} else if el.status == "" {
				queue = append(queue, task{run: el}) // a miss: run it
				if n := el.n; !n.announced {
					n.announced = true
					total := 0
					if n.s.isForeach() {
						total = len(n.elems)
					}
					e.con.start(n.s.ID, len(n.elems)-n.remaining, total)
				}
			} else {
				done(el)
			}
		}
		if t.run != nil {
			done(t.run)
		}
	}
	inflight := 0
	for {
		for len(ready) > 0 {
			n := ready[0]
			ready = ready[1:]
			elems := e.start(ctx, n)
			if n.status == "" && len(elems) == 0 { // foreach over nothing
				if err := e.finish(n); err != nil {
					firstErr = firstOf(firstErr, err)
				}
			}
			if n.status != "" { // decided without running: skipped or failed
				if n.status == StatusFailed && !n.s.ContinueOnError {
					err := &StepError{Step: n.s.ID, Err: errors.New(n.rec.Error)}
					firstErr = firstOf(firstErr, err)
					cancel(err)
				}
				ready = append(ready, e.release(n)...)
				continue
			}
			queue = append(queue, probeBatches(elems, e.o.Jobs)...)
		}
		if len(queue) == 0 && inflight == 0 {
			break
		}
		if len(queue) > 0 && queue[0].run == nil && ctx.Err() == nil && e.o.Jobs > 1 {
			// Probing, with every worker busy, or not yet running: a woken
			// worker's thread took 0.1-3 ms to get a CPU on a 2-core VM,
			// and a no-op's probes are all there is. This thread is
			// running: it probes the head of the batch itself, a few
			// elements, so a worker that frees up soon gets the rest.
			// (With one job, elements run in their order, as one worker
			// probes them.)
			select {
			case work <- queue[0]:
				queue = queue[1:]
				inflight++
				continue
			case t := <-results:
				inflight--
				handle(t)
				continue
			default:
			}
			t := task{probe: queue[0].probe[:min(len(queue[0].probe), inlineProbe)]}
			if queue[0].probe = queue[0].probe[len(t.probe):]; len(queue[0].probe) == 0 {
				queue = queue[1:]
			}
			e.probeBatch(ctx, t.probe)
			handle(t)
			continue
		}
		var send chan task
		var next task
		if len(queue) > 0 {
			if ctx.Err() != nil {
				// Stopping: drop what has not started. (Not by appending
				// t.run to t.probe: a probe batch is a window on its step's
				// elements, and the append wrote over the next one.)
				for _, t := range queue {
					for _, el := range t.probe {
						el.status, el.reason = StatusCancelled, "not started: "+stopReason(ctx)
						done(el)
					}
					if el := t.run; el != nil {
						el.status, el.reason = StatusCancelled, "not started: "+stopReason(ctx)
						done(el)
					}
				}
				queue = nil
				continue
			}
			send, next = work, queue[0]
		}
		select {
		case send <- next:
			queue = queue[1:]
			inflight++
		case t := <-results:
			inflight--
			handle(t)
		}
	}
	if firstErr == nil && parent.Err() != nil {
		return parent.Err()
	}
	return firstErr
}

func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func stopReason(ctx context.Context) string {
	var se *StepError
	if err := context.Cause(ctx); errors.As(err, &se) {
		return "step " + se.Step + " failed"
	}
	return "interrupted"
}

// elementDone records a finished element; when it was the node's last, it
// finishes the node and returns the dependents that became ready. A repeat
// step's iteration may instead return the next iteration, to run.
func (e *engine) elementDone(ctx context.Context, el *element, firstErr *error, cancel context.CancelCauseFunc) ([]*node, *element) {
	n := el.n
	if n.s.Repeat != nil && !e.explain {
		next, err := e.nextIteration(ctx, el)
		if err != nil {
			el.status, el.err = StatusFailed, err
		}
		if next != nil {
			n.remaining--
			return nil, next
		}
	}
	if el.status == StatusFailed && !n.s.ContinueOnError && ctx.Err() == nil {
		err := &StepError{Step: n.s.ID, Err: el.err}
		*firstErr = firstOf(*firstErr, err)
		cancel(err)
	}
	n.remaining--
	if n.announced && n.s.isForeach() {
		e.con.progress(n.s.ID, "elements", len(n.elems)-n.remaining, len(n.elems))
	}
	if n.remaining > 0 {
		return nil, nil
	}
	if err := e.finish(n); err != nil {
		*firstErr = firstOf(*firstErr, err)
		var se *StepError // a gate that could not be evaluated fails the run
		if errors.As(err, &se) && !n.s.ContinueOnError {
			cancel(err)
		}
	}
	return e.release(n), nil
}

// release lowers the pending count of n's dependents and returns the ready ones.
func (e *engine) release(n *node) []*node {
	var ready []*node
	for _, d := range n.dependents {
		if d.pending--; d.pending == 0 {
			ready = append(ready, d)
		}
	}
	return ready
}

func (e *engine) finishSkipped(n *node, status, reason string) {
	n.status, n.rec.Status, n.rec.Reason = status, status, reason
	e.progress(n, reason)
}

// progress prints the line of a finished step.
func (e *engine) progress(n *node, detail string) {
	e.con.end(n.s.ID)
	label := n.status
	switch n.status {
	case StatusFailed:
		label = "FAIL"
	case StatusBlocked:
		label = "BLOCKED"
	case StatusSkipped:
		label = "skip"
	case StatusCached:
		if n.rec.UpToDate {
			label = labelUpToDate
		}
		if e.o.Verbose {
			e.replayLogs(n)
		}
	}
	e.con.stepLine(label, n.s.ID, detail)
}

// labelUpToDate is the word for a step whose outputs were already in
// place: nothing ran and nothing was restored. "cached" means the cache
// put something back.
const labelUpToDate = "up to date"
