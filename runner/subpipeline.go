package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/lifeos/lifeos/steps"
)

// runSub runs a pipeline step's file as a run of its own (with its own
// record) in the same workspace and cache; its progress lines are shown
// indented under the step's.
func (e *engine) runSub(ctx context.Context, file string, params map[string]any) (steps.Outputs, error) {
	assigns, err := ParamAssignments(params)
	if err != nil {
		return nil, err
	}
	plan, err := Load(e.plan.Root, file, Options{Params: assigns})
	if err != nil {
		return nil, err
	}
	out := &PrefixWriter{w: e.o.Stdout, prefix: "  | "}
	rec, err := plan.Run(ctx, RunOptions{Jobs: e.o.Jobs, NoCache: e.o.NoCache, Quiet: e.o.Quiet, Verbose: e.o.Verbose,
		Stdout: out, Stderr: e.o.Stderr, nested: true})
	out.Flush()
	if rec == nil {
		return nil, err
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
