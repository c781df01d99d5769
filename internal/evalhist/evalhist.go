// Package evalhist reads the eval history that scorecards append to
// (evals/eval_history.jsonl) and compares two evaluations.
package evalhist

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Aggregate is one metric of an evaluation.
type Aggregate struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	P10  float64 `json:"p10"`
	N    int     `json:"n"`
}

// Record is one line of the history.
type Record struct {
	RunID          string               `json:"run_id"`
	Label          string               `json:"label"`
	Timestamp      string               `json:"timestamp"`
	Pipeline       string               `json:"pipeline"`
	PipelineDigest string               `json:"pipeline_digest"`
	PolicyDigest   string               `json:"policy_digest"`
	DatasetDigest  string               `json:"dataset_digest,omitempty"`
	Lora           string               `json:"lora,omitempty"`        // the evaluated LoRA file
	LoraSHA256     string               `json:"lora_sha256,omitempty"` // its content
	Step           string               `json:"step"`
	Count          int                  `json:"count"`
	Metrics        map[string]Aggregate `json:"metrics"`
	Composite      float64              `json:"composite"`
	Grade          string               `json:"grade"`
	ApprovedRate   *float64             `json:"approved_rate,omitempty"`
	// PerImage holds each image's value of the composite and of the
	// weighted metrics, for confidence intervals between versions.
	PerImage map[string][]float64 `json:"per_image,omitempty"`
}

// Read returns the history's records, oldest first. Lines that do not parse
// (a line torn by a crash) are skipped and counted.
func Read(name string) (recs []Record, skipped int, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Record
		if json.Unmarshal([]byte(line), &r) != nil || r.RunID == "" {
			skipped++
			continue
		}
		recs = append(recs, r)
	}
	return recs, skipped, sc.Err()
}

// Find picks the evaluation a user means: a run id, a label (the latest
// with it), or a substring of a run id or label that only one evaluation
// matches. An ambiguous query is an error listing the matches.
func Find(recs []Record, q string) (Record, error) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].RunID == q {
			return recs[i], nil
		}
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Label == q {
			return recs[i], nil
		}
	}
	var matches []Record
	for _, r := range recs {
		if strings.Contains(r.RunID, q) || strings.Contains(r.Label, q) {
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 0:
		return Record{}, fmt.Errorf("no evaluation matches %q", q)
	case 1:
		return matches[0], nil
	}
	var names []string
	for _, m := range matches {
		names = append(names, fmt.Sprintf("%s (%s)", m.RunID, m.Label))
	}
	return Record{}, fmt.Errorf("%q is ambiguous: it matches %s", q, strings.Join(names, ", "))
}

// Row is one metric of a comparison.
type Row struct {
	Metric  string   `json:"metric"`
	V1      *float64 `json:"v1"`
	V2      *float64 `json:"v2"`
	Delta   *float64 `json:"delta"`
	Verdict string   `json:"verdict"` // improved, regressed, unchanged, added, removed
	// With both versions' per-image values: the delta's 95% bootstrap
	// confidence interval, whether it tells the versions apart (better,
	// worse, not distinguishable) and how many images per version would
	// at the observed spread.
	CILow        *float64 `json:"ci_low,omitempty"`
	CIHigh       *float64 `json:"ci_high,omitempty"`
	Significance string   `json:"significance,omitempty"`
	ImagesNeeded int      `json:"images_needed,omitempty"`
}

// Comparison is v2 against v1.
type Comparison struct {
	V1, V2         Record
	Rows           []Row  `json:"rows"`
	Recommendation string `json:"recommendation"` // promote or hold
	Reason         string `json:"reason"`
}

// Options tune a comparison from the policy.
type Options struct {
	Tolerance     float64  // changes smaller than this are "unchanged"
	PromoteGrades []string // grades that may be promoted
	LowerIsBetter []string // metrics where smaller is better
	// PromoteRequires is "significant" (the default): with a baseline, the
	// composite must be better beyond its 95% confidence interval; "any":
	// a better mean will do.
	PromoteRequires string
}

// lowerBetter: distances and clipped fractions are better small.
func (o Options) lowerBetter(metric string) bool {
	for _, m := range o.LowerIsBetter {
		if m == metric {
			return true
		}
	}
	return strings.HasSuffix(metric, "distance") || strings.HasSuffix(metric, "distance_mean") || strings.HasSuffix(metric, "clipped_fraction")
}

