package steps

import (
	"math"
	"strings"
	"testing"
)

func TestAggregateAndGrade(t *testing.T) {
	var items []Item
	for i, v := range []float64{0.2, 0.4, 0.6, 0.8, 1.0} {
		items = append(items, withFields(t, Item{Path: "x", SHA256: strings.Repeat("a", 63) + string(rune('0'+i))},
			map[string]any{"sharp": map[string]any{"sharpness": v}, "keep": map[string]any{"approved": v >= 0.6, "reason": "x"},
				"lora": map[string]any{"name": "a.safetensors", "strength": 0.8}, "size": map[string]any{"width": 832.0}}))
	}
	m := aggregate(items)
	a := m["sharp.sharpness"]
	// Generation settings (lora.strength, size.width) are not metrics; a
	// yes/no field's mean is the share of yes.
	if a.Mean != 0.6 || a.Min != 0.2 || a.Max != 1 || a.P10 != 0.28 || a.N != 5 || len(m) != 2 {
		t.Errorf("aggregate = %+v (all: %v)", a, m)
	}
	if k := m["keep.approved"]; k.Mean != 0.6 || k.Min != 0 || k.Max != 1 {
		t.Errorf("keep.approved = %+v, want mean 0.6", k)
	}
	weights := map[string]any{"sharp.sharpness": 1.0, "face.similarity": 0.5}
	grades := map[string]any{"A": 0.85, "B": 0.7, "C": 0.55, "D": 0.4}
	means := map[string]float64{"sharp.sharpness": 0.6, "face.distance": 0.3}
	comp, used, equal, ok, err := composite(means, weights)
	if err != nil || !ok || equal || comp != 0.6 || len(used) != 1 {
		t.Errorf("composite = %v %v %v %v %v; want 0.6 over the one weighted metric present", comp, used, equal, ok, err)
	}
	for _, tc := range []struct {
		c    float64
		want string
	}{{0.9, "A"}, {0.85, "A"}, {0.6, "C"}, {0.1, "F"}} {
		if g, _ := letter(tc.c, grades); g != tc.want {
			t.Errorf("letter(%v) = %s, want %s", tc.c, g, tc.want)
		}
	}
	if r, ok := approvedRate(items); !ok || r != 0.6 {
		t.Errorf("approved rate %v %v, want 0.6", r, ok)
	}
	// No weight applies: the 0..1 scores count equally, the distance not.
	comp, used, equal, ok, err = composite(map[string]float64{"sharp.sharpness": 0.6, "skin.realism": 0.8, "face.distance": 0.3},
		map[string]any{"face.similarity": 1.0})
	if err != nil || !ok || !equal || math.Abs(comp-0.7) > 1e-9 || len(used) != 2 {
		t.Errorf("equal weights: composite = %v %v %v %v %v; want 0.7 over sharpness and realism", comp, used, equal, ok, err)
	}
	if _, _, _, ok, _ := composite(map[string]float64{"face.distance": 0.3}, nil); ok {
		t.Error("a distance alone made a composite")
	}
	if _, _, _, _, err := composite(means, map[string]any{"sharp.sharpness": "high"}); err == nil {
		t.Error("a weight that is not a number was accepted")
	}
}
