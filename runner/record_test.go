package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/testdir"
)

func TestRecordRoundTrip(t *testing.T) {
	dir := testdir.New(t)
	for _, steps := range [][]*StepRecord{
		nil,
		{{ID: "a", Uses: "exec", Status: StatusOK, Outputs: map[string]any{"x": "a > b"}}},
		{{ID: "a", Status: StatusCached, Cached: true}, {ID: "b", Status: StatusSkipped, Reason: "when false: x\ny"}},
	} {
		r := &Record{ID: "20261128-010203-abcdef", Pipeline: "p.yaml", Status: StatusOK,
			Started: time.Unix(1_800_000_000, 0).UTC(), Params: map[string]any{"n": 1.0}, Steps: steps}
		f, err := atomicfile.Create(filepath.Join(dir, "run.json"), filepath.Join(dir, "tmp"), 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.write(f, true); err != nil {
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

func TestPruneRuns(t *testing.T) {
	root := testdir.New(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var names []string
	for i := 0; i < 6; i++ {
		// Two runs a day for three days, the oldest 40 days ago.
		day := now.Add(-time.Duration(40-i/2*20) * 24 * time.Hour).Add(time.Duration(i) * time.Minute)
		name := newRunID(day)
		names = append(names, name)
		os.MkdirAll(filepath.Join(RunsDir(root), name, "logs"), 0o777)
	}
	if err := pruneRuns(root, 3, 30*24*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		_, err := os.Stat(filepath.Join(RunsDir(root), name))
		// Old runs beyond the newest three go: here the two from 40 days ago.
		if want := i >= 2; (err == nil) != want {
			t.Errorf("run %d (%s) kept = %v, want %v", i, name, err == nil, want)
		}
	}
}

// compact keeps a record small: large outputs and long element lists go
// through put, the failed elements stay in the record first; without put,
// or when put fails, the record keeps everything.
func TestRecordCompact(t *testing.T) {
	names := make([]any, 3000)
	for i := range names {
		names[i] = fmt.Sprintf("ds/img%05d.png", i)
	}
	var els []*ElementRecord
	for i := range 250 {
		st := StatusOK
		if i%50 == 7 {
			st = StatusFailed
		}
		els = append(els, &ElementRecord{Index: i, Item: i, Status: st})
	}
	r := &Record{ID: "x", redact: &redactor{}, Steps: []*StepRecord{
		{ID: "big", Outputs: map[string]any{"summary": "3000 images", "count": 3000, "items": names}},
		{ID: "small", Outputs: map[string]any{"summary": "ok"}},
		{ID: "each", Elements: els},
	}}
	stored := map[string][]byte{}
	put := func(data []byte) (string, error) {
		id := fmt.Sprintf("obj%d", len(stored))
		stored[id] = data
		return id, nil
	}
	c := r.compact(put)
	big, small, each := c.Steps[0], c.Steps[1], c.Steps[2]
	if big.OutputsObject == "" || !reflect.DeepEqual(big.Outputs, map[string]any{"summary": "3000 images", "count": 3000}) {
		t.Errorf("large outputs: object %q, kept %v", big.OutputsObject, big.Outputs)
	}
	var back map[string]any
	if err := json.Unmarshal(stored[big.OutputsObject], &back); err != nil || len(back["items"].([]any)) != 3000 {
		t.Errorf("stored outputs: %v, %d bytes", err, len(stored[big.OutputsObject]))
	}
	if small.OutputsObject != "" || !reflect.DeepEqual(small.Outputs, r.Steps[1].Outputs) {
		t.Errorf("small outputs moved: %+v", small)
	}
	if each.ElementsObject == "" || len(each.Elements) != recordElementsMax {
		t.Fatalf("elements: object %q, %d kept", each.ElementsObject, len(each.Elements))
	}
	failed := 0
	for i, el := range each.Elements {
		if el.Status == StatusFailed {
			failed++
		}
		if i > 0 && el.Index <= each.Elements[i-1].Index {
			t.Errorf("kept elements out of order at %d", i)
		}
	}
	if failed != 5 {
		t.Errorf("kept %d of the 5 failed elements", failed)
	}
	if r.Steps[0].OutputsObject != "" || len(r.Steps[2].Elements) != 250 {
		t.Error("compact changed the record it was given")
	}
	for _, put := range []func([]byte) (string, error){nil, func([]byte) (string, error) { return "", errors.New("disk full") }} {
		c := r.compact(put)
		if c.Steps[0].OutputsObject != "" || len(c.Steps[0].Outputs.(map[string]any)["items"].([]any)) != 3000 || len(c.Steps[2].Elements) != 250 {
			t.Errorf("no place for the detail: the record must keep it")
		}
	}
}
