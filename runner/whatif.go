package runner

import (
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/lifeos/lifeos/internal/overrides"
	"github.com/lifeos/lifeos/steps"
)

// Recorded is a finished run's recorded results, read once to be replayed
// through edited policies by WhatIf (a sweep replays it many times).
type Recorded struct {
	Run     *Record
	outputs map[string]any          // step id -> complete outputs, resolved
	items   map[string][]steps.Item // step id -> its items, when it has some
}

// LoadRecorded reads the complete outputs of every step of rec that
// finished (large ones from the cache).
func LoadRecorded(root string, rec *Record) (*Recorded, error) {
	r := &Recorded{Run: rec, outputs: map[string]any{}, items: map[string][]steps.Item{}}
	for _, s := range rec.Steps {
		if s.Status != StatusOK && s.Status != StatusCached && s.Status != StatusBlocked {
			continue
		}
		out, _, err := StepDetail(root, rec, s.ID)
		if err != nil {
			return nil, fmt.Errorf("run %s: step %s: %w (the cache no longer holds its outputs?)", rec.ID, s.ID, err)
		}
		r.outputs[s.ID] = out
		m, _ := out.(map[string]any)
		if v, ok := m["items"]; ok {
			its, err := steps.ItemsFrom(v)
			if err != nil {
				return nil, fmt.Errorf("run %s: step %s: outputs.%w", rec.ID, s.ID, err)
			}
			r.items[s.ID] = its
		}
	}
	return r, nil
}

// Flip is an image whose verdict the edited policy changes.
type Flip struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Approved is the new verdict (the recorded one was the opposite).
	Approved bool `json:"approved"`
	// Why is the clause and values that decide it: the clause that now
	// fails, or, for an image now approved, the one that had failed.
	Why string `json:"why"`
}

// FilterWhatIf is a filter's verdicts, recorded and replayed.
type FilterWhatIf struct {
	Step           string `json:"step"`
	Items          int    `json:"items"`
	ApprovedBefore int    `json:"approved_before"`
	ApprovedAfter  int    `json:"approved_after"`
	// Overridden counts the images a human decision (overrides.yaml)
	// judged, whatever the expression says.
	Overridden int    `json:"overridden"`
	Flips      []Flip `json:"flips"`
}

// GradeWhatIf is a scorecard's grade, recorded and replayed.
type GradeWhatIf struct {
	Step            string  `json:"step"`
	GradeBefore     string  `json:"grade_before"`
	GradeAfter      string  `json:"grade_after"`
	CompositeBefore float64 `json:"composite_before"`
	CompositeAfter  float64 `json:"composite_after"`
}

// GateWhatIf is a gate, recorded and replayed on the step's outputs.
type GateWhatIf struct {
	Step   string `json:"step"`
	Before bool   `json:"before"`
	After  bool   `json:"after"`
	// Explain is the gate with its operands' values under the edit.
	Explain string `json:"explain"`
}

// WhatIfResult is what an edited policy would have made of a run.
type WhatIfResult struct {
	Run        string         `json:"run"`
	Pipeline   string         `json:"pipeline"`
	Filters    []FilterWhatIf `json:"filters"`
	Scorecards []GradeWhatIf  `json:"scorecards"`
	Gates      []GateWhatIf   `json:"gates"`
	// Whens are the steps' when conditions on the replayed results: a
	// production step that would now run, or not.
	Whens []GateWhatIf `json:"whens"`
}

