package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/steps"
)

// Options select the policy, parameters and steps of a run.
type Options struct {
	// PolicyFile overrides the pipeline's policy: (--policy).
	PolicyFile string
	// Sets are --set key.path=value assignments.
	Sets []string
	// Params are --param name=value assignments.
	Params []string
	// Only restricts the plan to these steps and what they need (--only).
	Only []string
	// stack is the pipeline files that include this one (pipeline steps),
	// to detect recursion.
	stack []string
}

// Plan is a pipeline whose every part has been checked: structure, policy,
// params, step graph, expressions and static step params. Nothing can fail
// for a reason visible in the files once a Plan exists.
type Plan struct {
	Root     string
	Pipeline *Pipeline
	Policy   *Policy
	Params   map[string]any
	// Order is the steps to run in a topological order (file order among
	// independent steps), restricted by Options.Only.
	Order []*Step
	byID  map[string]*Step
	// redact hides secret param values (and URL passwords) in what is
	// recorded, logged or hashed.
	redact *redactor
}

// At returns the plan for another workspace holding the same files (a
// snapshot materialised again), restricted to only and what it needs (all
// steps when only is empty): a worker compiles a pipeline once for all the
// steps it carries out. A plan is not changed by running it, so the two
// may run at once.
func (p *Plan) At(root string, only []string) (*Plan, error) {
	order, err := p.order(only)
	if err != nil {
		return nil, err
	}
	q := *p
	q.Root, q.Order = root, order
	return &q, nil
}

// Load reads, checks and compiles the pipeline file (relative to root).
func Load(root, file string, o Options) (*Plan, error) {
	p, err := ReadPipeline(root, file)
	if p == nil || err != nil && !IsInvalid(err) {
		return nil, err
	}
	plan, cerr := Compile(root, p, o)
	if err == nil {
		return plan, cerr
	}
	if cerr != nil && !IsInvalid(cerr) {
		return nil, cerr // a usage error such as --param: report it alone
	}
	// Structural errors and compile errors together, each once.
	all := errorList(err)
	seen := map[string]bool{}
	for _, e := range all {
		seen[e.Error()] = true
	}
	for _, e := range errorList(cerr) {
		if !seen[e.Error()] {
			all = append(all, e)
		}
	}
	sortErrors(all)
	return nil, all.Err()
}

// Compile checks a decoded pipeline against its policy and compiles it.
// Every problem found is returned, sorted by position.
func Compile(root string, p *Pipeline, o Options) (*Plan, error) {
	var errs ErrorList
	add := func(err error) { errs = append(errs, errorList(err)...) }
	params, err := resolveParams(p, o.Params)
	if err != nil {
		return nil, err
	}
	policyFile, required := p.PolicyFile, p.policySet
	if o.PolicyFile != "" {
		policyFile, required = o.PolicyFile, true
	}
	pol, err := LoadPolicy(root, policyFile, required, o.Sets)
	if err != nil {
		var pe *PipelineError
		if errors.As(err, &pe) && pe.Pos.Line == 0 && o.PolicyFile == "" && p.policySet {
			// The file named by policy: is missing: point at that line.
			pe.Pos, pe.Source = p.policyPos, sourceLine(p.src, p.policyPos.Line)
		}
		return nil, err
	}
	plan := &Plan{Root: root, Pipeline: p, Policy: pol, Params: params, byID: map[string]*Step{}}
	plan.redact = newRedactor(p.Params, params)
	for _, s := range p.Steps {
		plan.byID[s.ID] = s
	}
	l := &loader{file: p.File, src: p.src}
	// The graph: unknown needs, then cycles.
	graphOK := true
	for _, s := range p.Steps {
		for i, id := range s.Needs {
			if id == s.ID {
				add(l.errAt(s.needsPos[i], fmt.Errorf("step %s needs itself", s.ID)))
				graphOK = false
			} else if plan.byID[id] == nil {
				add(l.errAt(s.needsPos[i], fmt.Errorf("step %s needs unknown step %s%s", s.ID, id, suggest(id, p.stepIDs()))))
				graphOK = false
			}
		}
	}
	{
		if cyc := findCycle(p.Steps, plan.byID); cyc != nil {
			ids := make([]string, len(cyc))
			for i, s := range cyc {
				ids[i] = s.ID
			}
			add(l.errAt(cyc[0].Pos, fmt.Errorf("dependency cycle: %s", strings.Join(ids, " -> "))))
			graphOK = false
		}
	}
	// Expressions and params.
	c := &compiler{p: p, policy: pol, params: params, byID: plan.byID, root: root, stack: append(o.stack, filepath.Clean(p.File))}
	for _, s := range p.Steps {
		sc := scopeStep
		if s.Foreach != nil {
			sc = scopeItem
			if x := s.Foreach.Expr; x != nil {
				c.compile(x, s, scopeStep, false)
				if x.prog != nil {
					// A constant or a typed value that cannot be a list is
					// known now; a map's value is known only at run time.
					if t := x.prog.Node().Type(); t != nil && t.Kind() != reflect.Interface && t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
						c.errAt(x, 0, "%s: expected a list (or {glob: pattern}), got %s", x.what, t)
					}
				}
			} else if err := pathglob.Check(s.Foreach.Glob); err != nil {
				add(l.errAt(s.Foreach.Pos, fmt.Errorf("step %s: foreach.glob: %w", s.ID, err)))
			}
		}
		c.compile(s.When, s, sc, true)
		c.compile(s.Gate, s, scopeGate, true)
		if s.Repeat != nil {
			c.compile(s.Repeat.Until, s, scopeGate, true)
		}
		if s.Type != nil && !s.withInvalid {
			for _, err := range c.compileWith(l, s, sc) {
				add(err)
			}
		}
	}
	for _, e := range c.errs {
		add(e)
	}
	if graphOK && len(errs) == 0 {
		order, err := plan.order(o.Only)
		if err != nil {
			return nil, err
		}
		plan.Order = order
	}
	sortErrors(errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return plan, nil
}

