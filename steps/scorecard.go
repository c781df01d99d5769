package steps

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lifeos/lifeos/internal/evalhist"
	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "scorecard",
		Version: 1,
		Summary: "aggregate item scores, grade the batch from the policy, append to the eval history",
		New:     func() Step { return new(Scorecard) },
	})
}

// DefaultHistory is where scorecards append their evaluations.
const DefaultHistory = "evals/eval_history.jsonl"

// Scorecard aggregates every numeric metric of its items (mean, min, max,
// 10th percentile), combines them into a weighted composite
// (policy.scorecard.weights), grades it (policy.scorecard.grades) and
// appends the evaluation to the history. Its items pass through unchanged,
// so a filter after it still sees every score.
type Scorecard struct {
	History string `yaml:"history" doc:"eval history file, JSON lines (default evals/eval_history.jsonl)"`
	Label   string `yaml:"label" doc:"a name for this evaluation, e.g. the LoRA version"`
	Dataset string `yaml:"dataset" doc:"the dataset manifest's digest, recorded with the evaluation (e.g. ${{ steps.manifest.outputs.digest }})"`
	Lora    string `yaml:"lora" doc:"the evaluated LoRA file: its SHA-256 is recorded with the evaluation"`
}

// Validate checks the history path.
func (s *Scorecard) Validate() error {
	if s.Lora != "" {
		if err := pathglob.CheckRead(s.Lora); err != nil {
			return fmt.Errorf("lora: %w", err)
		}
	}
	if s.History != "" {
		return pathglob.Check(s.History)
	}
	return nil
}

// Deps: the scorecard takes its needs' items and reads the grades and
// weights of the policy (not promote_grades, which only its gate reads).
// The history it appends to is a log, not an output: a cached scorecard
// appends nothing.
func (s *Scorecard) Deps(map[string]Outputs) Deps {
	d := Deps{Items: true, Policy: []string{"scorecard.grades", "scorecard.weights"}}
	if s.Lora != "" {
		d.Reads = []string{s.Lora}
	}
	return d
}

// Grading is what a scorecard makes of a batch.
type Grading struct {
	Metrics      map[string]Aggregate
	Composite    float64
	Grade        string
	Weights      map[string]float64 // the weights used
	EqualWeights bool               // no weight applied: 0..1 scores weighed equally
}

// Grade aggregates items' metrics and grades them by policy weights
// (scorecard.weights) and grades (scorecard.grades), as the scorecard
// step does: lifeos whatif grades a batch again under an edited policy.
func Grade(items []Item, weights, grades any) (Grading, error) {
	metrics := aggregate(items)
	if len(metrics) == 0 {
		return Grading{}, errors.New("the items carry no scores: put a score step before the scorecard")
	}
	means := make(map[string]float64, len(metrics))
	for name, a := range metrics {
		means[name] = a.Mean
	}
	c, used, equal, ok, err := composite(means, weights)
	if err != nil {
		return Grading{}, err
	}
	if !ok {
		return Grading{}, fmt.Errorf("no metric of the batch (%s) has a weight in policy scorecard.weights, and none is a 0..1 score (similarity, realism, sharpness) to weigh equally", strings.Join(sortedKeys(metrics), ", "))
	}
	grade, err := letter(c, grades)
	if err != nil {
		return Grading{}, err
	}
	return Grading{Metrics: metrics, Composite: c, Grade: grade, Weights: used, EqualWeights: equal}, nil
}

// Aggregate is one metric over a batch, as the eval history stores it.
type Aggregate = evalhist.Aggregate

