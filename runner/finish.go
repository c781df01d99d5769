package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeos/lifeos/internal/cost"
)

// finishRepeat records a repeat step's iterations and decides what a loop
// that never met its until comes to: a failure, or with on_max: warn, a
// success with a warning.
func (e *engine) finishRepeat(n *node) {
	rec := n.rec
	rec.Iterations, rec.Until = len(n.elems), n.until
	for _, el := range n.elems {
		er := &ElementRecord{Index: el.index, Item: el.index, Status: el.status, Reason: el.reason, DurationMS: ms(el.dur)}
		if el.status == StatusOK {
			er.Output = el.output.String()
		}
		if el.err != nil {
			er.Error = el.err.Error()
		}
		rec.Elements = append(rec.Elements, er)
	}
	if (n.status != StatusOK && n.status != StatusCached) || n.until == nil || n.until.Value {
		return
	}
	msg := fmt.Sprintf("repeat: until still false after %d iterations: %s", len(n.elems), explainEval(n.until))
	if n.s.Repeat.OnMax == "warn" {
		rec.Reason = msg + " (on_max: warn)"
		fmt.Fprintf(e.o.Stderr, "lifeos: warning: step %s: %s\n", n.s.ID, msg)
		return
	}
	n.status, rec.Error = StatusFailed, msg
}

// finish completes a node once all its elements are done: status, outputs,
// record, gate. It returns a *GateError when the gate is false.
func (e *engine) finish(n *node) error {
	rec := n.rec
	rec.DurationMS = ms(time.Since(n.started))
	counts := map[string]int{}
	for _, el := range n.elems {
		counts[el.status]++
		if el.upToDate {
			n.upToDate++
		}
	}
	if !n.s.isForeach() {
		el := n.elems[len(n.elems)-1] // a repeat step: its last iteration
		n.status, n.outputs, rec.outputsJSON = el.status, el.outputs, el.outJSON
		rec.Reason, rec.Attempts, rec.When = el.reason, el.attempts, firstEval(rec.When, el.when)
		if el.err != nil {
			rec.Error = el.err.Error()
		}
		if el.log != "" {
			rec.Log = e.relPath(el.log)
		}
		rec.Failed = el.failedDir
		if (el.cacheable || el.status == StatusCached) && !el.carried {
			rec.Action = el.action.String()
		}
		if el.status == StatusOK || el.status == StatusCached {
			rec.Output = el.output.String()
		}
		if n.s.Repeat != nil {
			e.finishRepeat(n)
		}
	} else {
		list := make([]any, len(n.elems))
		var firstFail *element
		var failed []string // the failed elements, named for the message
		for i, el := range n.elems {
			list[i] = el.outputs
			if el.status == StatusCached {
				continue // counted, and its outputs are in the list
			}
			er := &ElementRecord{Index: el.index, Item: el.item, Status: el.status, Reason: el.reason, DurationMS: ms(el.dur)}
			if el.status == StatusOK {
				er.Output = el.output.String()
			}
			if el.err != nil {
				er.Error = el.err.Error()
				if el.status == StatusFailed {
					if firstFail == nil {
						firstFail = el
					}
					failed = append(failed, fmt.Sprintf("[%d] %s", el.index, el.label))
				}
			}
			if el.log != "" {
				er.Log = e.relPath(el.log)
			}
			er.Failed = el.failedDir
			if el.failedDir != "" && rec.Failed == "" {
				rec.Failed = e.relPath(e.failedDir()) + "/"
			}
			rec.Elements = append(rec.Elements, er)
		}
		n.outputs = list
		rec.Counts = counts
		switch {
		case counts[StatusFailed] > 0:
			n.status = StatusFailed
			if len(failed) > 5 {
				failed = append(failed[:5], fmt.Sprintf("%d more", len(failed)-5))
			}
			rec.Error = fmt.Sprintf("%d of %d elements failed (%s); first: [%d] %v", counts[StatusFailed], len(n.elems), strings.Join(failed, ", "), firstFail.index, firstFail.err)
		case counts[StatusCancelled] > 0:
			n.status = StatusCancelled
		case counts[StatusRun] > 0:
			n.status = StatusRun
			rec.Reason = e.elementReasons(n)
		case counts[StatusCached] > 0 && counts[StatusOK] == 0:
			n.status = StatusCached
		default:
			n.status = StatusOK
		}
	}
	rec.Status, rec.Cached = n.status, n.status == StatusCached
	rec.UpToDate = rec.Cached && n.upToDate == counts[StatusCached]
	rec.Outputs = n.outputs
	for _, el := range n.elems {
		rec.appends = append(rec.appends, el.appends...)
		if el.cost != nil {
			e.addCost(rec, el.cost)
		}
	}
	var gateErr error
	if n.status == StatusOK || n.status == StatusCached {
		n.itemsID = itemsIdentity(n)
		if _, stored := n.outputs.(*storedOutputs); n.status == StatusOK && !stored {
			// Decided now, so that malformed items fail the step that made
			// them; cached outputs were checked when they were made, and
			// stored ones as they were stored (decodeStored): both are
			// only read if a step downstream runs.
			if _, err := e.nodeItems(n); err != nil {
				n.status, rec.Status, rec.Error = StatusFailed, StatusFailed, err.Error()
				if !n.s.ContinueOnError {
					// The run fails with it, as with a failed element.
					gateErr = &StepError{Step: n.s.ID, Err: err}
				}
			}
		}
	}
	if n.s.Repeat != nil && n.status == StatusFailed && rec.Error != "" && !e.explain {
		gateErr = &StepError{Step: n.s.ID, Err: errors.New(rec.Error)}
	}
	chunk := e.o.Chunk != nil && e.o.Chunk.Step == n.s.ID // a share of the step: its gate is the whole step's
	if n.s.Gate != nil && (n.status == StatusOK || n.status == StatusCached) && !chunk {
		env, err := e.nodeEnv(n)
		if err == nil {
			env.Outputs, err = resolve(n.outputs)
		}
		var ev *Evaluation
		if err == nil {
			ev, err = evalBool(n.s.Gate, &env)
		}
		if err != nil {
			n.status, rec.Status, rec.Error = StatusFailed, StatusFailed, err.Error()
			gateErr = &StepError{Step: n.s.ID, Err: err}
		} else {
			rec.Gate = ev
			if !ev.Value {
				n.status, rec.Status = StatusBlocked, StatusBlocked
				gateErr = &GateError{Step: n.s.ID, Pos: n.s.Gate.Pos, Expr: n.s.Gate.Src, Terms: ev.Terms}
			}
		}
	}
	if o := e.o.Elsewhere[n.s.ID]; o != nil {
		if err := e.settleElsewhere(n, o); err != nil && gateErr == nil {
			n.status, rec.Status, rec.Error = StatusFailed, StatusFailed, err.Error()
			gateErr = &StepError{Step: n.s.ID, Err: err}
		}
	}
	e.progress(n, e.detail(n))
	if n.status == StatusFailed && !e.explain {
		e.logTail(n)
	}
	return gateErr
}

