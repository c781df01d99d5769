package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAggregateAndGrade(t *testing.T) {
	var items []Item
	for i, v := range []float64{0.2, 0.4, 0.6, 0.8, 1.0} {
		items = append(items, Item{Path: "x", SHA256: strings.Repeat("a", 63) + string(rune('0'+i)),
			Fields: map[string]any{"sharp": map[string]any{"sharpness": v}, "keep": map[string]any{"approved": v >= 0.6, "reason": "x"}}})
	}
	m := aggregate(items)
	a := m["sharp.sharpness"]
	if a.Mean != 0.6 || a.Min != 0.2 || a.Max != 1 || a.P10 != 0.28 || a.N != 5 || len(m) != 1 {
		t.Errorf("aggregate = %+v (all: %v)", a, m)
	}
	sc := map[string]any{
		"weights": map[string]any{"sharp.sharpness": 1.0, "face.similarity": 0.5},
		"grades":  map[string]any{"A": 0.85, "B": 0.7, "C": 0.55, "D": 0.4},
	}
	comp, used, err := weighted(m, sc)
	if err != nil || comp != 0.6 || len(used) != 1 {
		t.Errorf("weighted = %v %v %v; want 0.6 over the one metric present", comp, used, err)
	}
	for _, tc := range []struct {
		c    float64
		want string
	}{{0.9, "A"}, {0.85, "A"}, {0.6, "C"}, {0.1, "F"}} {
		if g, _ := letter(tc.c, sc); g != tc.want {
			t.Errorf("letter(%v) = %s, want %s", tc.c, g, tc.want)
		}
	}
	if r, ok := approvedRate(items); !ok || r != 0.6 {
		t.Errorf("approved rate %v %v, want 0.6", r, ok)
	}
	if _, _, err := weighted(m, map[string]any{"weights": map[string]any{"face.similarity": 1.0}}); err == nil || !strings.Contains(err.Error(), "sharp.sharpness") {
		t.Errorf("no usable weight: err = %v", err)
	}
}

func TestAppendJSONLineAfterTornLine(t *testing.T) {
	name := filepath.Join(t.TempDir(), "h.jsonl")
	os.WriteFile(name, []byte(`{"ok":1}`+"\n"+`{"torn":`), 0o666)
	if err := AppendJSONLine(name, map[string]int{"next": 2}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(name)
	want := `{"ok":1}` + "\n" + `{"torn":` + "\n" + `{"next":2}` + "\n"
	if string(b) != want {
		t.Errorf("history:\n%s\nwant:\n%s", b, want)
	}
}
