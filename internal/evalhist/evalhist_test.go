package evalhist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestReadSkipsTornLines(t *testing.T) {
	name := filepath.Join(testdir.New(t), "h.jsonl")
	os.WriteFile(name, []byte(`{"run_id":"a","label":"v1","grade":"B"}`+"\n"+`{"run_id":"b",`+"\n"+`{"run_id":"c","label":"v2"}`+"\n"), 0o666)
	recs, skipped, err := Read(name)
	if err != nil || len(recs) != 2 || skipped != 1 || recs[1].RunID != "c" {
		t.Errorf("Read = %+v, %d skipped, %v", recs, skipped, err)
	}
}

func TestFind(t *testing.T) {
	recs := []Record{{RunID: "20261101-aa", Label: "v1"}, {RunID: "20261102-bb", Label: "v2"}, {RunID: "20261103-cc", Label: "v2"}}
	for _, tc := range []struct{ q, want, err string }{
		{"20261101-aa", "20261101-aa", ""},
		{"v2", "20261103-cc", ""}, // the latest with the label
		{"bb", "20261102-bb", ""},
		{"2026", "", "ambiguous"},
		{"zz", "", "no evaluation"},
	} {
		r, err := Find(recs, tc.q)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Find(%q) err = %v, want %q", tc.q, err, tc.err)
			}
			continue
		}
		if err != nil || r.RunID != tc.want {
			t.Errorf("Find(%q) = %s, %v; want %s", tc.q, r.RunID, err, tc.want)
		}
	}
}

func TestCompareVerdicts(t *testing.T) {
	v1 := Record{RunID: "r1", Grade: "C", Composite: 0.7, Metrics: map[string]Aggregate{"face.distance": {Mean: 0.5}, "gone": {Mean: 1}}}
	v2 := Record{Grade: "C", Composite: 0.6, Metrics: map[string]Aggregate{"face.distance": {Mean: 0.4}, "new": {Mean: 1}}}
	c := Compare(v1, v2, Options{Tolerance: 0.01, PromoteGrades: []string{"A", "B", "C"}})
	want := map[string]string{"face.distance": "improved", "gone": "removed", "new": "added", "composite": "regressed"}
	for _, r := range c.Rows {
		if want[r.Metric] != r.Verdict {
			t.Errorf("%s: %s, want %s", r.Metric, r.Verdict, want[r.Metric])
		}
	}
	if c.Recommendation != "hold" || !strings.Contains(c.Reason, "composite regressed by 0.1") {
		t.Errorf("recommendation %s: %s", c.Recommendation, c.Reason)
	}
}

func TestCompareWithoutBaseline(t *testing.T) {
	v2 := Record{RunID: "r2", Label: "v1", Grade: "B", Composite: 0.6, Metrics: map[string]Aggregate{"sharpness": {Mean: 0.8}}}
	c := Compare(Record{}, v2, Options{PromoteGrades: []string{"A", "B"}})
	for _, r := range c.Rows {
		if r.Verdict != "added" || r.V1 != nil {
			t.Errorf("%s: verdict %s, v1 %v; want added with no v1", r.Metric, r.Verdict, r.V1)
		}
	}
	if c.Recommendation != "promote" {
		t.Errorf("recommendation %s: %s; want promote on grade B alone", c.Recommendation, c.Reason)
	}
	if md := c.Markdown(); !strings.Contains(md, "# no baseline vs v1") {
		t.Errorf("markdown does not say there is no baseline:\n%s", md)
	}
	v2.Grade = "C"
	if c := Compare(Record{}, v2, Options{PromoteGrades: []string{"A", "B"}}); c.Recommendation != "hold" {
		t.Errorf("grade C without a baseline: %s, want hold", c.Recommendation)
	}
}
