package runner

import (
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
)

// Pipeline is a decoded, validated pipeline file (schema version 1).
type Pipeline struct {
	File        string // as given, for messages
	Digest      cache.OutputID
	Name        string
	Description string
	PolicyFile  string // workspace-relative
	policyPos   Pos
	policySet   bool // named explicitly (then it must exist)
	Params      []*Param
	Steps       []*Step
	src         []byte
}

// Param is a pipeline parameter with its default, overridable by --param.
type Param struct {
	Name    string
	Default any
	// Env names an environment variable that overrides the default.
	Env string
	// Secret keeps the value out of run records, logs, --json and cache
	// keys (a changed token does not change an image).
	Secret bool
	Pos    Pos
}

// Step is one step of a pipeline.
type Step struct {
	ID          string
	Pos         Pos // of the step's mapping
	Description string
	Uses        string
	Type        *steps.Type
	Needs       []string
	needsPos    []Pos
	When        *Expr
	Foreach     *Foreach
	With        *yaml.Node // nil when absent
	withPos     Pos
	withInvalid bool // reported already: do not check params against nothing
	// templates are the ${{ }} strings in With, by node.
	templates map[*yaml.Node]*Template
	// withText is With re-encoded, for memo fingerprints; see text.
	withOnce sync.Once
	withText string
	// static is the decoded params when With has no expressions.
	static steps.Step
	Gate   *Expr
	// predicates are the per-item expressions among the params, by name.
	predicates map[string]*predicate
	// readsItems is set for step types that take their needs' items.
	readsItems bool
	// refs are the steps whose results the step's expressions read.
	refs            []string
	Retries         int
	Backoff         time.Duration
	Timeout         time.Duration
	Cache           bool
	ContinueOnError bool
	// Cost makes the step's running time billable (GPU time).
	Cost *CostSpec
	// Repeat runs the step again, with iteration 1, 2, ... in scope,
	// until its until expression holds (or Max iterations ran).
	Repeat *Repeat
	// Queue is the task queue of the workers that carry the step out when
	// the run is spread over machines (run --engine temporal): "gpu" for
	// a step that needs the GPU pod. Empty means "default". A local run
	// ignores it.
	Queue string
}

// DefaultQueue is the task queue of a step that names none.
const DefaultQueue = "default"

// Shares reports whether the step's work splits over several machines
// (a steps.Sharer: comfyui.generate's images).
func (s *Step) Shares() bool {
	if s.Type == nil {
		return false
	}
	_, ok := s.Type.New().(steps.Sharer)
	return ok
}

// QueueName is the step's task queue.
func (s *Step) QueueName() string {
	if s.Queue == "" {
		return DefaultQueue
	}
	return s.Queue
}

// Repeat is a step's loop: `repeat: {until: EXPR, max: N, on_max: warn}`.
type Repeat struct {
	Until *Expr
	Max   int
	OnMax string // fail (default) or warn
	Pos   Pos
}

// CostSpec is a step's cost: its elapsed time times an hourly rate, logged
// under an activity.
type CostSpec struct {
	Activity string
	Rate     *float64      // nil: policy.cost.rate_per_hour
	Estimate time.Duration // for the budget check; 0: the activity's past mean
}

// Foreach is a step's fan-out: a list expression or a glob.
type Foreach struct {
	Expr *Expr
	Glob string
	Pos  Pos
}

// Template is a string of `with:` holding ${{ }} expressions. A template
// that is one whole expression keeps the expression's type.
type Template struct {
	Parts []TemplatePart
	Pos   Pos
}

// TemplatePart is literal text or an expression.
type TemplatePart struct {
	Lit  string
	Expr *Expr
}

// withSource returns the step's with: re-encoded: what the memo
// fingerprint digests. Computed on first use: encoding YAML is the slowest
// part of checking a large pipeline, and only memoised steps need it.
func (s *Step) withSource() string {
	s.withOnce.Do(func() {
		if s.With != nil {
			b, _ := yaml.Marshal(s.With)
			s.withText = string(b)
		}
	})
	return s.withText
}

// Whole reports whether the template is a single expression and nothing else.
func (t *Template) Whole() bool { return len(t.Parts) == 1 && t.Parts[0].Expr != nil }

func (p *Pipeline) stepIDs() []string {
	ids := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		ids[i] = s.ID
	}
	return ids
}

func (p *Pipeline) paramNames() []string {
	names := make([]string, len(p.Params))
	for i, pr := range p.Params {
		names[i] = pr.Name
	}
	return names
}
