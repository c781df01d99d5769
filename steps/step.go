package steps

import (
	"context"
	"fmt"
	"io"
	"sort"
)

// Step is a configured step: a params struct decoded from `with:`.
type Step interface {
	// Run does the work. It is called at most once per Step value, from one
	// goroutine; different Steps run concurrently. It must return when ctx
	// is cancelled, with ctx's error.
	Run(ctx context.Context, env *Env) (Outputs, error)
}

// Outputs are a step's results, visible to later steps as
// `steps.<id>.outputs`. They are stored as JSON, so a cached run returns
// exactly what a fresh one would after a JSON round trip. A "summary"
// string is shown on the step's progress line.
type Outputs map[string]any

// Env is what a running step receives from the engine.
type Env struct {
	// Root is the workspace root; relative paths in params are relative to it.
	Root string
	// Log receives the step's diagnostic output (its command's stdout and
	// stderr for exec). It is safe to write from several goroutines.
	Log io.Writer
	// StepID is the running step's id: scorers file their metrics under it.
	StepID string
	// Items are the items of the step's needs, merged by content digest,
	// for steps that implement ItemReader.
	Items []Item
	// Cache keeps per-item results across runs (one score per image and
	// scorer settings). It is nil when caching is off.
	Cache ItemCache
	// Predicates are the step's per-item expressions (params tagged
	// `lifeos:"item-expr"`), compiled by the engine, by param name.
	Predicates map[string]Predicate
	// Policy holds the policy values the step declared with PolicyReader,
	// by dotted path (and only those: they are its key material).
	Policy map[string]any
	// Upstream holds the outputs of the step's needs, by step id, for
	// steps that implement UpstreamReader.
	Upstream map[string]Outputs
	// Hash returns a file's SHA-256 (hex) through the engine's stat cache,
	// so unchanged files are not read again. Safe for concurrent use.
	Hash func(abs string) (string, error)
	// Progress, when not nil, is told how far a long step is ("image", 12,
	// 20); the engine shows it. Safe for concurrent use.
	Progress func(unit string, done, total int)
	// RunPipeline runs another pipeline file with params, in the same
	// workspace and cache, and returns its outputs (for the pipeline step).
	RunPipeline func(ctx context.Context, file string, params map[string]any) (Outputs, error)
	// Run describes the run, for records a step appends (eval history).
	// It is not part of the cache key: a step must not put it in outputs.
	Run RunInfo
}

// progress reports to env.Progress when there is one.
func (env *Env) progress(unit string, done, total int) {
	if env.Progress != nil {
		env.Progress(unit, done, total)
	}
}

// RunInfo identifies the run a step belongs to.
type RunInfo struct {
	ID             string
	Started        string // RFC 3339
	Pipeline       string
	PipelineDigest string
	PolicyDigest   string
}

// PolicyReader is implemented by steps that read policy values directly
// (a scorecard's grade boundaries and weights), named by dotted paths.
// Those values are part of the step's cache key; other policy edits leave
// it cached.
type PolicyReader interface {
	PolicySections() []string
}

// ItemCache stores small results by key, across runs and pipelines. Keys
// must contain everything the result depends on (the image digest, the
// scorer and its settings, a version); the engine salts and hashes them.
// Implementations are safe for concurrent use; a damaged entry is a miss.
type ItemCache interface {
	Get(key string) ([]byte, bool)
	Put(key string, data []byte) error
}

// Predicate is a compiled per-item expression such as a filter's approve.
type Predicate interface {
	// Eval evaluates the expression for one item. When it is false, reason
	// names the clause that failed with its values
	// ("item.sharp.sharpness 0.12 >= policy.sharpness.min 0.2").
	Eval(item Item) (ok bool, reason string, err error)
	// Thresholds returns the numbers the expression compares item metrics
	// with, by metric ("sharp.sharpness": 0.2), for reports to mark.
	Thresholds() map[string]float64
}

// UpstreamReader is implemented by steps that read their needs' outputs
// (a report reads the filter's); those outputs are then part of the key.
type UpstreamReader interface {
	ReadsUpstream() bool
}

// ItemReader is implemented by steps that take their needs' items
// (Env.Items); the items are then part of the step's cache key.
type ItemReader interface {
	ReadsItems() bool
}

// Validator is implemented by steps whose params need checks beyond types:
// called after decoding, before Run (at validation time when `with:`
// contains no expressions).
type Validator interface {
	Validate() error
}

// WorkspaceValidator is implemented by steps whose params name files that
// must be checked before anything runs (a workflow to patch): called with
// the workspace root after Validate.
type WorkspaceValidator interface {
	ValidateWorkspace(root string) error
}

// Reader is implemented by steps that read workspace files. Reads returns
// workspace-relative globs (doublestar syntax; a directory stands for the
// files below it); the runner expands them and puts every matching file's
// name and content digest into the cache key.
type Reader interface {
	Reads() []string
}

// Writer is implemented by steps that write workspace files or directories
// (workspace-relative). The runner stores them in the cache after a success,
// restores them on a hit, and removes them after a failure or interruption,
// so a partial output never looks complete (make deletes its target too).
type Writer interface {
	Writes() []string
}

// Volatile is implemented by steps whose result cannot be predicted from
// their params and files (health checks, commands with undeclared inputs):
// when Volatile returns true they always run and are never cached.
type Volatile interface {
	Volatile() bool
}

// Type describes a step type for the registry.
type Type struct {
	// Name is the `uses:` value.
	Name string
	// Version is part of every cache key of this type: bump it when the same
	// params would now give a different result.
	Version int
	// Summary is one line for help and the JSON Schema.
	Summary string
	// New returns a pointer to a zero params struct.
	New func() Step
}

var registry = map[string]*Type{}

// Register adds a step type. It panics on a duplicate name (a programming
// error, as in expr.Function).
func Register(t *Type) {
	if _, dup := registry[t.Name]; dup {
		panic(fmt.Sprintf("steps: type %q registered twice", t.Name))
	}
	registry[t.Name] = t
}

// Lookup returns the step type named name.
func Lookup(name string) (*Type, bool) {
	t, ok := registry[name]
	return t, ok
}

// Names returns the registered type names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