// Run aggregates, grades and records.
func (s *Scorecard) Run(ctx context.Context, env *Env) (Outputs, error) {
	if len(env.Items) == 0 {
		return nil, errors.New("no items: a scorecard needs scored items from its needs")
	}
	g, err := Grade(env.Items, env.Policy["scorecard.weights"], env.Policy["scorecard.grades"])
	if err != nil {
		return nil, err
	}
	metrics, composite, grade, used, equal := g.Metrics, g.Composite, g.Grade, g.Weights, g.EqualWeights
	if equal {
		fmt.Fprintf(env.Log, "note: no metric of the batch has a weight in policy scorecard.weights; weighing %s equally\n", weightNames(used))
	}
	out := Outputs{"metrics": metrics, "composite": round4(composite), "grade": grade, "count": len(env.Items), "weights": used,
		"equal_weights": equal, "summary": fmt.Sprintf("grade %s (composite %.3f)", grade, composite)}
	if rate, ok := approvedRate(env.Items); ok {
		out["approved_rate"] = round4(rate)
	}
	history := s.History
	if history == "" {
		history = DefaultHistory
	}
	// The line is the Record that history, compare and the compare step read.
	line := evalhist.Record{
		RunID:          env.Run.ID,
		Label:          s.Label,
		Timestamp:      time.Now().UTC().Format(time.RFC3339),
		Pipeline:       env.Run.Pipeline,
		PipelineDigest: env.Run.PipelineDigest,
		PolicyDigest:   env.Run.PolicyDigest,
		DatasetDigest:  s.Dataset,
		Step:           env.StepID,
		Count:          len(env.Items),
		Metrics:        metrics,
		Composite:      round4(composite),
		Grade:          grade,
	}
	if r, ok := out["approved_rate"].(float64); ok {
		line.ApprovedRate = &r
	}
	line.PerImage = perImage(env.Items, used)
	if s.Lora != "" {
		sum, err := env.Sum(pathglob.Abs(env.Root, s.Lora))
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		line.Lora, line.LoraSHA256 = s.Lora, sum
		out["lora_sha256"] = sum
	}
	if err := env.appendJSONLine(history, line); err != nil {
		return nil, fmt.Errorf("eval history: %w", err)
	}
	fmt.Fprintf(env.Log, "grade %s (composite %.4f over %d items); appended to %s\n", grade, composite, len(env.Items), history)
	return out, nil
}

// perImage is each item's value of the weighted metrics and of the
// composite (over the weighted metrics it has), for confidence intervals
// between versions (evalhist.DiffCI).
func perImage(items []Item, weights map[string]float64) map[string][]float64 {
	w := make(map[string]any, len(weights))
	for k, v := range weights {
		w[k] = v
	}
	out := map[string][]float64{}
	for _, it := range items {
		values := map[string]float64{}
		fields := it.Fields()
		for name := range weights {
			step, metric, _ := strings.Cut(name, ".")
			m, _ := fields[step].(map[string]any)
			v, ok := metricValue(m[metric])
			if !ok {
				continue
			}
			values[name] = v
			out[name] = append(out[name], round4(v))
		}
		if c, _, _, ok, err := composite(values, w); ok && err == nil {
			out["composite"] = append(out["composite"], round4(c))
		}
	}
	return out
}

// metricValue is an item field as a metric: a number, or a yes/no as 1 or 0.
func metricValue(x any) (float64, bool) {
	switch x := x.(type) {
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// aggregate collects every numeric field of the form <step>.<metric>,
// leaving out generation settings. A yes/no field counts 1 or 0, so its
// mean is the share of yes: filter.approved is the approved rate.
func aggregate(items []Item) map[string]Aggregate {
	values := map[string][]float64{}
	for _, it := range items {
		for step, v := range it.Fields() {
			m, ok := v.(map[string]any)
			if !ok || slices.Contains(settingFields, step) {
				continue
			}
			for name, x := range m {
				if v, ok := metricValue(x); ok {
					values[step+"."+name] = append(values[step+"."+name], v)
				}
			}
		}
	}
	out := make(map[string]Aggregate, len(values))
	for k, vs := range values {
		sort.Float64s(vs)
		a := Aggregate{Min: vs[0], Max: vs[len(vs)-1], N: len(vs), P10: percentile(vs, 0.10)}
		for _, v := range vs {
			a.Mean += v / float64(len(vs))
		}
		a.Mean, a.P10 = round4(a.Mean), round4(a.P10)
		out[k] = a
	}
	return out
}

// percentile interpolates linearly between closest ranks (numpy's default).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	r := p * float64(len(sorted)-1)
	i := int(math.Floor(r))
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (r-float64(i))*(sorted[i+1]-sorted[i])
}

// letter grades a composite with policy.scorecard.grades: the best grade
// whose lower bound it reaches, F below them all.
func letter(composite float64, policyGrades any) (string, error) {
	grades, _ := policyGrades.(map[string]any)
	best, bestBound := "F", math.Inf(-1)
	for g, b := range grades {
		bound, ok := number(b)
		if !ok {
			return "", fmt.Errorf("policy scorecard.grades.%s: want a number, got %v", g, b)
		}
		if composite >= bound && bound > bestBound {
			best, bestBound = g, bound
		}
	}
	return best, nil
}

// number reads a number that YAML may have given as an integer, or a
// workflow input (float64 from its file, int once patched).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// approvedRate is the share of items a filter approved, when one ran.
func approvedRate(items []Item) (float64, bool) {
	seen, approved := 0, 0
	for _, it := range items {
		if v, _, ok := verdictOf(it.Fields()); ok {
			seen++
			if v.Approved {
				approved++
			}
		}
	}
	if seen == 0 {
		return 0, false
	}
	return float64(approved) / float64(seen), true
}
