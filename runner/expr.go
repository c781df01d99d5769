package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Expr is one compiled expression of a pipeline: a when, gate or foreach, or
// a ${{ }} inside a `with:` string. Every Expr is compiled once, before any
// step runs; a *vm.Program is safe for concurrent use.
type Expr struct {
	Src  string
	Pos  Pos // where Src starts in the pipeline file
	what string
	prog *vm.Program
	// policy lists the policy paths the expression reads, for key lines of
	// expressions evaluated inside a step.
	policy []string
	// refs lists the steps whose results the expression reads.
	refs []string
	// impure is set when the value can differ between runs with the same
	// inputs: it reads run or the clock.
	impure bool
	// local is set when it reads what exists only while a step runs:
	// item, item_index or outputs.
	local bool
	// termProgs are the compiled operands that explain a value (terms),
	// made once: a filter explains every rejected image.
	termsOnce sync.Once
	termProgs []termProg
}

// termProg is one operand of an expression, compiled.
type termProg struct {
	src  string
	prog *vm.Program
}

// static says the expression's value is known before anything runs: it
// reads only params and policy.
func (e *Expr) static() bool { return len(e.refs) == 0 && !e.impure && !e.local }

// Env is the environment expressions are evaluated in. Which names are
// defined where is checked at compile time: item and item_index exist only
// in steps with foreach, outputs only in gates.
type Env struct {
	Params    map[string]any `expr:"params"`
	Policy    map[string]any `expr:"policy"`
	Steps     map[string]any `expr:"steps"`
	Run       map[string]any `expr:"run"`
	Item      any            `expr:"item"`
	ItemIndex int            `expr:"item_index"`
	Outputs   any            `expr:"outputs"`
	// Iteration and Previous are a repeat step's loop: 0, 1, ... and the
	// outputs of the iteration before (nil in the first).
	Iteration int `expr:"iteration"`
	Previous  any `expr:"previous"`
}

type scope int

const (
	scopeStep scope = iota // with, when of a step without foreach; foreach itself
	scopeItem              // with, when of a step with foreach
	scopeGate              // gate
)

var runFields = []string{"id", "started", "pipeline"}

// compiler compiles a pipeline's expressions against its params, policy and
// step graph.
type compiler struct {
	p      *Pipeline
	policy *Policy
	params map[string]any
	byID   map[string]*Step
	root   string
	stack  []string // pipeline files being compiled, outermost first
	errs   ErrorList
}

// compile parses, checks and compiles e for step s. asBool requires a
// boolean result (when, gate).
func (c *compiler) compile(e *Expr, s *Step, sc scope, asBool bool) {
	if e == nil {
		return
	}
	if strings.TrimSpace(e.Src) == "" {
		c.errAt(e, 0, "%s: empty expression", e.what)
		return
	}
	tree, err := parser.Parse(e.Src)
	if err != nil {
		c.exprError(e, err)
		return
	}
	if !c.checkNames(e, tree.Node, s, sc) {
		return
	}
	opts := []expr.Option{expr.Env(Env{})}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(e.Src, opts...)
	if err != nil {
		c.exprError(e, err)
		return
	}
	e.prog = prog
}

func (c *compiler) exprError(e *Expr, err error) {
	var fe *file.Error
	if errors.As(err, &fe) {
		c.errAtLine(e, fe.Line, fe.Column, "%s: %s", e.what, fe.Message)
		return
	}
	c.errAt(e, 0, "%s: %v", e.what, err)
}

// errAt reports an error at byte offset off of the expression's first line.
func (c *compiler) errAt(e *Expr, off int, format string, args ...any) {
	c.errAtLine(e, 1, off, format, args...)
}

func (c *compiler) errAtLine(e *Expr, line, col int, format string, args ...any) {
	p := e.Pos
	if line <= 1 {
		p.Col += col
	} else {
		p.Line += line - 1
		s := sourceLine(c.p.src, p.Line)
		p.Col = len(s) - len(strings.TrimLeft(s, " ")) + col + 1
	}
	c.errs = append(c.errs, &PipelineError{Pos: p, Err: fmt.Errorf(format, args...), Source: sourceLine(c.p.src, p.Line)})
}