// WhatIf replays the recorded results through the plan's policy (the
// policy file with --set edits), executing nothing: each filter's
// expression on its recorded items, each scorecard's grades and weights on
// the items as the filters now judge them, and each gate on its step's
// recorded outputs (a scorecard's or filter's as replayed).
func (p *Plan) WhatIf(r *Recorded) (*WhatIfResult, error) {
	res := &WhatIfResult{Run: r.Run.ID, Pipeline: r.Run.Pipeline, Filters: []FilterWhatIf{}, Scorecards: []GradeWhatIf{}, Gates: []GateWhatIf{}, Whens: []GateWhatIf{}}
	policy := p.Policy.Map()
	env := Env{Params: p.Params, Policy: policy, Run: map[string]any{"id": r.Run.ID, "started": r.Run.Started.UTC().Format(time.RFC3339), "pipeline": p.Pipeline.Name}}
	list, err := overrides.Read(p.Root)
	if err != nil {
		return nil, err
	}
	ov := overrides.BySHA(list)
	items := map[string][]steps.Item{} // as replayed
	outputs := map[string]any{}        // as replayed, for gates and whens
	recs := make(map[string]*StepRecord, len(r.Run.Steps))
	for _, sr := range r.Run.Steps {
		recs[sr.ID] = sr
	}
	for _, s := range p.Order {
		if sr := recs[s.ID]; sr != nil && sr.When != nil && s.When != nil && s.Foreach == nil {
			w, err := replayBool(s, s.When, sr.When.Value, env, outputs, nil)
			if err != nil {
				return nil, fmt.Errorf("step %s: when: %w", s.ID, err)
			}
			res.Whens = append(res.Whens, w)
		}
		out, recorded := r.outputs[s.ID]
		if !recorded {
			continue
		}
		outputs[s.ID] = out
		switch s.Uses {
		case "filter":
			pred := predicatesFor(s, env)["approve"]
			its := r.items[s.ID]
			if pred == nil || its == nil {
				continue
			}
			fw := FilterWhatIf{Step: s.ID, Items: len(its), Flips: []Flip{}}
			now := make([]steps.Item, len(its))
			for i, it := range its {
				was, _ := steps.VerdictOf(it, s.ID)
				v, err := steps.Judge(it, pred, ov)
				if err != nil {
					return nil, fmt.Errorf("step %s: %w", s.ID, err)
				}
				if v.Override != "" {
					fw.Overridden++
				}
				if was.Approved {
					fw.ApprovedBefore++
				}
				if v.Approved {
					fw.ApprovedAfter++
				}
				if v.Approved != was.Approved {
					why := v.Why()
					if why == "" { // approved by its scores: say what had failed
						why = was.Reason
					}
					fw.Flips = append(fw.Flips, Flip{Path: it.Path, SHA256: it.SHA256, Approved: v.Approved, Why: why})
				}
				if now[i], err = it.With(s.ID, v.Fields()); err != nil {
					return nil, fmt.Errorf("step %s: %w", s.ID, err)
				}
			}
			items[s.ID] = now
			if m, ok := out.(map[string]any); ok && len(its) > 0 {
				m = maps.Clone(m)
				m["approved_rate"] = float64(fw.ApprovedAfter) / float64(len(its))
				outputs[s.ID] = m
			}
			res.Filters = append(res.Filters, fw)
		case "scorecard":
			lists := make([][]steps.Item, 0, len(s.Needs))
			for _, id := range s.Needs {
				its, ok := items[id]
				if !ok {
					its = r.items[id]
				}
				lists = append(lists, its)
			}
			its := steps.MergeItems(lists...)
			if len(its) == 0 {
				continue
			}
			weights, _ := p.Policy.Get("scorecard.weights")
			grades, _ := p.Policy.Get("scorecard.grades")
			g, err := steps.Grade(its, weights, grades)
			if err != nil {
				return nil, fmt.Errorf("step %s: %w", s.ID, err)
			}
			m, _ := out.(map[string]any)
			before, _ := m["grade"].(string)
			cb, _ := m["composite"].(float64)
			composite := math.Round(g.Composite*1e4) / 1e4
			res.Scorecards = append(res.Scorecards, GradeWhatIf{Step: s.ID, GradeBefore: before, GradeAfter: g.Grade,
				CompositeBefore: cb, CompositeAfter: composite})
			m = maps.Clone(m)
			m["grade"], m["composite"] = g.Grade, composite
			outputs[s.ID] = m
		}
		if sr := recs[s.ID]; s.Gate != nil && sr != nil && sr.Gate != nil {
			g, err := replayBool(s, s.Gate, sr.Gate.Value, env, outputs, outputs[s.ID])
			if err != nil {
				return nil, fmt.Errorf("step %s: gate: %w", s.ID, err)
			}
			res.Gates = append(res.Gates, g)
		}
	}
	return res, nil
}

// replayBool evaluates a step's gate or when on the replayed outputs of
// the steps it reads (and, for a gate, its own) and pairs it with the
// recorded value.
func replayBool(s *Step, x *Expr, before bool, env Env, outputs map[string]any, own any) (GateWhatIf, error) {
	env.Outputs = own
	if len(s.refs) > 0 {
		env.Steps = map[string]any{}
		for _, id := range s.refs {
			env.Steps[id] = map[string]any{"outputs": outputs[id]}
		}
	}
	ev, err := evalBool(x, &env)
	if err != nil {
		return GateWhatIf{}, err
	}
	return GateWhatIf{Step: s.ID, Before: before, After: ev.Value, Explain: explainEval(ev)}, nil
}
