package runner

import (
	"os"
	"path/filepath"
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
		if err := r.write(dir, filepath.Join(dir, "tmp")); err != nil {
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
	root := t.TempDir()
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