// addCost counts a cost entry of the step in its record and the run's.
func (e *engine) addCost(rec *StepRecord, ce *cost.Entry) {
	if rec.Cost == nil {
		rec.Cost = &StepCost{Activity: ce.Activity, Rate: ce.Rate}
	}
	rec.Cost.Seconds += ce.Seconds
	rec.Cost.Cost += ce.Cost
	e.rec.Cost += ce.Cost
}

func firstEval(a, b *Evaluation) *Evaluation {
	if a != nil {
		return a
	}
	return b
}

func (s *Step) isForeach() bool { return s.Foreach != nil }

func (e *engine) relPath(p string) string {
	if rel, err := filepath.Rel(e.plan.Root, p); err == nil {
		return filepath.ToSlash(rel)
	}
	return p
}

// elementReasons summarises why elements of a foreach would run.
func (e *engine) elementReasons(n *node) string {
	var first *element
	count := 0
	for _, el := range n.elems {
		if el.status == StatusRun {
			count++
			if first == nil {
				first = el
			}
		}
	}
	return fmt.Sprintf("%d of %d elements; first [%s]: %s", count, len(n.elems), first.label, first.reason)
}

// detail is the text after a finished step's status.
func (e *engine) detail(n *node) string {
	rec := n.rec
	var d string
	switch n.status {
	case StatusOK:
		d = fmtDuration(time.Duration(rec.DurationMS * float64(time.Millisecond)))
		if rec.Cost != nil {
			d += fmt.Sprintf(", cost %.2f", rec.Cost.Cost)
		}
		if rec.Reason != "" && !n.s.isForeach() {
			d += " (" + rec.Reason + ")"
		}
		if s := summaryOf(n.outputs); s != "" {
			d = s + "  " + d
		}
	case StatusCached:
		d = summaryOf(n.outputs)
		if rec.Reason != "" && !n.s.isForeach() {
			d = strings.TrimSpace(d + " (" + rec.Reason + ")")
		}
	case StatusRun:
		d = rec.Reason
		if r := n.s.Repeat; r != nil {
			d += fmt.Sprintf("; then again until %s, %d times at most", r.Until.Src, r.Max)
		}
	case StatusFailed, StatusCancelled:
		d = rec.Error
		var notes []string
		if rec.Log != "" {
			notes = append(notes, "log: "+rec.Log)
		}
		if rec.Failed != "" {
			notes = append(notes, "its outputs were moved to "+rec.Failed)
		}
		if len(notes) > 0 {
			d += " (" + strings.Join(notes, "; ") + ")"
		}
	case StatusBlocked:
		d = "gate false: " + explainEval(rec.Gate)
		if rec.Cached && rec.Counts == nil {
			d = "cached, " + d
		}
	case StatusSkipped:
		d = rec.Reason
	}
	if rec.Iterations > 0 && (n.status == StatusOK || n.status == StatusCached) {
		d = strings.TrimSpace(fmt.Sprintf("%d iterations, %s", rec.Iterations, d))
	}
	if rec.Counts != nil {
		var parts []string
		for _, st := range []string{StatusOK, labelUpToDate, StatusCached, StatusRun, StatusSkipped, StatusFailed, StatusCancelled} {
			c := rec.Counts[st]
			switch st {
			case labelUpToDate:
				c = n.upToDate
			case StatusCached:
				c -= n.upToDate
			}
			if c > 0 {
				word := st
				if st == StatusOK {
					word = "ran"
				}
				parts = append(parts, fmt.Sprintf("%d %s", c, word))
			}
		}
		// "[6 cached]" beside "cached" says nothing.
		if len(parts) > 0 && !(len(parts) == 1 && n.status == StatusCached) {
			d = strings.TrimSpace(fmt.Sprintf("[%s] %s", strings.Join(parts, ", "), d))
		}
	}
	return d
}

// logTail prints the last lines of a failed step's log to stderr, so the
// cause is visible without opening the file.
func (e *engine) logTail(n *node) {
	for _, el := range n.elems {
		if el.status != StatusFailed || el.log == "" {
			continue
		}
		data, err := os.ReadFile(el.log)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(e.o.Stderr, "--- %s (last %d lines)\n", e.relPath(el.log), len(lines))
		for _, l := range lines {
			fmt.Fprintf(e.o.Stderr, "    %s\n", l)
		}
		return
	}
}