// chain returns the identifier at the root of a member chain such as
// policy.face.min and its constant property names, stopping at the first
// non-constant property (policy[x]) or optional access.
func chain(n ast.Node) (root *ast.IdentifierNode, props []*ast.StringNode) {
	for {
		switch m := n.(type) {
		case *ast.MemberNode:
			if s, ok := m.Property.(*ast.StringNode); ok && !m.Optional {
				props = append(props, s)
			} else {
				props = props[:0]
			}
			n = m.Node
		case *ast.ChainNode:
			n = m.Node
		case *ast.IdentifierNode:
			for i, j := 0, len(props)-1; i < j; i, j = i+1, j-1 {
				props[i], props[j] = props[j], props[i]
			}
			return m, props
		default:
			return nil, nil
		}
	}
}

type nodeCollector struct{ nodes []ast.Node }

func (v *nodeCollector) Visit(n *ast.Node) { v.nodes = append(v.nodes, *n) }

// checkNames checks what expr's type checker cannot: keys of params, policy,
// steps and run (maps, whose keys it does not know) and names used outside
// their scope.
func (c *compiler) checkNames(e *Expr, root ast.Node, s *Step, sc scope) bool {
	n0 := len(c.errs)
	var col nodeCollector
	ast.Walk(&root, &col)
	inner := map[ast.Node]bool{}
	for _, n := range col.nodes {
		if m, ok := n.(*ast.MemberNode); ok {
			inner[m.Node] = true
		}
		if m, ok := n.(*ast.ChainNode); ok {
			inner[m.Node] = true
		}
	}
	for _, n := range col.nodes {
		if b, ok := n.(*ast.BuiltinNode); ok && (b.Name == "now" || b.Name == "date") {
			e.impure = true
		}
		if id, ok := n.(*ast.IdentifierNode); ok {
			switch id.Value {
			case "run", "now", "date":
				e.impure = true
			case "item", "item_index":
				e.local = true
				if sc != scopeItem {
					c.errAt(e, id.Location().From, "%s: %s is only defined in a step with foreach", e.what, id.Value)
				}
			case "outputs":
				e.local = true
				if sc != scopeGate {
					c.errAt(e, id.Location().From, "%s: outputs is only defined in gate: and repeat.until: (use steps.<id>.outputs)", e.what)
				}
			case "iteration", "previous":
				e.local = true
				if s == nil || s.Repeat == nil {
					c.errAt(e, id.Location().From, "%s: %s is only defined in a step with repeat:", e.what, id.Value)
				}
			}
		}
		if inner[n] {
			continue
		}
		id, props := chain(n)
		if id == nil {
			continue
		}
		switch id.Value {
		case "params":
			if len(props) > 0 {
				if _, ok := c.params[props[0].Value]; !ok {
					c.errAt(e, props[0].Location().From, "%s: unknown param %s%s", e.what, props[0].Value, suggest(props[0].Value, c.p.paramNames()))
				}
			}
		case "policy":
			c.checkPolicyPath(e, props)
		case "run":
			if len(props) > 0 && !contains(runFields, props[0].Value) {
				c.errAt(e, props[0].Location().From, "%s: unknown field run.%s (run has %s)", e.what, props[0].Value, strings.Join(runFields, ", "))
			}
		case "steps":
			c.checkStepRef(e, props, s)
		}
	}
	return len(c.errs) == n0
}

func (c *compiler) checkPolicyPath(e *Expr, props []*ast.StringNode) {
	segs := make([]string, len(props))
	for i, p := range props {
		segs[i] = p.Value
	}
	n, depth := c.policy.lookup(segs)
	if depth < len(segs) && n.isMap() {
		bad := props[depth]
		path := strings.Join(segs[:depth+1], ".")
		c.errAt(e, bad.Location().From, "%s: unknown policy key %s%s", e.what, path, suggest(bad.Value, n.keys))
		return
	}
	if depth < len(segs) && depth > 0 {
		// A value is not a mapping: policy.gate.min_lines.value with
		// min_lines: 3 would be nil at run time.
		bad := props[depth]
		c.errAt(e, bad.Location().From, "%s: policy.%s is %s, not a mapping: it has no key %s", e.what,
			strings.Join(segs[:depth], "."), nodeKind(n), bad.Value)
		return
	}
	e.policy = append(e.policy, strings.Join(segs, "."))
}

