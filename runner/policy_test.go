package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestPolicyPrecedence(t *testing.T) {
	root := testdir.New(t)
	os.MkdirAll(filepath.Join(root, "policies"), 0o777)
	os.WriteFile(filepath.Join(root, "policies/thresholds.yaml"), []byte("face:\n  min_similarity: 0.7\n  max_distance: 0.5\nextra:\n  n: 1\n"), 0o666)

	p, err := LoadPolicy(root, DefaultPolicyFile, false, []string{"face.max_distance=0.4", "scorecard.promote_grades=[A]"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"face.min_similarity", 0.7},             // file over default
		{"face.max_distance", 0.4},               // --set over file
		{"skin.min_realism", 0.5},                // default
		{"extra.n", 1},                           // user section
		{"scorecard.promote_grades", []any{"A"}}, // typed list from --set
		{"scorecard.grades.A", 0.85},             // nested default
	} {
		got, ok := p.Get(tc.path)
		if !ok || stringify(got) != stringify(tc.want) {
			t.Errorf("%s = %v (found %v), want %v", tc.path, got, ok, tc.want)
		}
	}
	out, _ := p.YAML(true)
	for _, want := range []string{
		"min_similarity: 0.7 # policies/thresholds.yaml:2",
		"max_distance: 0.4 # --set",
		"min_realism: 0.5 # default",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("policy show --origin lacks %q:\n%s", want, out)
		}
	}
	// The digest depends on values, not on where they came from.
	q, _ := LoadPolicy(root, DefaultPolicyFile, false, []string{"face.max_distance=0.4", "scorecard.promote_grades=[A]"})
	if p.Digest() != q.Digest() {
		t.Errorf("same policy, different digests")
	}
	r, _ := LoadPolicy(root, DefaultPolicyFile, false, nil)
	if p.Digest() == r.Digest() {
		t.Errorf("different policies, same digest")
	}
}

func TestPolicyErrors(t *testing.T) {
	root := testdir.New(t)
	write := func(s string) {
		os.MkdirAll(filepath.Join(root, "policies"), 0o777)
		os.WriteFile(filepath.Join(root, "policies/thresholds.yaml"), []byte(s), 0o666)
	}
	for _, tc := range []struct {
		file string
		sets []string
		err  string
	}{
		{"face:\n  min_similarity: high\n", nil, "policies/thresholds.yaml:2:19: policy key face.min_similarity: expected a number, got a string"},
		{"face: 3\n", nil, "policies/thresholds.yaml:1:7: policy key face: expected a section"},
		{"scorecard:\n  promote_grades: A\n", nil, "expected a list, got a string"},
		{"[1, 2]\n", nil, "policy must be a mapping of sections"},
		{"face: {\n", nil, "invalid YAML"},
		{"", []string{"face.min_similarity=true"}, "expected a number, got a boolean"},
		{"", []string{"face.nope=1"}, "unknown policy key face.nope"},
		{"", []string{"skin.min_realism.deeper=1"}, "skin.min_realism is a number, not a section"},
	} {
		write(tc.file)
		_, err := LoadPolicy(root, DefaultPolicyFile, false, tc.sets)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("file %q sets %v: err = %v, want %q", tc.file, tc.sets, err, tc.err)
		}
	}
}