// Compare compares the mean of every metric and the composite. A zero v1
// (no run id) means there is no baseline: every metric is "added" and the
// recommendation rests on v2's grade alone.
func Compare(v1, v2 Record, o Options) Comparison {
	c := Comparison{V1: v1, V2: v2}
	names := map[string]bool{}
	for m := range v1.Metrics {
		names[m] = true
	}
	for m := range v2.Metrics {
		names[m] = true
	}
	keys := make([]string, 0, len(names))
	for m := range names {
		keys = append(keys, m)
	}
	sort.Strings(keys)
	keys = append(keys, "composite")
	regressed := 0
	for _, m := range keys {
		var a, b *float64
		if m == "composite" {
			if v1.RunID != "" {
				a = &v1.Composite
			}
			b = &v2.Composite
		} else {
			if x, ok := v1.Metrics[m]; ok {
				a = &x.Mean
			}
			if x, ok := v2.Metrics[m]; ok {
				b = &x.Mean
			}
		}
		r := Row{Metric: m, V1: a, V2: b}
		switch {
		case a == nil:
			r.Verdict = "added"
		case b == nil:
			r.Verdict = "removed"
		default:
			d := math.Round((*b-*a)*1e4) / 1e4
			r.Delta = &d
			better := d > 0
			if o.lowerBetter(m) {
				better = d < 0
			}
			switch {
			case math.Abs(d) <= o.Tolerance:
				r.Verdict = "unchanged"
			case better:
				r.Verdict = "improved"
			default:
				r.Verdict = "regressed"
				regressed++
			}
		}
		if a, b := v1.PerImage[m], v2.PerImage[m]; len(a) > 1 && len(b) > 1 {
			lo, hi := DiffCI(a, b)
			lo, hi = math.Round(lo*1e4)/1e4, math.Round(hi*1e4)/1e4
			r.CILow, r.CIHigh = &lo, &hi
			r.ImagesNeeded = ImagesNeeded(a, b)
			better, worse := lo > 0, hi < 0
			if o.lowerBetter(m) {
				better, worse = worse, better
			}
			switch {
			case better:
				r.Significance = "better"
			case worse:
				r.Significance = "worse"
			default:
				r.Significance = fmt.Sprintf("not distinguishable with %d and %d images", len(a), len(b))
			}
		}
		c.Rows = append(c.Rows, r)
	}
	promotable := false
	for _, g := range o.PromoteGrades {
		promotable = promotable || g == v2.Grade
	}
	last := c.Rows[len(c.Rows)-1] // composite
	significant := o.PromoteRequires != "any"
	switch {
	case !promotable:
		c.Recommendation, c.Reason = "hold", fmt.Sprintf("grade %s is not one of the promotable grades %s", v2.Grade, strings.Join(o.PromoteGrades, ", "))
	case significant && last.Significance != "" && last.Significance != "better":
		c.Recommendation = "hold"
		c.Reason = fmt.Sprintf("the composite's change %+.4f is %s (95%% CI %+.4f..%+.4f)", *last.Delta, last.Significance, *last.CILow, *last.CIHigh)
		if last.ImagesNeeded > 0 {
			c.Reason += fmt.Sprintf("; about %d images per version would tell at this spread", last.ImagesNeeded)
		}
	case last.Verdict == "regressed":
		c.Recommendation, c.Reason = "hold", fmt.Sprintf("the composite regressed by %.4f", -*last.Delta)
	default:
		c.Recommendation = "promote"
		c.Reason = fmt.Sprintf("grade %s, composite %s", v2.Grade, last.Verdict)
		if last.Significance == "better" {
			c.Reason += fmt.Sprintf(" (95%% CI %+.4f..%+.4f)", *last.CILow, *last.CIHigh)
		}
		if regressed > 0 {
			c.Reason += fmt.Sprintf(" (%d metric(s) regressed)", regressed)
		}
	}
	return c
}

// Headline says the candidate's standing in a line, for a title:
// "grade B (composite 0.81, +0.06 vs v3)".
func (c Comparison) Headline() string {
	last := c.Rows[len(c.Rows)-1] // composite
	if last.Delta == nil {
		return fmt.Sprintf("grade %s (composite %.2f, first version)", c.V2.Grade, c.V2.Composite)
	}
	d := fmt.Sprintf("%+.2f", *last.Delta)
	if d == "+0.00" || d == "-0.00" {
		d = fmt.Sprintf("%+.4f", *last.Delta)
	}
	return fmt.Sprintf("grade %s (composite %.2f, %s vs %s)", c.V2.Grade, c.V2.Composite, d, name(c.V1))
}

func fmtNum(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.4f", *p)
}

// Markdown renders the comparison side by side.
func (c Comparison) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s vs %s\n\n", name(c.V1), name(c.V2))
	fmt.Fprintf(&b, "| | v1: %s | v2: %s |\n|---|---|---|\n", name(c.V1), name(c.V2))
	fmt.Fprintf(&b, "| run | %s | %s |\n| date | %s | %s |\n| grade | %s | %s |\n| images | %d | %d |\n",
		c.V1.RunID, c.V2.RunID, c.V1.Timestamp, c.V2.Timestamp, c.V1.Grade, c.V2.Grade, c.V1.Count, c.V2.Count)
	if c.V1.DatasetDigest != "" || c.V2.DatasetDigest != "" {
		fmt.Fprintf(&b, "| dataset | %s | %s |\n", short(c.V1.DatasetDigest), short(c.V2.DatasetDigest))
	}
	if c.V1.LoraSHA256 != "" || c.V2.LoraSHA256 != "" {
		fmt.Fprintf(&b, "| LoRA sha256 | %s | %s |\n", short(c.V1.LoraSHA256), short(c.V2.LoraSHA256))
	}
	b.WriteString("\n| metric (mean) | v1 | v2 | delta | 95% CI | verdict |\n|---|---:|---:|---:|---:|---|\n")
	for _, r := range c.Rows {
		delta, ci := "–", "–"
		if r.Delta != nil {
			delta = fmt.Sprintf("%+.4f", *r.Delta)
		}
		verdict := r.Verdict
		if r.CILow != nil {
			ci = fmt.Sprintf("%+.4f..%+.4f", *r.CILow, *r.CIHigh)
			verdict += ": " + r.Significance
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Metric, fmtNum(r.V1), fmtNum(r.V2), delta, ci, verdict)
	}
	fmt.Fprintf(&b, "\n**Recommendation: %s** — %s.\n", c.Recommendation, c.Reason)
	return b.String()
}

func name(r Record) string {
	if r.RunID == "" {
		return "no baseline"
	}
	if r.Label != "" {
		return r.Label
	}
	return r.RunID
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// ErrEmpty is returned when the history has no evaluation.
var ErrEmpty = errors.New("the eval history is empty: a scorecard step appends to it")