func (c *compiler) checkStepRef(e *Expr, props []*ast.StringNode, s *Step) {
	if len(props) == 0 {
		return
	}
	id := props[0]
	target, ok := c.byID[id.Value]
	if !ok {
		c.errAt(e, id.Location().From, "%s: unknown step %s%s", e.what, id.Value, suggest(id.Value, c.p.stepIDs()))
		return
	}
	if s != nil && (target == s || !c.upstream(s, target)) {
		if target == s {
			c.errAt(e, id.Location().From, "%s: a step cannot read its own result (use outputs in gate:)", e.what)
		} else {
			c.errAt(e, id.Location().From, "%s: steps.%s is not upstream of %s: add it to needs", e.what, id.Value, s.ID)
		}
		return
	}
	if len(props) > 1 && props[1].Value != "outputs" && props[1].Value != "status" {
		c.errAt(e, props[1].Location().From, "%s: steps.%s has outputs and status, not %s%s", e.what, id.Value, props[1].Value, suggest(props[1].Value, []string{"outputs", "status"}))
		return
	}
	if s != nil && !contains(s.refs, id.Value) {
		s.refs = append(s.refs, id.Value)
	}
	if !contains(e.refs, id.Value) {
		e.refs = append(e.refs, id.Value)
	}
}

// upstream reports whether target is reachable from s through needs.
func (c *compiler) upstream(s, target *Step) bool {
	seen := map[*Step]bool{}
	stack := []*Step{s}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, id := range cur.Needs {
			n := c.byID[id]
			if n == target {
				return true
			}
			if n != nil && !seen[n] {
				seen[n] = true
				stack = append(stack, n)
			}
		}
	}
	return false
}

// eval runs a compiled expression. A runtime error (a type the expression
// did not expect) names its operands with their values and kinds.
func (e *Expr) eval(env *Env) (any, error) {
	v, err := expr.Run(e.prog, env)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s: %s: %s%s", e.Pos, e.what, fe.Message, e.operands(env))
		}
		return nil, fmt.Errorf("%s: %s: %w%s", e.Pos, e.what, err, e.operands(env))
	}
	return v, nil
}

// falseConjunct evaluates, of e's parts joined by && (or e itself), those
// that read no step's results, and returns the first that is false: then
// e is false whatever the steps give, and plan can say so. nil when none
// can be decided.
func (e *Expr) falseConjunct(env *Env) *Evaluation {
	tree, err := parser.Parse(e.Src)
	if err != nil {
		return nil
	}
	var parts []ast.Node
	var split func(n ast.Node)
	split = func(n ast.Node) {
		if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
			split(b.Left)
			split(b.Right)
			return
		}
		parts = append(parts, n)
	}
	split(tree.Node)
	for _, p := range parts {
		var col nodeCollector
		ast.Walk(&p, &col)
		readsSteps := false
		for _, n := range col.nodes {
			if id, ok := n.(*ast.IdentifierNode); ok && (id.Value == "steps" || id.Value == "outputs" || id.Value == "item") {
				readsSteps = true
			}
		}
		if readsSteps {
			continue
		}
		src := p.String()
		prog, err := expr.Compile(src, expr.Env(Env{}), expr.AsBool())
		if err != nil {
			continue
		}
		sub := &Expr{Src: src, prog: prog, Pos: e.Pos, what: e.what}
		if ev, err := evalBool(sub, env); err == nil && !ev.Value {
			return ev
		}
	}
	return nil
}

