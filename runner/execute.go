package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/cost"
	"github.com/lifeos/lifeos/internal/par"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
)

// prepare resolves an element's params and computes its cache key.
func (e *engine) prepare(el *element) error {
	s := el.n.s
	e.nodeInputs(el.n)
	env := el.env()
	if el.foreach && s.When != nil {
		ev, err := evalBool(s.When, &env)
		if err != nil {
			return err
		}
		el.when = ev
		if !ev.Value {
			el.status, el.reason = StatusSkipped, "when false: "+explainEval(ev)
			return nil
		}
	}
	// Each template is evaluated once, for both the typed params and the
	// key material.
	memo := map[*Template]any{}
	d := &withDecoder{file: e.plan.Pipeline.File, src: e.plan.Pipeline.src, templates: s.templates,
		eval: func(t *Template) (any, error) {
			if v, ok := memo[t]; ok {
				return v, nil
			}
			v, err := t.eval(&env)
			memo[t] = v
			return v, err
		}}
	var resolved any = map[string]any{}
	if s.static != nil {
		el.params = s.static
	} else {
		el.params = s.Type.New()
		if s.With != nil {
			if err := d.decode(s.With, reflect.ValueOf(el.params), "with"); err != nil {
				return err
			}
		}
		if err := validateParams(el.params, e.plan.Root); err != nil {
			return fmt.Errorf("%s: with: %w", s.withPos, err)
		}
	}
	if s.With != nil {
		var err error
		if resolved, err = d.generic(s.With); err != nil {
			return err
		}
	}
	el.deps = el.params.Deps(el.n.up)
	e.sweepOutputs(el.deps.Writes)
	if e.o.writes != nil {
		e.o.writes.add(el.deps.Writes)
	}
	switch {
	case e.cache == nil:
		el.why = "cache off"
	case !s.Cache:
		el.why = "cache: false"
	case el.deps.Volatile:
		el.why = "always runs"
		if s.Uses == "exec" {
			el.why = "always runs (exec without declared inputs)"
		}
	default:
		el.cacheable = true
	}
	if !el.cacheable {
		el.memoOK = false
		if e.cache != nil && (e.o.Share || e.o.Elsewhere[s.ID] != nil) {
			el.carried, el.action = true, carriedID(e.rec.ID, s.ID, el.label)
		}
		return nil // no key: nothing will be looked up, or stored but carried
	}
	h, err := e.actionKey(el, resolved)
	if err != nil {
		return err
	}
	el.hash, el.action = h, h.Sum()
	return nil
}

// probe prepares an element and looks it up in the cache. It leaves the
// status empty when the element must run (el.reason says why); in a plan
// (explain) that is StatusRun instead.
func (e *engine) probe(ctx context.Context, el *element) {
	e.probeBatch(ctx, []*element{el})
}

// probeLocal is what the probe of one batch keeps to itself until the
// batch is done, so that a thousand elements on two workers do not take
// the shared locks several times each.
type probeLocal struct {
	gen   uint64  // the seen stamps' generation when the batch began
	seen  []stamp // stamps memos confirmed, for e.seen
	swept string  // the folder last swept
}

// probeBatch probes a batch of elements: their keys first, then the
// cache. With a shared store behind the cache, their entries are fetched
// together: one lookup after another would wait on the network for each.
func (e *engine) probeBatch(ctx context.Context, els []*element) {
	// Most elements write one file: grown from nothing, the stamps of a
	// 1,000-element no-op were allocated twice over.
	pl := &probeLocal{gen: e.seen.generation(), seen: make([]stamp, 0, len(els))}
	defer func() { e.seen.putAll(pl.seen, pl.gen) }()
	var look []*element
	var ids []cache.ActionID
	for _, el := range els {
		if e.probeKey(ctx, el, pl) {
			look = append(look, el)
			if e.mayRestore(el) {
				ids = append(ids, el.action)
			}
		}
	}
	if e.cache != nil && len(ids) > 1 {
		e.cache.Prefetch(ids)
	}
	// Restores wait on the disk (each restored file is synced before it
	// takes its name) and on the shared store, not the CPU: as many at
	// once as transfers. Every element is probed, even once ctx is done.
	par.Each(context.WithoutCancel(ctx), cache.Transfers, look, func(el *element) error {
		e.probeCache(el)
		return nil
	})
}

