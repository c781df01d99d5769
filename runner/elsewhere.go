package runner

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/cost"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/runner/cache"
)

// # Steps carried out elsewhere
//
// A run spread over machines (a Temporal workflow, lifeos-temporal) runs
// each step on a worker with this same engine: a plan of the step and
// what it needs, in which the needs were carried out elsewhere
// (RunOptions.Elsewhere). They are not run again: their results come
// from the shared cache, declared outputs restored, as any cached step's;
// a step whose result is not cached (a notify, a health check) takes the
// outputs its worker reported. When the workflow is done, the submitting
// machine assembles the run the same way, every step elsewhere: the
// declared outputs land in its workspace, and it writes the run record,
// and replays the lines the steps appended (eval history, cost log), as a
// local run would have.

// Outcome is what became of a step carried out elsewhere.
type Outcome struct {
	Status     string  `json:"status"`
	Reason     string  `json:"reason,omitempty"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Worker names the machine that carried it out (host, queue).
	Worker string `json:"worker,omitempty"`
	// Cached: served from the cache there, not run (said of a blocked
	// step, whose status does not tell).
	Cached bool `json:"cached,omitempty"`
	// Summary is the step's one-line result ("4 approved, 2 rejected").
	Summary string `json:"summary,omitempty"`
	// Elements is how many elements a foreach step has (all of them, when
	// only a chunk was carried out).
	Elements int `json:"elements,omitempty"`
	// Outputs is the step's result when the cache does not hold it (a
	// step that is not cached); nil otherwise.
	Outputs json.RawMessage `json:"outputs,omitempty"`
	// Appends are the lines the step appended to workspace files.
	Appends []Append `json:"appends,omitempty"`
	// Entries are bundles of the cache entries of its elements in the
	// shared store (cache.Cache.BundleEntries): a machine that restores
	// them fetches a bundle, not an entry per element.
	Entries []cache.OutputID `json:"entries,omitempty"`
}

// Chunk is a share of a foreach step's elements, or of a Sharer step's
// units of work (a generation's images): From to To, exclusive.
type Chunk struct {
	Step     string `json:"step"`
	From, To int
}

// Append is one JSON line a step appended to a file of the workspace: an
// eval history's evaluation, a cost log's entry.
type Append struct {
	File string          `json:"file"` // relative to the workspace root
	Line json.RawMessage `json:"line"`
}

// OutcomeOf returns what became of step id in a finished run, as
// another machine needs it: its record's status and reason, and its
// outputs when the cache does not hold them.
func (r *Record) OutcomeOf(id string) (*Outcome, error) {
	for _, s := range r.Steps {
		if s.ID != id {
			continue
		}
		o := &Outcome{Status: s.Status, Reason: s.Reason, Error: s.Error, DurationMS: s.DurationMS, Appends: s.appends, Summary: summaryOf(s.Outputs), Elements: s.Total, Cached: s.Cached, Entries: s.entries}
		// A step not cached carries its outputs, a blocked one too: its
		// gate is evaluated again where the run is assembled.
		if s.Action == "" && (s.Status == StatusOK || s.Status == StatusCached || s.Status == StatusBlocked) {
			o.Outputs = s.outputsJSON
			if o.Outputs == nil && s.Outputs != nil {
				b, err := json.Marshal(s.Outputs)
				if err != nil {
					return nil, fmt.Errorf("step %s: outputs: %w", id, err)
				}
				o.Outputs = b
			}
		}
		return o, nil
	}
	return nil, fmt.Errorf("no step %s in run %s", id, r.ID)
}

// bundle sends, on a worker (RunOptions.Share), the entries of each
// step's elements that ran or were served as one object too: the machines
// after it adopt the bundle (adoptBundles) instead of asking for an entry
// per element. Without it they still can.
func (e *engine) bundle(ctx context.Context) {
	if !e.o.Share || e.o.nested || e.cache == nil || e.cache.Remote() == nil {
		return
	}
	for _, n := range e.nodes {
		var ids []cache.ActionID
		for _, el := range n.elems {
			if (el.cacheable || el.carried) && (el.status == StatusOK || el.status == StatusCached) {
				ids = append(ids, el.action)
			}
		}
		if len(ids) < 2 {
			continue
		}
		id, count, err := e.cache.BundleEntries(ctx, ids)
		if err != nil {
			fmt.Fprintf(e.o.Stderr, "lifeos: warning: step %s: %v (its entries are in the shared store one by one)\n", n.s.ID, err)
		} else if count > 0 {
			n.rec.entries = []cache.OutputID{id}
		}
	}
}

// adoptBundles puts in the local cache the entries the steps carried out
// elsewhere bundled, before their elements are probed. A bundle that
// cannot be had costs only requests: its entries are then fetched one by
// one.
func (e *engine) adoptBundles() {
	if e.cache == nil || e.cache.Remote() == nil {
		return
	}
	var bundles []cache.OutputID
	for _, o := range e.o.Elsewhere {
		bundles = append(bundles, o.Entries...)
	}
	e.cache.AdoptEntries(bundles...)
}

// carriedID is where the result of an element that is not cached is
// stored while its run is spread over machines (RunOptions.Share): named
// by the run, so that it reaches the steps after it and the submitting
// side, and never serves another run. A step not cached is one whose
// result cannot be trusted to stay the same (cache: false, an exec that
// declares no inputs), but its files must still travel: the report it
// wrote is the run's report.
func carriedID(runID, step, label string) cache.ActionID {
	return cache.ActionID(sha256.Sum256([]byte("lifeos carried result\n" + runID + "\n" + step + "\n" + label)))
}

// fromElsewhere settles an element of a step carried out elsewhere that
// the cache does not serve: with the outputs its worker reported, or as
// the failure it was there; anything else is an error (its result should
// be in the shared cache, and is not).
func (e *engine) fromElsewhere(el *element, o *Outcome) {
	switch {
	case o.Status == StatusFailed || o.Status == StatusCancelled:
		el.status, el.reason = o.Status, o.Reason
		el.err = errors.New(o.Error)
		if o.Worker != "" {
			el.err = fmt.Errorf("on %s: %s", o.Worker, o.Error)
		}
	case o.Outputs != nil && !el.cacheable:
		outputs, err := decodeOutputs(o.Outputs)
		if err != nil {
			el.status, el.err = StatusFailed, fmt.Errorf("outputs reported by %s: %w", o.Worker, err)
			return
		}
		el.status, el.reason, el.outputs, el.outJSON = StatusOK, o.Reason, outputs, o.Outputs
	default:
		where := o.Worker
		if where == "" {
			where = "another machine"
		}
		el.status, el.err = StatusFailed, fmt.Errorf("carried out on %s, and its result is not in the shared cache (%s): is LIFEOS_CACHE the same bucket everywhere?", where, el.reason)
	}
}

// cancelledElsewhere reports whether a step carried out elsewhere was
// cancelled there (runs cancel): the run was, though nothing stopped here.
func (e *engine) cancelledElsewhere() bool {
	for _, n := range e.nodes {
		if e.o.Elsewhere[n.s.ID] != nil && n.status == StatusCancelled {
			return true
		}
	}
	return false
}

// settleElsewhere makes a finished node's record say what happened where
// it was carried out (it ran there; here it was restored), and replays
// the lines it appended there.
func (e *engine) settleElsewhere(n *node, o *Outcome) error {
	rec := n.rec
	if n.status == StatusCached && o.Status == StatusOK {
		n.status, rec.Status, rec.Cached, rec.UpToDate = StatusOK, StatusOK, false, false
	}
	if o.Status == StatusOK { // it ran there; a step cached there says what happened here
		rec.Reason, rec.DurationMS = o.Reason, o.DurationMS
	}
	if o.Status == StatusBlocked && !o.Cached { // it ran there, and its gate said no
		rec.Cached, rec.UpToDate, rec.Reason, rec.DurationMS = false, false, o.Reason, o.DurationMS
	}
	rec.Worker = o.Worker
	if e.explain {
		return nil
	}
	for _, a := range o.Appends {
		if err := appendOnce(pathglob.Abs(e.plan.Root, a.File), a.Line); err != nil {
			return fmt.Errorf("step %s: %s: %w", n.s.ID, a.File, err)
		}
		// Its cost, in the record as a local run has it.
		if ce, ok := a.costEntry(); ok {
			e.addCost(rec, &ce)
		}
	}
	return nil
}

// costLogRel is the cost log, relative to the workspace root.
var costLogRel = filepath.ToSlash(cost.Log(""))

// costEntry is the cost entry a line appended to the cost log holds.
func (a Append) costEntry() (cost.Entry, bool) {
	var ce cost.Entry
	return ce, a.File == costLogRel && json.Unmarshal(a.Line, &ce) == nil
}

// Cost is what the step's work cost where it was carried out (the cost
// lines it appended), and whether it logged any.
func (o *Outcome) Cost() (total float64, logged bool) {
	for _, a := range o.Appends {
		if ce, ok := a.costEntry(); ok {
			total, logged = total+ce.Cost, true
		}
	}
	return total, logged
}

// appendOnce appends line to the JSON-lines file name unless the file
// already holds it: assembling a run again (after the submitting process
// was killed) must not count an evaluation or a cost twice.
func appendOnce(name string, line json.RawMessage) error {
	var compact bytes.Buffer
	if err := json.Compact(&compact, line); err != nil {
		return err
	}
	if f, err := os.Open(name); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if bytes.Equal(bytes.TrimSpace(sc.Bytes()), compact.Bytes()) {
				f.Close()
				return nil
			}
		}
		f.Close()
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		return err
	}
	return atomicfile.AppendJSONLine(name, json.RawMessage(compact.Bytes()))
}
