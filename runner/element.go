package runner

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/lifeos/lifeos/internal/cost"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
)

// element is one execution of a step: the step itself, or one element of a
// foreach. Workers own an element while executing it. Its fields are in
// two parts: what probing decided (elemPlan) and what happened
// (elemResult), which finish and the run record read.
type element struct {
	n       *node
	index   int
	item    any
	foreach bool
	label   string // identifies the element across runs ("" or the item)
	// prev is, in a repeat step, the outputs of the iteration before (nil
	// in the first): with index and item, what env adds to the step's.
	prev any

	elemPlan
	elemResult
}

// elemPlan is what probing an element decided: its resolved params, what
// they depend on, and its key.
type elemPlan struct {
	params steps.Step
	deps   steps.Deps // what the step reads and writes, once prepared
	// memoOK says the element may use a memo; memoKey, deps.Reads and
	// inputs are what its memo is checked against.
	memoOK    bool
	memoKey   [16]byte
	inputs    []stamp
	inDir     stamp // the folder its inputs' pattern lists (memo.dir)
	hash      *Hash
	action    cache.ActionID
	cacheable bool
	// carried: not cacheable, but its result travels between the machines
	// of its run, stored under carriedID (RunOptions.Share).
	carried bool
	// subWrites are the declared outputs of a pipeline step's sub-run,
	// carried with its result (runSub).
	subWrites []string
	// incomplete: the step's result holds items it could not finish
	// (steps.Env.Incomplete); it is used but not stored.
	incomplete bool
	why        string // why it is not cacheable
}

// elemResult is what came of an element: served, run, skipped or failed.
type elemResult struct {
	status string
	reason string
	// upToDate: cached, and its outputs were already in place (a memo
	// hit, or a restore that had nothing to put back).
	upToDate bool
	logf     *lazyFile // the log of a run, for the cache to keep
	when     *Evaluation
	outputs  any
	outJSON  []byte // outputs as JSON, when at hand (not for stored outputs)
	// outRef is the cache object holding the outputs' JSON when they are
	// large (cache.Result.OutputsObject), outSize its size.
	outRef  cache.OutputID
	outSize int64
	// outPlain says the outputs' JSON has nothing to redact
	// (outputsPlain), once outPlainKnown.
	outPlain, outPlainKnown bool
	output                  cache.OutputID
	err                     error
	started                 time.Time
	dur                     time.Duration
	cost                    *cost.Entry // what running it cost, when the step is costed
	appends                 []Append    // lines it appended to workspace files
	attempts                int
	log                     string
	// failedDir is where a failed element's outputs were moved.
	failedDir string
}

// nodeEnv is the expression environment of a step: params, policy, run and
// the results of the upstream steps its expressions read (loaded, when
// they are stored).
func (e *engine) nodeEnv(n *node) (Env, error) {
	env := Env{Params: e.plan.Params, Policy: e.policy, Run: e.runEnv}
	if len(n.s.refs) > 0 {
		env.Steps = make(map[string]any, len(n.s.refs))
		for _, id := range n.s.refs {
			if d := e.byStep[e.plan.byID[id]]; d != nil {
				out, err := resolve(d.outputs)
				if err != nil {
					return env, fmt.Errorf("step %s: %w", id, err)
				}
				env.Steps[id] = map[string]any{"outputs": out, "status": d.status}
			}
		}
	}
	return env, nil
}

// start decides whether n runs and returns its elements. When n is decided
// without running (a dependency did not succeed, when is false, foreach
// failed), n.status is set and no elements are returned.
func (e *engine) start(ctx context.Context, n *node) []*element {
	n.started = time.Now()
	var willRun *node // plan only: an upstream step that would run
	for _, d := range n.deps {
		var reason string
		switch d.status {
		case StatusOK, StatusCached:
		case StatusFailed:
			if !d.s.ContinueOnError {
				reason = "needs " + d.s.ID + ", which failed"
			}
		case StatusBlocked:
			reason = "gate of " + d.s.ID + " blocked"
		case StatusRun:
			if willRun == nil {
				willRun = d
			}
		default:
			reason = "needs " + d.s.ID + ", which was " + d.status
		}
		if reason != "" {
			e.finishSkipped(n, StatusSkipped, reason)
			return nil
		}
	}
	if willRun != nil {
		// Upstream outputs are unknown, but a when that does not read them
		// can still be decided.
		if w := n.s.When; w != nil && n.s.Foreach == nil {
			// ...and neither does a false part of an && (params.produce in
			// steps.compare.outputs.promote && params.produce).
			env := Env{Params: e.plan.Params, Policy: e.policy, Run: e.runEnv}
			if ev := w.falseConjunct(&env); ev != nil {
				n.rec.When = ev
				e.finishSkipped(n, StatusSkipped, "when false: "+explainEval(ev))
				return nil
			}
		}
		n.status, n.rec.Status, n.rec.Reason = StatusRun, StatusRun, "upstream "+willRun.s.ID+" will run"
		e.progress(n, n.rec.Reason)
		return nil
	}
	if ctx.Err() != nil {
		e.finishSkipped(n, StatusSkipped, "not started: "+stopReason(ctx))
		return nil
	}
	n.key = e.newStepKey(n)
	s := n.s
	fail := func(err error) []*element {
		n.status, n.rec.Status, n.rec.Error = StatusFailed, StatusFailed, err.Error()
		e.progress(n, err.Error())
		return nil
	}
	env, err := e.nodeEnv(n)
	if err != nil {
		return fail(err)
	}
	if s.Foreach == nil {
		if s.When != nil {
			ev, err := evalBool(s.When, &env)
			if err != nil {
				return fail(err)
			}
			n.rec.When = ev
			if !ev.Value {
				e.finishSkipped(n, StatusSkipped, "when false: "+explainEval(ev))
				return nil
			}
		}
		n.env = env
		el := &element{n: n}
		if s.Repeat != nil {
			el.label = "iteration 0"
		}
		n.fp, el.memoOK = e.memoFingerprint(n)
		n.elems, n.remaining = []*element{el}, 1
		return n.elems
	}
	items, err := e.expand(s, &env)
	if err != nil {
		return fail(err)
	}
	n.rec.Total = len(items)
	from := 0
	if c := e.o.Chunk; c != nil && c.Step == s.ID {
		// One chunk of the elements, on one of several workers: each is
		// cached on its own, and the step is assembled once all are.
		from = min(c.From, len(items))
		items = items[from:min(max(c.To, from), len(items))]
	}
	n.env = env
	n.elems = make([]*element, len(items))
	e.seen.reserve(len(items))
	var memoOK bool
	n.fp, memoOK = e.memoFingerprint(n)
	all := make([]element, len(items)) // one allocation, not one per image
	for k, it := range items {
		i := from + k
		el := &all[k]
		*el = element{n: n, index: i, item: it, foreach: true, label: stringify(it), elemPlan: elemPlan{memoOK: memoOK}}
		n.elems[k] = el
	}
	n.remaining = len(n.elems)
	return n.elems
}