// probeKey prepares an element: served by its memo, or with its key made.
// It reports whether the cache is still to be asked (probeCache).
func (e *engine) probeKey(ctx context.Context, el *element, pl *probeLocal) bool {
	el.started = time.Now()
	defer func() { el.dur = time.Since(el.started) }()
	if ctx.Err() != nil && !e.explain {
		el.status, el.reason = StatusCancelled, "not started: "+stopReason(ctx)
		return false
	}
	if el.memoOK {
		el.memoKey = memoKey(el.n.fp, el) // here, in a worker, not in the scheduler
		if !e.o.NoCache && !e.debug["cacheverify"] && e.memoHit(el, pl) {
			el.status, el.cacheable, el.upToDate = StatusCached, true, true
			return false
		}
	}
	if err := e.prepare(el); err != nil {
		el.status, el.err = StatusFailed, err
		return false
	}
	return el.status != StatusSkipped
}

// probeCache looks a prepared element up in the cache, or says why it
// runs.
func (e *engine) probeCache(el *element) {
	started := time.Now()
	defer func() { el.dur += time.Since(started) }()
	if e.mayRestore(el) && e.restore(el) {
		el.status = StatusCached
		return
	}
	el.reason = e.whyRun(el)
	if e.explain {
		el.status = StatusRun
	}
}

// mayRestore says whether an element may be served from the cache: a
// cacheable one unless the cache is not to be read, and one carried out
// already in this run (elsewhere, in a chunk, by an attempt a lost worker
// made), with its files: not run twice in one run, though it is not cached
// across runs.
func (e *engine) mayRestore(el *element) bool {
	return el.cacheable && !e.o.NoCache && !e.debug["cacheverify"] || el.carried
}

// whyRun says why an element is not served from the cache.
func (e *engine) whyRun(el *element) string {
	switch {
	case !el.cacheable:
		return el.why
	case e.o.NoCache:
		return "--no-cache"
	}
	prev, ok := e.state.get(el.n.s.ID, el.label)
	if !ok {
		if el.foreach {
			return "new element"
		}
		return "no cached result"
	}
	if prev == el.action {
		return "cached result missing or damaged"
	}
	lines, err := e.keyLinesOf(el.n.s.ID, el.label, prev)
	if err != nil {
		return "inputs changed"
	}
	return diffKeys(lines, el.hash.Lines())
}

// restore serves an element from the cache: its outputs, and its declared
// outputs made identical to the stored tree (in a plan, only compared).
// Any problem is a miss.
func (e *engine) restore(el *element) bool {
	data, entry, err := e.cache.GetBytes(el.action)
	if err != nil {
		return false
	}
	var res cache.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return false
	}
	data = nil // checked against entry.Output; a filter's is tens of megabytes
	if res.OutputsObject != (cache.OutputID{}) {
		if res.Outputs, err = e.cache.ReadObject(res.OutputsObject, res.OutputsSize); err != nil {
			return false
		}
		el.outRef, el.outSize = res.OutputsObject, res.OutputsSize
	}
	// Large outputs as store leaves them (outputsFrom); their items were
	// checked when they were made.
	outputs, outJSON, err := e.outputsFrom(el, res.Outputs, false)
	if err != nil {
		return false
	}
	if outJSON == nil {
		res.Outputs = nil // by reference (outputsFrom): recordMemo knows
	}
	leave := e.o.NoDownload && e.o.Elsewhere[el.n.s.ID] != nil
	changes, writes, err := e.syncOutputs(&res, !e.explain && !leave)
	if err != nil {
		return false
	}
	if (leave || e.explain) && changes.count() > 0 {
		// Not written here: the steps after see them as written.
		e.left.add(&res)
	}
	el.outputs, el.outJSON, el.output = outputs, outJSON, entry.Output
	switch {
	case changes.count() == 0:
		el.upToDate = true
	case e.explain:
		el.reason = changes.pending()
	case leave:
		el.reason = "outputs left in the shared cache (--no-download)"
	default:
		el.reason = changes.done()
	}
	if !e.explain && !leave && !el.carried {
		e.recordMemo(el, res.Outputs, writes)
	}
	if e.o.Share {
		e.cache.Share(el.action, &res)
	}
	return true
}

