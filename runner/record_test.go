package runner

import (
	"reflect"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, steps := range [][]*StepRecord{
		nil,
		{{ID: "a", Uses: "exec", Status: StatusOK, Outputs: map[string]any{"x": "a > b"}}},
		{{ID: "a", Status: StatusCached, Cached: true}, {ID: "b", Status: StatusSkipped, Reason: "when false: x\ny"}},
	} {
		r := &Record{ID: "20261128-010203-abcdef", Pipeline: "p.yaml", Status: StatusOK,
			Started: time.Unix(1_800_000_000, 0).UTC(), Params: map[string]any{"n": 1.0}, Steps: steps}
		if err := r.write(dir); err != nil {
			t.Fatal(err)
		}
		got, err := readRecord(dir)
		if err != nil {
			t.Fatalf("%d steps: %v", len(steps), err)
		}
		if len(steps) == 0 {
			r.Steps = []*StepRecord{}
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}
