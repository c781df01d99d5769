// Package roc measures how well a metric separates good examples from bad
// ones: the area under the ROC curve, the equal-error threshold, and the
// thresholds that hold the false accept rate to a target. `lifeos
// calibrate` and the evaluation benchmarks share it.
package roc

import (
	"math"
	"sort"
)

// Threshold is an operating point: accept a value when it is at or beyond
// Value (>= for metrics where higher is better, <= otherwise).
type Threshold struct {
	Value float64 `json:"threshold"`
	// TAR is the share of good examples accepted; FAR the share of bad ones.
	TAR float64 `json:"true_accept"`
	FAR float64 `json:"false_accept"`
}

// Result describes a metric's separation of good from bad.
type Result struct {
	Good, Bad int
	// HigherIsBetter says which side of a threshold accepts.
	HigherIsBetter bool `json:"higher_is_better"`
	// AUC is the probability that a random good example scores better
	// than a random bad one (ties count half): 1 separates perfectly, 0.5
	// is chance.
	AUC float64 `json:"auc"`
	// EER is the error rate where false accepts equal false rejects, at
	// the threshold EERAt.
	EER   float64   `json:"eer"`
	EERAt Threshold `json:"eer_at"`
}

// Analyze compares good and bad values. It needs at least one of each.
func Analyze(good, bad []float64, higherIsBetter bool) Result {
	r := Result{Good: len(good), Bad: len(bad), HigherIsBetter: higherIsBetter}
	if len(good) == 0 || len(bad) == 0 {
		return r
	}
	better := func(a, b float64) bool { return a > b }
	if !higherIsBetter {
		better = func(a, b float64) bool { return a < b }
	}
	var wins float64
	for _, g := range good {
		for _, b := range bad {
			switch {
			case better(g, b):
				wins++
			case g == b:
				wins += 0.5
			}
		}
	}
	r.AUC = wins / float64(len(good)*len(bad))
	// The equal-error point: over every candidate threshold, those where
	// the false accept and false reject rates are closest, and of those
	// the middle one, midpoints first (a threshold halfway between the
	// classes, when they separate).
	best := math.Inf(1)
	var ties []Threshold
	for _, t := range candidates(good, bad) {
		p := r.At(good, bad, t)
		gap := math.Abs(p.FAR - (1 - p.TAR))
		switch {
		case gap < best-1e-12:
			best, ties = gap, []Threshold{p}
		case gap <= best+1e-12:
			ties = append(ties, p)
		}
	}
	n := len(ties)
	for i, p := range ties {
		if i > 0 && !isMid(p.Value, good, bad) {
			n = i
			break
		}
	}
	if isMid(ties[0].Value, good, bad) {
		ties = ties[:n]
	}
	r.EERAt = ties[(len(ties)-1)/2]
	r.EER = (r.EERAt.FAR + 1 - r.EERAt.TAR) / 2
	return r
}

// At is the operating point of threshold t.
func (r Result) At(good, bad []float64, t float64) Threshold {
	accept := func(v float64) bool { return v >= t }
	if !r.HigherIsBetter {
		accept = func(v float64) bool { return v <= t }
	}
	p := Threshold{Value: t}
	for _, g := range good {
		if accept(g) {
			p.TAR++
		}
	}
	for _, b := range bad {
		if accept(b) {
			p.FAR++
		}
	}
	p.TAR /= float64(len(good))
	p.FAR /= float64(len(bad))
	return p
}

// AtFAR is the most permissive threshold whose false accept rate is at
// most far: the one that keeps the most good examples while letting
// through no more than that share of bad ones.
func (r Result) AtFAR(good, bad []float64, far float64) Threshold {
	var best Threshold
	found := false
	for _, t := range candidates(good, bad) {
		p := r.At(good, bad, t)
		if p.FAR <= far && (!found || p.TAR > best.TAR || (p.TAR == best.TAR && r.looser(t, best.Value))) {
			best, found = p, true
		}
	}
	return best
}

// looser says threshold a accepts more than b.
func (r Result) looser(a, b float64) bool {
	if r.HigherIsBetter {
		return a < b
	}
	return a > b
}

// candidates are the thresholds worth trying, ascending: the midpoints
// between neighbouring values (a threshold between two examples is what a
// user would write down), then every value seen and one beyond each end.
func candidates(good, bad []float64) []float64 {
	v := append(append([]float64{}, good...), bad...)
	sort.Float64s(v)
	var mids, out []float64
	for i, x := range v {
		if i > 0 && v[i-1] != x {
			mids = append(mids, (v[i-1]+x)/2)
		}
	}
	out = append(append(out, mids...), v[0]-1e-9, v[len(v)-1]+1e-9)
	out = append(out, v...)
	return out
}

// isMid says t is no example's value.
func isMid(t float64, good, bad []float64) bool {
	for _, v := range append(append([]float64{}, good...), bad...) {
		if v == t {
			return false
		}
	}
	return true
}