// decodeOutputs decodes stored outputs; most steps have none, and "{}" is
// by far the most common value in a large foreach.
// outputsFrom is what the steps downstream and the record see of an
// element's outputs, data, just stored or restored: the outputs as JSON
// gives them back, and their JSON when it is kept with them. Large ones of
// a step (not of a foreach element), an object in the cache, are never
// decoded whole: their small outputs are, and the rest only if something
// reads it (a score over 100,000 images decoded whole was 180 MB). With
// check, their items are checked one at a time, so that malformed ones
// fail the step that made them.
func (e *engine) outputsFrom(el *element, data []byte, check bool) (outputs any, outJSON []byte, err error) {
	if el.outRef != (cache.OutputID{}) && !el.foreach && e.outputsPlain(el, data) {
		so, err := decodeStored(e.cache, el.outRef, data, check)
		if err != nil {
			return nil, nil, fmt.Errorf("step %s: %w", el.n.s.ID, err) // as outputItems says it
		}
		return so, nil, nil
	}
	if outputs, err = decodeOutputs(data); err != nil {
		return nil, nil, fmt.Errorf("decode outputs: %w", err)
	}
	return outputs, data, nil
}

func decodeOutputs(data []byte) (any, error) {
	switch string(data) {
	case "":
		return nil, nil
	case "{}":
		return map[string]any{}, nil
	}
	var v any
	err := json.Unmarshal(data, &v)
	return v, err
}

func (e *engine) logName(el *element) string {
	if el.foreach || el.n.s.Repeat != nil {
		return fmt.Sprintf("%s.%d.log", el.n.s.ID, el.index)
	}
	return el.n.s.ID + ".log"
}

