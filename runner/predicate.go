package runner

import (
	"errors"

	"reflect"

	"github.com/expr-lang/expr"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/steps"
)

// A predicate is a per-item expression among a step's params, such as a
// filter's `approve: item.sharp.sharpness >= policy.sharpness.min`. The
// engine compiles it with the rest of the pipeline (item in scope) and hands
// the step something to evaluate per item; the step never sees expr.
//
// A top-level `a && b && c` is also compiled clause by clause, so that a
// rejection names the clause that failed with its values.
type predicate struct {
	expr    *Expr
	clauses []*Expr
}

// predicateFields returns the yaml names of the params fields tagged
// `lifeos:"item-expr"`.
func predicateFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return out
	}
	names, idx := yamlFields(t)
	for _, name := range names {
		if t.Field(idx[name]).Tag.Get("lifeos") == "item-expr" {
			out[name] = true
		}
	}
	return out
}

// compilePredicate compiles the expression at n as a per-item predicate.
func (c *compiler) compilePredicate(l *loader, s *Step, name string, n *yaml.Node) error {
	what := "step " + s.ID + ": with." + name
	x := l.exprNode(n, what)
	if x == nil {
		errs := l.errs
		l.errs = nil
		return errs.Err()
	}
	before := len(c.errs)
	c.compile(x, s, scopeItem, true)
	if len(c.errs) > before {
		return nil // reported with the compiler's errors
	}
	p := &predicate{expr: x}
	if tree, err := parser.Parse(x.Src); err == nil {
		for _, cl := range conjuncts(tree.Node) {
			cx := &Expr{Src: cl.String(), Pos: x.Pos, what: what}
			c.compile(cx, s, scopeItem, true)
			p.clauses = append(p.clauses, cx)
		}
	}
	if len(c.errs) > before || len(p.clauses) < 2 {
		c.errs = c.errs[:before] // clauses that fail alone are only explanations
		p.clauses = nil
	}
	if s.predicates == nil {
		s.predicates = map[string]*predicate{}
	}
	s.predicates[name] = p
	return nil
}

// conjuncts splits a && b && c into its clauses.
func conjuncts(n ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
		return append(conjuncts(b.Left), conjuncts(b.Right)...)
	}
	return []ast.Node{n}
}

// boundPredicate is a predicate with the step's environment, as a
// steps.Predicate.
type boundPredicate struct {
	p   *predicate
	env Env
}

// Eval implements steps.Predicate.
func (b *boundPredicate) Eval(it steps.Item) (bool, string, error) {
	env := b.env
	env.Item = itemValue(it)
	ev, err := evalBool(b.p.expr, &env)
	if err != nil || ev.Value {
		return err == nil && ev.Value, "", err
	}
	for _, cl := range b.p.clauses {
		if cev, err := evalBool(cl, &env); err == nil && !cev.Value {
			return false, explainEval(cev), nil
		}
	}
	return false, explainEval(ev), nil
}

// itemValue is what `item` is in an expression: the item as its JSON
// reads back (numbers float64, objects map[string]any).
func itemValue(it steps.Item) any {
	m := it.Fields()
	m["path"], m["sha256"], m["width"], m["height"] = it.Path, it.SHA256, float64(it.Width), float64(it.Height)
	return m
}

// Thresholds implements steps.Predicate: every comparison between an item
// metric (item.<step>.<metric>) and a number or policy value.
func (b *boundPredicate) Thresholds() map[string]float64 {
	out := map[string]float64{}
	tree, err := parser.Parse(b.p.expr.Src)
	if err != nil {
		return out
	}
	var col nodeCollector
	ast.Walk(&tree.Node, &col)
	for _, n := range col.nodes {
		bin, ok := n.(*ast.BinaryNode)
		if !ok {
			continue
		}
		switch bin.Operator {
		case ">=", ">", "<=", "<":
		default:
			continue
		}
		for _, pair := range [][2]ast.Node{{bin.Left, bin.Right}, {bin.Right, bin.Left}} {
			root, props := chain(pair[0])
			if root == nil || root.Value != "item" || len(props) != 2 {
				continue
			}
			v, err := evalNode(pair[1], b.env)
			if f, ok := v.(float64); ok && err == nil {
				out[props[0].Value+"."+props[1].Value] = f
			} else if i, ok := v.(int); ok && err == nil {
				out[props[0].Value+"."+props[1].Value] = float64(i)
			}
		}
	}
	return out
}

// evalNode evaluates a sub-expression that does not involve item.
func evalNode(n ast.Node, env Env) (any, error) {
	if root, _ := chain(n); root != nil && root.Value == "item" {
		return nil, errNotConstant
	}
	prog, err := expr.Compile(n.String(), expr.Env(Env{}))
	if err != nil {
		return nil, err
	}
	return expr.Run(prog, env)
}

var errNotConstant = errors.New("depends on the item")

// predicatesFor binds a step's predicates to its environment.
func predicatesFor(s *Step, env Env) map[string]steps.Predicate {
	if len(s.predicates) == 0 {
		return nil
	}
	out := make(map[string]steps.Predicate, len(s.predicates))
	for name, p := range s.predicates {
		out[name] = &boundPredicate{p: p, env: env}
	}
	return out
}
