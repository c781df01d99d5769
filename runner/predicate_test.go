package runner

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
	"github.com/lifeos/lifeos/steps"
)

// An item is seen by expressions as its JSON reads back, typed fields
// (as a step may hand over) included.
func TestItemValue(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, it := range []steps.Item{
		withFields(t, steps.Item{Path: "a.png", SHA256: sum, Width: 8, Height: 6}, map[string]any{
			"sharp": map[string]any{"sharpness": 0.7}, "tags": []any{"x", 1.0, nil, true}}),
		withFields(t, steps.Item{Path: "b.png", SHA256: sum}, map[string]any{"seed": 7, "sizes": []int{1, 2}, "face": map[string]any{"faces": 1}}),
	} {
		got := itemValue(it)
		data, _ := json.Marshal(it)
		var want any
		json.Unmarshal(data, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", it.Path, got, want)
		}
	}
}

func BenchmarkPredicateEval(b *testing.B) {
	src := `version: 1
steps:
  - id: shots
    uses: images
    with: {from: images}
  - id: keep
    uses: filter
    needs: shots
    with:
      approve: item.sharp.sharpness >= policy.sharpness.min && item.light.clipped_fraction <= 0.05
      output: out
`
	pl, err := parsePipeline("p.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	plan, err := Compile(testdir.New(b), pl, Options{})
	if err != nil {
		b.Fatal(err)
	}
	var p *predicate
	for _, s := range plan.Order {
		if s.ID == "keep" {
			p = s.predicates["approve"]
		}
	}
	bp := &boundPredicate{p: p, env: Env{Policy: plan.Policy.Map()}}
	it := withFields(b, steps.Item{Path: "out/x.png", SHA256: strings.Repeat("ab", 32), Width: 1024, Height: 1024}, map[string]any{
		"sharp": map[string]any{"sharpness": 0.7}, "light": map[string]any{"clipped_fraction": 0.01, "face_luminance": 0.45}})
	for b.Loop() {
		if ok, _, err := bp.Eval(it); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