// compileWith finds and compiles the ${{ }} templates of a step's with: and
// decodes its static part into the step's params struct.
func (c *compiler) compileWith(l *loader, s *Step, sc scope) []error {
	s.templates = map[*yaml.Node]*Template{}
	var errs []error
	predFields := predicateFields(reflect.TypeOf(s.Type.New()).Elem())
	if s.With != nil {
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			switch n.Kind {
			case yaml.MappingNode:
				for i := 1; i < len(n.Content); i += 2 {
					if n == s.With && predFields[n.Content[i-1].Value] {
						if err := c.compilePredicate(l, s, n.Content[i-1].Value, n.Content[i]); err != nil {
							errs = append(errs, err)
						}
						continue
					}
					walk(n.Content[i])
				}
			case yaml.SequenceNode:
				for _, e := range n.Content {
					walk(e)
				}
			case yaml.ScalarNode:
				if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "${{") {
					return
				}
				parts, offs, err := parseTemplate(n.Value)
				if err != nil {
					errs = append(errs, l.errAt(l.valuePos(n, 0), fmt.Errorf("step %s: with: %w", s.ID, err)))
					return
				}
				t := &Template{Parts: parts, Pos: l.valuePos(n, 0)}
				for i, part := range parts {
					if part.Expr != nil {
						part.Expr.Pos = l.valuePos(n, offs[i])
						part.Expr.what = "step " + s.ID + ": with"
						c.compile(part.Expr, s, sc, false)
					}
				}
				s.templates[n] = t
			}
		}
		walk(s.With)
	}
	d := &withDecoder{file: l.file, src: l.src, templates: s.templates}
	params := s.Type.New()
	s.readsItems = params.Deps(nil).Items
	if s.With != nil {
		if err := d.decode(s.With, reflect.ValueOf(params), "with"); err != nil {
			return append(errs, prefixStep(s, err))
		}
	}
	if !d.dynamic {
		if err := validateParams(params, c.root); err != nil {
			pos := s.withPos
			if s.With == nil {
				pos = s.Pos
			}
			return append(errs, l.errAt(pos, fmt.Errorf("step %s: with: %w", s.ID, err)))
		}
		if sub, ok := params.(*steps.SubPipeline); ok {
			if err := c.checkSubPipeline(sub.File); err != nil {
				return append(errs, l.errAt(s.withPos, fmt.Errorf("step %s: %w", s.ID, err)))
			}
		}
		s.static = params
	} else if len(errs) == 0 && c.staticTemplates(s) {
		// Every ${{ }} reads only params and policy, known now: check the
		// step with their values (a workflow whose path is a param), as
		// a run would decode it.
		env := &Env{Params: c.params, Policy: c.policy.Map()}
		d := &withDecoder{file: l.file, src: l.src, templates: s.templates, eval: func(t *Template) (any, error) { return t.eval(env) }}
		resolved := s.Type.New()
		if err := d.decode(s.With, reflect.ValueOf(resolved), "with"); err != nil {
			return append(errs, prefixStep(s, err))
		}
		if err := validateParams(resolved, c.root); err != nil {
			return append(errs, l.errAt(s.withPos, fmt.Errorf("step %s: with: %w", s.ID, err)))
		}
	}
	return errs
}

// staticTemplates says every ${{ }} of a step's with: reads only params
// and policy.
func (c *compiler) staticTemplates(s *Step) bool {
	for _, t := range s.templates {
		for _, p := range t.Parts {
			if p.Expr != nil && (p.Expr.prog == nil || !p.Expr.static()) {
				return false
			}
		}
	}
	return true
}

func prefixStep(s *Step, err error) error {
	var pe *PipelineError
	if errors.As(err, &pe) {
		pe.Err = fmt.Errorf("step %s: %w", s.ID, pe.Err)
		return pe
	}
	return fmt.Errorf("step %s: %w", s.ID, err)
}

