package steps

import (
	"fmt"
	"sort"
	"strings"
)

// scoreMetrics are the metric names (after <step id>.) that read as
// scores: 0..1, higher better. With no weight in policy, the composite
// weighs these equally; counts, distances, noise and clipping stay out.
var scoreMetrics = map[string]bool{"similarity": true, "realism": true, "sharpness": true}

// composite is the one weighting rule of lifeos: the weighted mean of
// values (<step id>.<metric>) over the weights of policy.scorecard.weights
// whose metrics are present, renormalised. The scorecard applies it to a
// batch's means, the report to each image. When no weighted metric is
// present it weighs the score metrics present equally, and equal says so;
// with none of those either, ok is false.
func composite(values map[string]float64, weights any) (c float64, used map[string]float64, equal, ok bool, err error) {
	w, _ := weights.(map[string]any)
	used = map[string]float64{}
	var sum, total float64
	for _, name := range sortedKeys(w) {
		wf, isNum := number(w[name])
		if !isNum || wf < 0 {
			return 0, nil, false, false, fmt.Errorf("policy scorecard.weights.%s: want a non-negative number, got %v", name, w[name])
		}
		if v, present := values[name]; present && wf > 0 {
			sum, total = sum+wf*v, total+wf
			used[name] = wf
		}
	}
	if total == 0 {
		equal = true
		for _, name := range sortedKeys(values) {
			if i := strings.LastIndexByte(name, '.'); i >= 0 && scoreMetrics[name[i+1:]] {
				sum, total = sum+values[name], total+1
				used[name] = 1
			}
		}
	}
	if total == 0 {
		return 0, nil, equal, false, nil
	}
	return sum / total, used, equal, true, nil
}

// weightNames lists the metrics of a weight map, for messages.
func weightNames(used map[string]float64) string {
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