// run executes a probed element for real, with retries and timeout.
func (e *engine) run(ctx context.Context, el *element) {
	defer func() { el.dur = time.Since(el.started) }()
	if ctx.Err() != nil {
		el.status, el.reason = StatusCancelled, "not started: "+stopReason(ctx)
		return
	}
	if e.o.Slots != nil {
		if !e.o.Slots.take(ctx) {
			el.status, el.reason = StatusCancelled, "not started: "+stopReason(ctx)
			return
		}
		defer e.o.Slots.give()
	}
	if e.prepared != nil {
		// Nothing runs for real before the sweep of what killed runs left,
		// nor when the run could not be recorded.
		if err := e.prepared(); err != nil {
			el.status, el.err = StatusFailed, fmt.Errorf("the run cannot be recorded: %w", err)
			return
		}
	}
	s := el.n.s
	e.seen.clear()
	e.stats.Reset()
	defer e.seen.clear()
	defer e.stats.Reset()
	logf := &lazyFile{path: filepath.Join(e.dir, "logs", e.logName(el))}
	el.logf = logf
	var log io.Writer = logf
	item := ""
	if el.foreach {
		item = el.label
	}
	var sw *PrefixWriter
	if s.Type.Streams || e.o.Verbose {
		// Streamed as it comes, after the redaction below like the log.
		if sw = e.con.stream(s.ID, item, el.n.index); sw != nil {
			log = io.MultiWriter(logf, sw)
			defer sw.Flush()
		}
	}
	defer func() {
		if err := logf.Close(); err != nil && el.err == nil {
			el.status, el.err = StatusFailed, fmt.Errorf("log: %w", err)
		}
		if logf.f != nil {
			el.log = logf.path
		}
	}()
	var gpuMu sync.Mutex
	var gpu map[string]float64 // seconds by server, for the cost entry
	if s.Cost != nil && !e.o.Assemble {
		if err := e.checkBudget(s); err != nil {
			el.status, el.err = StatusFailed, err
			return
		}
		began := time.Now()
		defer func() {
			if el.status != StatusOK && el.status != StatusFailed {
				return // interrupted before it could bill
			}
			gpuMu.Lock()
			defer gpuMu.Unlock()
			ce, err := cost.Append(e.plan.Root, cost.Entry{Time: time.Now(), Activity: s.Cost.Activity, Seconds: time.Since(began).Seconds(),
				Rate: e.costRate(s.Cost), RunID: e.rec.ID, Step: s.ID, GPUSeconds: gpu})
			if err != nil {
				fmt.Fprintf(e.o.Stderr, "lifeos: warning: cost of step %s not logged: %v\n", s.ID, err)
				return
			}
			el.cost = &ce
			if line, err := json.Marshal(ce); err == nil {
				el.appends = append(el.appends, Append{File: e.relPath(cost.Log(e.plan.Root)), Line: line})
			}
		}()
	}
	env := &steps.Env{Root: e.plan.Root, Log: redactWriter{e.plan.redact, log}, StepID: s.ID,
		Progress: func(unit string, done, total int) { e.con.progress(s.ID, unit, done, total) },
		Hash:     Hasher(e.stat),
		AppendJSONLine: func(rel string, v any) error {
			line, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if err := atomicfile.AppendJSONLine(pathglob.Abs(e.plan.Root, rel), json.RawMessage(line)); err != nil {
				return err
			}
			gpuMu.Lock()
			el.appends = append(el.appends, Append{File: rel, Line: line})
			gpuMu.Unlock()
			return nil
		},
		GPU: func(server string, seconds float64) {
			gpuMu.Lock()
			defer gpuMu.Unlock()
			if gpu == nil {
				gpu = map[string]float64{}
			}
			gpu[server] += seconds
		}}
	if s.readsItems {
		items, err := e.nodeInItems(el.n)
		if err != nil {
			el.status, el.err = StatusFailed, err
			return
		}
		env.Items = items
	}
	env.Predicates = predicatesFor(s, el.env())
	if el.deps.Upstream {
		env.Upstream = el.n.up
	}
	if len(el.deps.Policy) > 0 {
		env.Policy = map[string]any{}
		for _, sec := range el.deps.Policy {
			env.Policy[sec], _ = e.plan.Policy.Get(sec)
		}
	}
	env.RunPipeline = func(ctx context.Context, file string, params map[string]any) (steps.Outputs, error) {
		return e.runSub(ctx, el, file, params)
	}
	env.Run = steps.RunInfo{ID: e.rec.ID, Started: e.runEnv["started"].(string), Pipeline: e.rec.Pipeline,
		PipelineDigest: e.rec.PipelineDigest, PolicyDigest: e.rec.PolicyDigest}
	if e.cache != nil && s.Cache && !e.o.NoCache {
		env.Cache = itemCache{e.cache}
	}
	if c := e.o.Chunk; c != nil && c.Step == s.ID && !el.foreach {
		// One share of a step whose work splits (a generation's images),
		// on one of several workers: not the step's result.
		if _, ok := el.params.(steps.Sharer); !ok {
			el.status, el.err = StatusFailed, fmt.Errorf("step %s (%s) cannot be carried out in shares", s.ID, s.Uses)
			return
		}
		env.Share = &steps.Share{From: c.From, To: c.To}
	}
	if err := e.unshare(el.deps.Writes); err != nil {
		el.status, el.err = StatusFailed, err
		return
	}
	var outs steps.Outputs
	var err error
	for attempt := 1; ; attempt++ {
		el.attempts = attempt
		actx, cancel := ctx, context.CancelFunc(func() {})
		if s.Timeout > 0 {
			actx, cancel = context.WithTimeoutCause(ctx, s.Timeout, fmt.Errorf("timed out after %s", s.Timeout))
		}
		outs, err = el.params.Run(actx, env)
		cancel()
		if err == nil || ctx.Err() != nil || attempt > s.Retries {
			break
		}
		delay := min(s.Backoff<<(attempt-1), maxBackoff)
		msg := fmt.Sprintf("lifeos: attempt %d of %d failed: %v; retrying in %s\n", attempt, s.Retries+1, err, delay)
		fmt.Fprint(env.Log, msg)
		if sw == nil {
			// Shown live whatever the step: a retry is worth knowing now.
			if w := e.con.stream(s.ID, item, el.n.index); w != nil {
				fmt.Fprint(redactWriter{e.plan.redact, w}, msg)
			}
		}
		select {
		case <-time.After(delay):
			continue
		case <-ctx.Done():
		}
		break
	}
	if err == nil {
		el.incomplete = env.Incomplete
		if env.Share != nil {
			el.n.rec.Total = env.Share.Total // the workflow shares out the rest
		}
		err = e.store(el, outs)
	}
	if err != nil {
		if ctx.Err() != nil {
			el.status, el.err = StatusCancelled, errors.New(stopReason(ctx))
		} else {
			el.status, el.err = StatusFailed, err
		}
		e.keepFailedWork(el, err)
		// Into the log only: the step's result line says it on screen.
		fmt.Fprintf(redactWriter{e.plan.redact, logf}, "lifeos: %v\n", el.err)
		return
	}
	el.status = StatusOK
}