// checkSubPipeline validates a pipeline step's file, refusing recursion.
func (c *compiler) checkSubPipeline(file string) error {
	file = filepath.Clean(file)
	for i, f := range c.stack {
		if f == file {
			return fmt.Errorf("pipeline recursion: %s -> %s", strings.Join(c.stack[i:], " -> "), file)
		}
	}
	p, err := ReadPipeline(c.root, file)
	if err == nil {
		_, err = Compile(c.root, p, Options{stack: c.stack})
	}
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", file, err)
	}
	return nil
}

// validateParams runs a step's own checks: Validate, then those that need
// the workspace.
func validateParams(params steps.Step, root string) error {
	if v, ok := params.(steps.Validator); ok {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if v, ok := params.(steps.WorkspaceValidator); ok {
		return v.ValidateWorkspace(root)
	}
	return nil
}

// resolveParams merges --param values over the pipeline's defaults.
func resolveParams(p *Pipeline, assigns []string) (map[string]any, error) {
	params := make(map[string]any, len(p.Params))
	byName := map[string]*Param{}
	for _, pr := range p.Params {
		params[pr.Name] = pr.Default
		byName[pr.Name] = pr
		if pr.Env != "" {
			if raw := os.Getenv(pr.Env); raw != "" {
				v, err := typedParam(pr, raw)
				if err != nil {
					return nil, &UsageError{fmt.Errorf("param %s from $%s: %w", pr.Name, pr.Env, err)}
				}
				params[pr.Name] = v
			}
		}
	}
	for _, a := range assigns {
		name, raw, ok := strings.Cut(a, "=")
		if !ok {
			return nil, &UsageError{fmt.Errorf("--param %q: expected name=value", a)}
		}
		pr, ok := byName[name]
		if !ok {
			return nil, &UsageError{fmt.Errorf("--param %s: %s declares no param %s%s", name, p.File, name, suggest(name, p.paramNames()))}
		}
		v, err := typedParam(pr, raw)
		if err != nil {
			return nil, &UsageError{fmt.Errorf("--param %s=%s: %w", name, raw, err)}
		}
		params[name] = v
	}
	return params, nil
}

// typedParam parses a param's value from text, typed like its default: a
// string param takes the text as given (--param lora=3 is "3").
func typedParam(pr *Param, raw string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Errorf("cannot parse %q: %v", raw, err)
	}
	v = normalize(v)
	switch {
	case pr.Default == nil || v == nil:
	case kindName(pr.Default) == "a string":
		v = raw
	case kindName(pr.Default) != kindName(v):
		return nil, fmt.Errorf("expected %s like the default (%s), got %s", kindName(pr.Default), formatValue(pr.Default), kindName(v))
	}
	return v, nil
}

// findCycle returns a dependency cycle as a path a -> b -> a, or nil.
func findCycle(all []*Step, byID map[string]*Step) []*Step {
	const (
		white = iota
		grey
		black
	)
	color := map[*Step]int{}
	var stack []*Step
	var found []*Step
	var visit func(s *Step) bool
	visit = func(s *Step) bool {
		color[s] = grey
		stack = append(stack, s)
		for _, id := range s.Needs {
			n := byID[id]
			if n == nil {
				continue // reported as an unknown step
			}
			switch color[n] {
			case grey:
				for i, x := range stack {
					if x == n {
						found = append(append([]*Step{}, stack[i:]...), n)
						return true
					}
				}
			case white:
				if visit(n) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[s] = black
		return false
	}
	for _, s := range all {
		if color[s] == white && visit(s) {
			// Report the cycle in the direction data flows: a -> b means b needs a.
			for i, j := 0, len(found)-1; i < j; i, j = i+1, j-1 {
				found[i], found[j] = found[j], found[i]
			}
			return found
		}
	}
	return nil
}

// order returns the steps in topological order, restricted to only (and
// what they need) when given.
func (plan *Plan) order(only []string) ([]*Step, error) {
	want := map[*Step]bool{}
	if len(only) > 0 {
		var mark func(s *Step)
		mark = func(s *Step) {
			if want[s] {
				return
			}
			want[s] = true
			for _, id := range s.Needs {
				mark(plan.byID[id])
			}
		}
		for _, id := range only {
			s := plan.byID[id]
			if s == nil {
				return nil, &UsageError{fmt.Errorf("--only %s: no such step in %s%s", id, plan.Pipeline.File, suggest(id, plan.Pipeline.stepIDs()))}
			}
			mark(s)
		}
	}
	done := map[*Step]bool{}
	var out []*Step
	// Kahn's algorithm, taking steps in file order among the ready ones.
	pending := map[*Step]int{}
	dependents := map[*Step][]*Step{}
	for _, s := range plan.Pipeline.Steps {
		pending[s] = len(s.Needs)
		for _, id := range s.Needs {
			dependents[plan.byID[id]] = append(dependents[plan.byID[id]], s)
		}
	}
	var ready []*Step
	for _, s := range plan.Pipeline.Steps {
		if pending[s] == 0 {
			ready = append(ready, s)
		}
	}
	for len(ready) > 0 {
		s := ready[0]
		ready = ready[1:]
		done[s] = true
		if len(want) == 0 || want[s] {
			out = append(out, s)
		}
		for _, d := range dependents[s] {
			if pending[d]--; pending[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	return out, nil
}
