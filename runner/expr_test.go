package runner

import (
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// compileOne builds a two-step pipeline whose second step has the given
// when expression, and returns the compile error text ("" for none).
func compileWhen(t *testing.T, when string) string {
	t.Helper()
	src := `version: 1
params:
  count: 3
  labels: [a, b]
steps:
  - id: first
    uses: exec
    with: {run: ["true"]}
  - id: second
    uses: exec
    needs: first
    with: {run: ["true"]}
    when: ` + when + "\n"
	p, err := parsePipeline("p.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	_, err = Compile(testdir.New(t), p, Options{})
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestExprChecks(t *testing.T) {
	for _, tc := range []struct {
		code string
		err  string // substring of the error, "" for none
	}{
		{`params.count > 2`, ""},
		{`len(params.labels) == 2 && "a" in params.labels`, ""},
		{`policy.face.min_similarity < 0.9`, ""},
		{`steps.first.status == "ok"`, ""},
		{`len(steps.first.outputs) == 0`, ""},
		{`run.id != ""`, ""},
		{`policy.face.min_simlarity > 0`, "p.yaml:13:23: step second: when: unknown policy key face.min_simlarity (did you mean `min_similarity`?)"},
		{`policy.fase.min_similarity > 0`, "p.yaml:13:18: step second: when: unknown policy key fase (did you mean `face`?)"},
		{`params.cuont > 0`, "p.yaml:13:18: step second: when: unknown param cuont (did you mean `count`?)"},
		{`steps.frist.status == "ok"`, "p.yaml:13:17: step second: when: unknown step frist (did you mean `first`?)"},
		{`steps.first.output == nil`, "steps.first has outputs and status, not output (did you mean `outputs`?)"},
		{`steps.second.status == "ok"`, "a step cannot read its own result"},
		{`run.user == ""`, "unknown field run.user (run has id, started, pipeline)"},
		{`item == "x"`, "item is only defined in a step with foreach"},
		{`outputs.x`, "outputs is only defined in gate:"},
		{`nonsense > 1`, "p.yaml:13:11: step second: when: unknown name nonsense"},
		{`params.count +`, "p.yaml:13:"},
		{`params.count`, ""}, // any-typed: checked at run time
		{`1 + 1`, "expected bool, but got int"},
	} {
		got := compileWhen(t, tc.code)
		switch {
		case tc.err == "" && got != "":
			t.Errorf("%s: unexpected error %s", tc.code, got)
		case tc.err != "" && !strings.Contains(got, tc.err):
			t.Errorf("%s:\n got: %s\nwant: %s", tc.code, got, tc.err)
		}
	}
}

func TestTemplates(t *testing.T) {
	for _, tc := range []struct {
		in    string
		parts int
		whole bool
		err   string
	}{
		{"plain", 1, false, ""},
		{"${{ params.x }}", 1, true, ""},
		{"a ${{ params.x }} b ${{ params.y }}", 4, false, ""},
		{"${{params.x}}${{params.y}}", 2, false, ""},
		{"${{ params.x", 0, false, "unterminated ${{ at offset 0"},
		{"ok ${{ a }} then ${{ b", 0, false, "unterminated ${{ at offset 17"},
	} {
		parts, _, err := parseTemplate(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(parts) != tc.parts || (&Template{Parts: parts}).Whole() != tc.whole {
			t.Errorf("%q: %d parts, whole %v, err %v; want %d, %v", tc.in, len(parts), (&Template{Parts: parts}).Whole(), err, tc.parts, tc.whole)
		}
	}
}

func TestStringify(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"s", "s"},
		{20.0, "20"},
		{0.75, "0.75"},
		{3, "3"},
		{true, "true"},
		{nil, ""},
		{[]any{"A", "B"}, `["A","B"]`},
		{map[string]any{"a": 1.0}, `{"a":1}`},
	} {
		if got := stringify(tc.in); got != tc.want {
			t.Errorf("stringify(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGateTerms(t *testing.T) {
	src := `version: 1
steps:
  - id: s
    uses: exec
    with: {run: ["true"]}
    gate: outputs.grade in policy.scorecard.promote_grades && len(outputs.items) > 2
`
	p, err := parsePipeline("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(testdir.New(t), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := plan.Pipeline.Steps[0].Gate
	env := &Env{Policy: plan.Policy.Map(), Outputs: map[string]any{"grade": "C", "items": []any{1, 2}}}
	ev, err := evalBool(g, env)
	if err != nil {
		t.Fatal(err)
	}
	got := explainEval(ev)
	want := `outputs.grade in policy.scorecard.promote_grades && len(outputs.items) > 2 (outputs.grade = "C", policy.scorecard.promote_grades = ["A","B"], len(outputs.items) = 2)`
	if got != want {
		t.Errorf("explain:\n got %s\nwant %s", got, want)
	}
}
