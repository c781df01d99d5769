package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/evalhist"
	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "compare",
		Version: 3,
		Summary: "compare two evaluations of the eval history; a Markdown report and a promotion recommendation",
		New:     func() Step { return new(Compare) },
	})
}

// Compare compares two evaluations of the eval history (run ids, labels or
// unique substrings) and recommends whether to promote the second; a gate
// typically reads `outputs.promote`.
type Compare struct {
	V1      string `yaml:"v1" doc:"the baseline: run id, label or unique substring (empty for a first version: judged by its grade)"`
	V2      string `yaml:"v2" doc:"the candidate: run id, label or unique substring"`
	History string `yaml:"history" doc:"eval history file (default evals/eval_history.jsonl)"`
	Output  string `yaml:"output" doc:"write the Markdown comparison here"`
}

func (c *Compare) history() string {
	if c.History == "" {
		return DefaultHistory
	}
	return c.History
}

// Validate checks the params.
func (c *Compare) Validate() error {
	if c.V2 == "" {
		return errors.New("compare needs v2: the candidate (and v1: the baseline, unless this is the first version)")
	}
	if c.Output != "" {
		if err := pathglob.Check(c.Output); err != nil {
			return err
		}
	}
	return pathglob.Check(c.history())
}

// Deps reads the history and the comparison settings, and writes the
// report.
func (c *Compare) Deps(map[string]Outputs) Deps {
	d := Deps{Reads: []string{c.history()},
		Policy: []string{"scorecard.tolerance", "scorecard.promote_grades", "scorecard.lower_is_better", "scorecard.promote_requires"}}
	if c.Output != "" {
		d.Writes = []string{c.Output}
	}
	return d
}

// CompareOptions reads the comparison settings of policy.scorecard.
func CompareOptions(sc map[string]any) (evalhist.Options, error) {
	var o evalhist.Options
	o.Tolerance, _ = number(sc["tolerance"])
	strs := func(v any) []string {
		var out []string
		list, _ := v.([]any)
		for _, x := range list {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	o.PromoteGrades = strs(sc["promote_grades"])
	o.LowerIsBetter = strs(sc["lower_is_better"])
	switch req := sc["promote_requires"]; req {
	case nil, "significant", "any":
		o.PromoteRequires, _ = req.(string)
	default:
		return o, fmt.Errorf("policy scorecard.promote_requires: %v: want significant or any", req)
	}
	return o, nil
}

// Run compares.
func (c *Compare) Run(ctx context.Context, env *Env) (Outputs, error) {
	recs, skipped, err := evalhist.Read(filepath.Join(env.Root, filepath.FromSlash(c.history())))
	if err != nil {
		return nil, fmt.Errorf("eval history: %w", err)
	}
	if skipped > 0 {
		fmt.Fprintf(env.Log, "skipped %d unreadable line(s) of %s\n", skipped, c.history())
	}
	r2, err := evalhist.Find(recs, c.V2)
	if err != nil {
		return nil, fmt.Errorf("v2: %w", err)
	}
	var r1 evalhist.Record // no baseline: judged by v2's grade alone
	if c.V1 != "" {
		if r1, err = evalhist.Find(recs, c.V1); err != nil {
			return nil, fmt.Errorf("v1: %w", err)
		}
	}
	opts, err := CompareOptions(map[string]any{
		"tolerance":        env.Policy["scorecard.tolerance"],
		"promote_grades":   env.Policy["scorecard.promote_grades"],
		"lower_is_better":  env.Policy["scorecard.lower_is_better"],
		"promote_requires": env.Policy["scorecard.promote_requires"],
	})
	if err != nil {
		return nil, err
	}
	cmp := evalhist.Compare(r1, r2, opts)
	md := cmp.Markdown()
	if c.Output != "" {
		if err := atomicfile.WriteFile(filepath.Join(env.Root, filepath.FromSlash(c.Output)), []byte(md), 0o666); err != nil {
			return nil, err
		}
	}
	var rows any
	b, _ := json.Marshal(cmp.Rows)
	json.Unmarshal(b, &rows)
	return Outputs{"recommendation": cmp.Recommendation, "promote": cmp.Recommendation == "promote", "reason": cmp.Reason,
		"grade_v1": r1.Grade, "grade_v2": r2.Grade, "composite_v1": r1.Composite, "composite_v2": r2.Composite,
		"headline": cmp.Headline(), "rows": rows,
		"summary": fmt.Sprintf("%s: %s", cmp.Recommendation, cmp.Reason)}, nil
}
