package steps

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/manifest"
)

// Step is a configured step: a params struct decoded from `with:`.
type Step interface {
	// Run does the work. It is called at most once per Step value, from one
	// goroutine; different Steps run concurrently. It must return when ctx
	// is cancelled, with ctx's error.
	Run(ctx context.Context, env *Env) (Outputs, error)
	// Deps describes what the step reads and writes. up holds the outputs
	// of the step's needs by step id once they are known, and is nil at
	// validation: only Writes may depend on it (a report writes beside
	// its filter's output).
	Deps(up map[string]Outputs) Deps
}

// Deps is everything the engine needs to know about a configured step to
// key, restore and clean up after it, in one place, as buildkit's CacheMap
// is for an op. What it names is part of the step's cache key; what it
// leaves out is not.
type Deps struct {
	// Items says the step takes its needs' items (Env.Items), merged by
	// content digest; their digests are part of the key.
	Items bool
	// Upstream says the step reads its needs' outputs (Env.Upstream);
	// their output ids are part of the key.
	Upstream bool
	// Volatile says the result cannot be predicted from params and files
	// (a health check, a command with undeclared inputs): the step always
	// runs and is never cached.
	Volatile bool
	// Policy are the dotted policy paths the step reads directly
	// (Env.Policy): a scorecard's grades. Their values are part of the key;
	// other policy edits leave the step cached.
	Policy []string
	// Reads are workspace-relative globs of the files the step reads
	// (doublestar syntax; a directory stands for the files below it). Every
	// matching file's name and content digest is part of the key.
	Reads []string
	// Writes are the workspace-relative files and directories the step
	// writes. lifeos owns them: it stores them after a success, makes them
	// identical to the stored tree on a hit (extra files removed), and
	// moves them to .lifeos/failed/ after a failure or interruption, so a
	// partial output never looks complete.
	Writes []string
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
	// for steps whose Deps say Items.
	Items []Item
	// Cache keeps per-item results across runs (one score per image and
	// scorer settings). It is nil when caching is off.
	Cache ItemCache
	// Predicates are the step's per-item expressions (params tagged
	// `lifeos:"item-expr"`), compiled by the engine, by param name.
	Predicates map[string]Predicate
	// Policy holds the policy values the step declared in Deps.Policy,
	// by dotted path (and only those: they are its key material).
	Policy map[string]any
	// Upstream holds the outputs of the step's needs, by step id, for
	// steps whose Deps say Upstream: those of at most 1 KB each as JSON
	// (summaries, settings, counts); items come through Items.
	Upstream map[string]Outputs
	// Hash returns a file's SHA-256 through the engine's stat cache, so
	// unchanged files are not read again, and lends a file it has to read
	// to look. Safe for concurrent use.
	Hash manifest.Hasher
	// Progress, when not nil, is told how far a long step is ("image", 12,
	// 20); the engine shows it. Safe for concurrent use.
	Progress func(unit string, done, total int)
	// GPU, when not nil, is told the seconds a server spent executing the
	// step's work (by the server's own clock), for the cost log. Safe for
	// concurrent use.
	GPU func(server string, seconds float64)
	// AppendJSONLine appends v as a JSON line to the workspace file rel
	// (an eval history), durably; nil appends directly. The engine keeps
	// the line, so that a run carried out elsewhere replays it where it
	// was submitted.
	AppendJSONLine func(rel string, v any) error
	// RunPipeline runs another pipeline file with params, in the same
	// workspace and cache, and returns its outputs (for the pipeline step).
	RunPipeline func(ctx context.Context, file string, params map[string]any) (Outputs, error)
	// Incomplete is set by a step whose result holds items it could not
	// finish (an image a scorer could not read, filed for the filter to
	// reject): the run uses the result, the cache does not keep it, so the
	// next run tries those items again (the rest come from the per-item
	// cache).
	Incomplete bool
	// Run describes the run, for records a step appends (eval history).
	// It is not part of the cache key: a step must not put it in outputs.
	Run RunInfo
	// Share, when set, asks a Sharer for one share of its work, on one of
	// several machines at once; the step sets Share.Total.
	Share *Share
}

// A Sharer is a step whose work splits into units several machines can
// do at once: comfyui.generate's images. Run with Env.Share, it does only
// the units From to To of its work, keeping each in its per-item cache,
// where the whole step, run afterwards, finds them all; the share's own
// outputs are not the step's (it sets Env.Incomplete, so they are not
// cached).
type Sharer interface {
	// ShareUnit names the units ("images").
	ShareUnit() string
}

// Share is one share of a Sharer's work: units From to To (exclusive).
type Share struct {
	From, To int
	// Total is how many units the whole step has, set by the step.
	Total int
}

// Sum returns a file's SHA-256 (hex) through env.Hash when the engine
// gave one (unchanged files are not read again).
func (env *Env) Sum(abs string) (string, error) {
	hash := manifest.HashFile
	if env.Hash != nil {
		hash = env.Hash
	}
	sum, err := hash(abs, nil)
	return sum.SHA256, err
}

// gpu reports to env.GPU when there is one.
func (env *Env) gpu(server string, seconds float64) {
	if env.GPU != nil {
		env.GPU(server, seconds)
	}
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

// ItemCache stores small results by key, across runs and pipelines. Keys
// must contain everything the result depends on (the image digest, the
// scorer and its settings, a version); the engine salts and hashes them.
// Implementations are safe for concurrent use; a damaged entry is a miss.
type ItemCache interface {
	Get(key string) ([]byte, bool)
	// Put stores one result at once: for results a crash must not lose
	// one by one (a generated image).
	Put(key string, data []byte) error
	// PutBatch stores the results of a batch together (one file for a
	// thousand scores): for results that are cheap to compute again.
	PutBatch(keys []string, data [][]byte) error
}

// ItemPrefetcher is an ItemCache that can look many keys up at once: one
// with a shared store behind it, where one lookup after another would
// wait on the network for each. Steps call prefetch before their loop of
// Gets.
type ItemPrefetcher interface {
	Prefetch(keys []string)
}

// prefetch tells the cache, if it can use it, which keys are about to be
// read.
func prefetch(c ItemCache, keys []string) {
	if p, ok := c.(ItemPrefetcher); ok && len(keys) > 1 {
		p.Prefetch(keys)
	}
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
	// Streams says the step's log is output a person watches as it comes
	// (a command's stdout and stderr), shown live; other types' logs are
	// details their result line sums up, shown with run -v.
	Streams bool
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

// PartialError is returned by a step that failed part-way but finished
// some of its work (images generated before the server went down). Kept
// are the workspace-relative files that are complete and stay in the
// output; the engine moves the rest of the step's outputs aside.
type PartialError struct {
	Kept []string
	Err  error
}

func (e *PartialError) Error() string { return e.Err.Error() }
func (e *PartialError) Unwrap() error { return e.Err }

// appendJSONLine appends v to the workspace file rel through the engine
// when it is there (Env.AppendJSONLine), directly otherwise.
func (env *Env) appendJSONLine(rel string, v any) error {
	if env.AppendJSONLine != nil {
		return env.AppendJSONLine(rel, v)
	}
	return atomicfile.AppendJSONLine(filepath.Join(env.Root, filepath.FromSlash(rel)), v)
}