// env is what the element's expressions see: its step's, with its item or
// its iteration. Made when asked for rather than kept: a copy in each of a
// thousand elements was 96 KB of fresh heap on every no-op run.
func (el *element) env() Env {
	env := el.n.env
	if el.foreach {
		env.Item, env.ItemIndex = el.item, el.index
	}
	if el.n.s.Repeat != nil {
		env.Iteration, env.Previous = el.index, el.prev
	}
	return env
}

// glob lists the files of a foreach glob. A glob over one folder
// ("images/*.png") is listed again only when the folder's stamp changed
// since its listing was recorded: a folder whose entries were not added,
// removed or renamed holds the same names (a no-op over 1,000 images
// spent a twentieth of its time listing and sorting them).
func (e *engine) glob(s *Step) ([]string, error) {
	g := s.Foreach.Glob
	if e.left.active() {
		files, err := e.walkLeft([]string{g})
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.rel
		}
		return names, err
	}
	dir, ok := pathglob.OneDir(g)
	if !ok || e.state == nil {
		return pathglob.Files(e.plan.Root, []string{g})
	}
	st, _ := statStamp(e.plan.Root, dir) // before it is listed
	if st.path != "" {
		if files := e.state.listing(s.ID, g, st); files != nil {
			return files, nil
		}
	}
	files, byFolder, err := pathglob.ListOneDir(e.plan.Root, g)
	if err == nil && byFolder && st.path != "" && !st.racy(time.Now()) {
		e.state.setListing(s.ID, g, st, files)
	}
	return files, err
}

// nextIteration decides, once a repeat step's iteration is done, whether
// another runs: it returns it, or nil when the loop ends (until holds, an
// iteration did not succeed, max ran, the run stops, or in a plan).
func (e *engine) nextIteration(ctx context.Context, el *element) (*element, error) {
	n, r := el.n, el.n.s.Repeat
	if ctx.Err() != nil || (el.status != StatusOK && el.status != StatusCached) {
		return nil, nil
	}
	env := el.env()
	out, err := resolve(el.outputs)
	if err != nil {
		return nil, err
	}
	env.Outputs = out
	ev, err := evalBool(r.Until, &env)
	if err != nil {
		return nil, fmt.Errorf("%s: repeat.until: %w", n.s.ID, err)
	}
	n.until = ev
	if ev.Value || el.index+1 >= r.Max {
		return nil, nil
	}
	next := &element{n: n, index: el.index + 1, label: fmt.Sprintf("iteration %d", el.index+1), prev: out,
		elemPlan: elemPlan{memoOK: el.memoOK}}
	n.elems = append(n.elems, next)
	n.remaining++
	return next, nil
}

// expand evaluates a foreach: a glob gives workspace-relative paths.
func (e *engine) expand(s *Step, env *Env) ([]any, error) {
	if s.Foreach.Expr == nil {
		files, err := e.glob(s)
		if err != nil {
			return nil, fmt.Errorf("%s: foreach: %w", s.Foreach.Pos, err)
		}
		items := make([]any, len(files))
		for i, f := range files {
			items[i] = f
		}
		return items, nil
	}
	v, err := s.Foreach.Expr.eval(env)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("%s: foreach: expected a list, got %s", s.Foreach.Expr.Pos, kindName(v))
	}
	items := make([]any, rv.Len())
	for i := range items {
		items[i] = rv.Index(i).Interface()
	}
	return items, nil
}

func evalBool(x *Expr, env *Env) (*Evaluation, error) {
	v, err := x.eval(env)
	if err != nil {
		return nil, err
	}
	ev := &Evaluation{Expr: x.Src, Value: v == true}
	if !ev.Value {
		ev.Terms = x.terms(env)
	}
	return ev, nil
}

// explainEval renders "expr (a = 1, b = 2)".
func explainEval(ev *Evaluation) string {
	s := ev.Expr
	for i, t := range ev.Terms {
		if i == 0 {
			s += " ("
		} else {
			s += ", "
		}
		s += t.Expr + " = " + formatValue(t.Value)
		if i == len(ev.Terms)-1 {
			s += ")"
		}
	}
	return s
}