// operands describes e's operands for an error: " (a = 1, a number; ...)",
// with a hint when one is a list where a value was likely meant.
func (e *Expr) operands(env *Env) string {
	var parts []string
	list := false
	for _, t := range e.terms(env) {
		if s, ok := t.Value.(string); ok && strings.HasPrefix(s, "error: ") {
			// The operand itself fails: its message, without expr's
			// source excerpt.
			msg, _, _ := strings.Cut(strings.TrimPrefix(s, "error: "), "\n")
			if i := strings.LastIndex(msg, " ("); i > 0 {
				msg = msg[:i]
			}
			parts = append(parts, fmt.Sprintf("%s fails: %s", t.Expr, msg))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s = %s, %s", t.Expr, formatValue(t.Value), kindName(t.Value)))
		_, isList := t.Value.([]any)
		list = list || isList
	}
	if env.Outputs != nil {
		if l, ok := env.Outputs.([]any); ok && strings.Contains(e.Src, "outputs") {
			parts = append(parts, fmt.Sprintf("outputs is a list of %d here, one per foreach element: outputs[0].x, or all(outputs, .x > 1)", len(l)))
			list = false
		}
	}
	if list {
		parts = append(parts, "a list: index it (x[0]) or use all(), any(), len()")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// terms evaluates the operands of e (member chains, names and calls), so a
// false gate or when can show why: `outputs.grade = "C"`.
func (e *Expr) terms(env *Env) []Term {
	e.termsOnce.Do(e.compileTerms)
	terms := make([]Term, len(e.termProgs))
	for i, t := range e.termProgs {
		v, err := expr.Run(t.prog, env)
		if err != nil {
			v = "error: " + err.Error()
		}
		terms[i] = Term{Expr: t.src, Value: v}
	}
	return terms
}

// compileTerms finds and compiles e's operands, in source order.
func (e *Expr) compileTerms() {
	tree, err := parser.Parse(e.Src)
	if err != nil {
		return
	}
	var col nodeCollector
	ast.Walk(&tree.Node, &col)
	inner := map[ast.Node]bool{}
	for _, n := range col.nodes {
		switch m := n.(type) {
		case *ast.MemberNode:
			inner[m.Node] = true
			inner[m.Property] = true
		case *ast.ChainNode:
			inner[m.Node] = true
		case *ast.CallNode:
			inner[m.Callee] = true
			for _, a := range m.Arguments {
				inner[a] = true
			}
		case *ast.BuiltinNode:
			for _, a := range m.Arguments {
				inner[a] = true
			}
		}
	}
	seen := map[string]bool{}
	type located struct {
		from int
		t    termProg
	}
	var out []located
	for _, n := range col.nodes {
		switch n.(type) {
		case *ast.MemberNode, *ast.IdentifierNode, *ast.CallNode, *ast.BuiltinNode:
		default:
			continue
		}
		if inner[n] {
			continue
		}
		src := n.String()
		if seen[src] {
			continue
		}
		seen[src] = true
		prog, err := expr.Compile(src, expr.Env(Env{}))
		if err != nil {
			continue
		}
		out = append(out, located{n.Location().From, termProg{src, prog}})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].from < out[j].from })
	for _, o := range out {
		e.termProgs = append(e.termProgs, o.t)
	}
}

// parseTemplate splits a `with:` string into literal text and ${{ }}
// expressions; ok is false when the string holds no expression.
func parseTemplate(s string) (parts []TemplatePart, offs []int, err error) {
	rest, base := s, 0
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			if rest != "" {
				parts = append(parts, TemplatePart{Lit: rest})
				offs = append(offs, base)
			}
			return parts, offs, nil
		}
		if i > 0 {
			parts = append(parts, TemplatePart{Lit: rest[:i]})
			offs = append(offs, base)
		}
		j := strings.Index(rest[i+3:], "}}")
		if j < 0 {
			return nil, nil, fmt.Errorf("unterminated ${{ at offset %d: close it with }}", base+i)
		}
		src := rest[i+3 : i+3+j]
		lead := len(src) - len(strings.TrimLeft(src, " \t"))
		parts = append(parts, TemplatePart{Expr: &Expr{Src: strings.TrimSpace(src)}})
		offs = append(offs, base+i+3+lead)
		base += i + 3 + j + 2
		rest = rest[i+3+j+2:]
	}
}

// eval evaluates a template: a whole expression keeps its type; otherwise
// values are formatted into the string.
func (t *Template) eval(env *Env) (any, error) {
	if t.Whole() {
		return t.Parts[0].Expr.eval(env)
	}
	var b strings.Builder
	for _, p := range t.Parts {
		if p.Expr == nil {
			b.WriteString(p.Lit)
			continue
		}
		v, err := p.Expr.eval(env)
		if err != nil {
			return nil, err
		}
		b.WriteString(stringify(v))
	}
	return b.String(), nil
}

// stringify formats a value for interpolation into a string: strings as
// they are, integral numbers without a decimal point, others as JSON.
func stringify(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int, int64, bool:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// formatValue formats a value for messages: strings quoted, long values cut.
func formatValue(v any) string {
	var s string
	if str, ok := v.(string); ok {
		s = strconv.Quote(str)
	} else {
		s = stringify(v)
	}
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