// keepFailedWork moves a failed element's outputs aside (see moveAside),
// keeping the finished part of a partial failure in place.
func (e *engine) keepFailedWork(el *element, err error) {
	var keep map[string]bool
	var pe *steps.PartialError
	if errors.As(err, &pe) {
		keep = make(map[string]bool, len(pe.Kept))
		for _, k := range pe.Kept {
			keep[k] = true
		}
	}
	dir, merr := e.moveAside(el, keep)
	el.failedDir = dir
	if merr != nil {
		fmt.Fprintf(e.o.Stderr, "lifeos: warning: step %s: %v\n", el.n.s.ID, merr)
	}
}

// lazyFile is a step log created on the first write: most steps of a large
// pipeline print nothing, and 10,000 empty log files cost more than the
// scheduling itself.
type lazyFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
	err  error
}

func (l *lazyFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil && l.err == nil {
		if l.err = os.MkdirAll(filepath.Dir(l.path), 0o777); l.err == nil {
			l.f, l.err = os.Create(l.path)
		}
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.f.Write(p)
}

// maxKeptLog is the largest log the cache keeps with a result: a filter
// of 100,000 images logs a line per rejection, which no one replays.
const maxKeptLog = 1 << 20

// size is how much the log holds; -1 when nothing was written.
func (l *lazyFile) size() int64 {
	if l == nil {
		return -1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.err != nil {
		return -1
	}
	st, err := l.f.Stat()
	if err != nil {
		return -1
	}
	return st.Size()
}

func (l *lazyFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return l.err
	}
	return l.f.Close()
}

// store records a successful element: outputs normalised through JSON (so
// a fresh run and a cached one look the same), files and the entry. A
// declared output that is missing fails the element; a cache that cannot
// be written only costs the caching, with a warning, since the work itself
// succeeded (throwing away a GPU batch because the disk is full would be
// worse).
func (e *engine) store(el *element, outs steps.Outputs) error {
	if outs == nil {
		outs = steps.Outputs{}
	}
	outJSON, err := json.Marshal(outs)
	if err != nil {
		return fmt.Errorf("encode outputs: %w", err)
	}
	outs = nil // the caller's copy goes too: a batch's items are tens of megabytes
	res := cache.Result{Outputs: outJSON}
	store := (el.cacheable || el.carried) && e.cache != nil && !el.incomplete
	var files []string
	declared := el.deps.Writes
	if el.carried && len(el.subWrites) > 0 { // a pipeline step's sub-run (runSub)
		declared = append(slices.Clip(declared), el.subWrites...)
	}
	if store && len(declared) > 0 {
		if files, res.Dirs, res.Roots, err = e.outputTree(declared); err != nil {
			return fmt.Errorf("collect outputs: %w", err)
		}
	}
	warn := func(err error) {
		fmt.Fprintf(e.o.Stderr, "lifeos: warning: step %s succeeded but its result was not cached: %v\n", el.n.s.ID, err)
		store = false
	}
	if store && len(outJSON) > memoOutputsMax {
		// Large outputs are an object of their own, which memos and run
		// records refer to as well.
		if id, err := e.cache.PutData(outJSON); err != nil {
			warn(err)
		} else {
			res.Outputs, res.OutputsObject, res.OutputsSize = nil, id, int64(len(outJSON))
			el.outRef, el.outSize = id, int64(len(outJSON))
		}
	}
	if el.outputs, el.outJSON, err = e.outputsFrom(el, outJSON, true); err != nil {
		return err
	}
	if el.outJSON == nil && el.outRef != (cache.OutputID{}) {
		// In the cache, by reference (outputsFrom): let go of their
		// JSON before the result is encoded; recordMemo knows.
		outJSON = nil
	}
	writes := make([]stamp, len(files), len(files)+len(res.Dirs))
	modes := make([]uint32, len(files))
	// On both cores: a filter's 100,000 placed files are as many stats.
	// Not cancelled: the work is done, and storing it is what is left.
	err = par.For(context.Background(), len(files), 2, func(i int) error {
		st, err := os.Stat(e.abs(files[i]))
		if err != nil {
			return fmt.Errorf("collect outputs: %w", err)
		}
		writes[i], modes[i] = stampOf(files[i], st), uint32(st.Mode().Perm())
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range res.Dirs {
		if st, err := os.Stat(e.abs(d)); err == nil {
			writes = append(writes, stampOf(d, st))
		}
	}
	// A result not stored is still identified by its digest (the record,
	// the keys of the steps after it): the result without its files.
	unstored := func() error {
		data, err := json.Marshal(res)
		el.output = cache.Sum(data)
		return err
	}
	if !store {
		return unstored()
	}
	// A small output goes inside the result (an exec's one-line .size
	// file, a score's JSON), not into an object file of its own; each is
	// read when the encoding reaches it.
	file := func(i int) (cache.File, error) {
		f, w := files[i], writes[i]
		if w.size <= cache.InlineFileMax {
			if data, ok := cache.ReadSized(e.abs(f), w.size); ok {
				return cache.File{Path: f, Object: cache.Sum(data), Size: w.size, Mode: modes[i], Data: data}, nil
			}
		}
		id, size, err := e.cache.PutFile(e.abs(f))
		if err != nil {
			return cache.File{}, fmt.Errorf("store output %s: %w", f, err)
		}
		return cache.File{Path: f, Object: id, Size: size, Mode: modes[i]}, nil
	}
	var prev []byte
	if e.debug["cacheverify"] {
		prev, _, _ = e.cache.GetBytes(el.action)
	}
	if el.hash != nil { // a carried result has no key lines
		e.keys.add(el) // written with the key state (keylines.go)
	}
	if n := el.logf.size(); n > 0 && n <= maxKeptLog {
		// For `run -v` to show when the result is reused.
		if err := e.cache.PutLog(el.action, el.logf.path); err != nil {
			fmt.Fprintf(e.o.Stderr, "lifeos: warning: step %s: log not kept in the cache: %v\n", el.n.s.ID, err)
		}
	}
	el.output, err = e.cache.PutStream(el.action, func(w io.Writer) error {
		return cache.EncodeResult(w, &res, len(files), file)
	})
	if err != nil {
		warn(err)
		return unstored()
	}
	if prev != nil && cache.Sum(prev) != el.output {
		if data, _, err := e.cache.GetBytes(el.action); err == nil && !e.sameResult(prev, data) {
			fmt.Fprintf(e.o.Stderr, "lifeos: cacheverify: step %s is not deterministic: same key %s, different result\n", el.n.s.ID, el.action.Short())
		}
	}
	if !el.carried {
		e.recordMemo(el, outJSON, writes)
	}
	return nil
}
