package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/steps"
)

// runSub runs a pipeline step's file as a run of its own (with its own
// record) in the same workspace and cache; its progress lines are shown
// indented under the step's. On a worker (RunOptions.Share), what the
// sub-run wrote and appended is the element's, so that it travels with the
// step's result: the files its steps declare (el.subWrites) and the lines
// they appended (the cost of its generation, its evaluation).
func (e *engine) runSub(ctx context.Context, el *element, file string, params map[string]any) (steps.Outputs, error) {
	assigns, err := ParamAssignments(params)
	if err != nil {
		return nil, err
	}
	plan, err := Load(e.plan.Root, file, Options{Params: assigns})
	if err != nil {
		return nil, err
	}
	out := &PrefixWriter{w: e.o.Stdout, prefix: "  | "}
	o := RunOptions{Jobs: e.o.Jobs, NoCache: e.o.NoCache, Quiet: e.o.Quiet, Verbose: e.o.Verbose,
		Stdout: out, Stderr: e.o.Stderr, MapState: e.o.MapState, nested: true}
	if e.o.Share {
		o.Cache, o.Scratch, o.Share, o.writes = e.o.Cache, e.o.Scratch, true, &writeSet{}
	}
	rec, err := plan.Run(ctx, o)
	out.Flush()
	if rec == nil {
		return nil, err
	}
	if o.writes != nil {
		el.subWrites = o.writes.list()
		for _, s := range rec.Steps {
			el.appends = append(el.appends, s.appends...)
		}
	}
	byStep := map[string]any{}
	for _, s := range rec.Steps {
		out, err := resolve(s.Outputs)
		if err != nil {
			return nil, fmt.Errorf("%s: step %s: %w", file, s.ID, err)
		}
		byStep[s.ID] = out
	}
	outputs := steps.Outputs{"run_id": rec.ID, "status": rec.Status, "steps": byStep,
		"summary": fmt.Sprintf("%s run %s", rec.Status, rec.ID)}
	return outputs, err
}

// writeSet gathers the declared outputs of a run's elements
// (RunOptions.writes).
type writeSet struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (w *writeSet) add(paths []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paths == nil {
		w.paths = map[string]bool{}
	}
	for _, p := range paths {
		w.paths[p] = true
	}
}

// list returns the paths, sorted, without those inside another.
func (w *writeSet) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, p := range slices.Sorted(maps.Keys(w.paths)) {
		if len(out) > 0 && !hasGlobMeta(out[len(out)-1]) && strings.HasPrefix(p, strings.TrimSuffix(out[len(out)-1], "/")+"/") {
			continue // under a folder already listed
		}
		out = append(out, p)
	}
	return out
}

// ParamAssignments turns param values into --param assignments: strings
// as they are, other values as JSON (which is YAML, so typed as --param
// types it).
func ParamAssignments(params map[string]any) ([]string, error) {
	var out []string
	for name, v := range params {
		if s, ok := v.(string); ok {
			out = append(out, name+"="+s)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("param %s: %w", name, err)
		}
		out = append(out, name+"="+string(b))
	}
	return out, nil
}

// PrefixWriter writes whole lines with a prefix: a step's output in the
// console, a sub-pipeline's, a worker's.
type PrefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

// NewPrefixWriter returns a PrefixWriter to w.
func NewPrefixWriter(w io.Writer, prefix string) *PrefixWriter {
	return &PrefixWriter{w: w, prefix: prefix}
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			p.buf.Write(line) // keep the partial line for later
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, line); err != nil {
			return len(b), err
		}
	}
}

// Flush writes what is left of a last line without a newline.
func (p *PrefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf.Len() > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf.String())
		p.buf.Reset()
	}
}
