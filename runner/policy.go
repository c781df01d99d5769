package runner

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/runner/cache"
)

//go:embed policy_defaults.yaml
var defaultPolicy []byte

// DefaultPolicyFile is the policy a pipeline uses when it names none.
const DefaultPolicyFile = "policies/thresholds.yaml"

// Policy is the merged threshold policy: built-in defaults < policy file <
// --set, with where each value came from.
type Policy struct {
	root *pnode
	// File is the policy file read (workspace-relative), or "" if none.
	File string
}

// pnode is one node of the policy tree. Maps keep their key order (defaults
// first, then keys a file adds) so `policy show` reads like the file.
type pnode struct {
	keys   []string
	kids   map[string]*pnode // nil for a leaf
	val    any               // leaf value: scalar or list
	origin string
}

func (n *pnode) isMap() bool { return n.kids != nil }

// LoadPolicy merges the defaults, the policy file (relative to root; a
// missing file is an error only if required) and --set assignments.
func LoadPolicy(root, file string, required bool, sets []string) (*Policy, error) {
	p := &Policy{root: &pnode{kids: map[string]*pnode{}}}
	if err := p.merge(p.root, defaultPolicyNode(), "", "default", nil); err != nil {
		panic("bad built-in policy: " + err.Error())
	}
	if file != "" {
		src, err := readSource(filepath.Join(root, file))
		switch {
		case errors.Is(err, fs.ErrNotExist) && !required:
		case err != nil:
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				err = fmt.Errorf("%s: %w", file, pe.Err)
			}
			return nil, &PipelineError{Pos: Pos{File: file}, Err: fmt.Errorf("policy: %w", err)}
		default:
			p.File = file
			var doc yaml.Node
			if err := yaml.Unmarshal(src, &doc); err != nil {
				return nil, yamlSyntaxError(file, src, err)
			}
			if len(doc.Content) > 0 {
				top := doc.Content[0]
				if top.Kind != yaml.MappingNode {
					return nil, &PipelineError{Pos: Pos{file, top.Line, top.Column}, Err: errors.New("policy must be a mapping of sections")}
				}
				if err := p.merge(p.root, top, "", "", &fileCtx{name: file, src: src}); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, s := range sets {
		if err := p.set(s); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// defaultPolicyNode is the built-in policy, parsed once (and only read).
var defaultPolicyNode = sync.OnceValue(func() *yaml.Node {
	var def yaml.Node
	if err := yaml.Unmarshal(defaultPolicy, &def); err != nil {
		panic("bad built-in policy: " + err.Error())
	}
	return def.Content[0]
})

// Warm starts, in the background, what loading any pipeline needs: the
// built-in policy parsed (0.2 ms) while the command line is. A process
// that loads no pipeline spends it on another core.
func Warm() { go defaultPolicyNode() }

type fileCtx struct {
	name string
	src  []byte
}

func (f *fileCtx) errorf(n *yaml.Node, format string, args ...any) *PipelineError {
	if f == nil { // the built-in defaults
		return &PipelineError{Err: fmt.Errorf(format, args...)}
	}
	return &PipelineError{Pos: Pos{f.name, n.Line, n.Column}, Err: fmt.Errorf(format, args...), Source: sourceLine(f.src, n.Line)}
}

// merge overlays the YAML mapping n onto dst.
func (p *Policy) merge(dst *pnode, n *yaml.Node, prefix, origin string, f *fileCtx) error {
	// yaml.v3's Node API keeps duplicate keys; a second section of the same
	// name would silently win over the first.
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if first, dup := seen[k.Value]; dup {
			return f.errorf(k, "duplicate policy key %s (first at line %d)", key, first)
		}
		seen[k.Value] = k.Line
		o := origin
		if f != nil {
			o = fmt.Sprintf("%s:%d", f.name, v.Line)
		}
		child, exists := dst.kids[k.Value]
		if !exists {
			child = &pnode{}
			dst.keys = append(dst.keys, k.Value)
			dst.kids[k.Value] = child
		}
		if v.Kind == yaml.MappingNode {
			if exists && !child.isMap() {
				return f.errorf(v, "policy key %s: expected %s, got a mapping", key, kindName(child.val))
			}
			if child.kids == nil {
				child.kids = map[string]*pnode{}
			}
			if child.origin == "" {
				child.origin = o
			}
			if err := p.merge(child, v, key+".", origin, f); err != nil {
				return err
			}
		} else {
			var val any
			if err := v.Decode(&val); err != nil {
				return f.errorf(v, "policy key %s: %v", key, err)
			}
			if exists && !sameKind(child, val) {
				return f.errorf(v, "policy key %s: expected %s, got %s", key, nodeKind(child), kindName(val))
			}
			if err := finite(val); err != nil {
				return f.errorf(v, "policy key %s: %v", key, err)
			}
			child.val = normalize(val)
			child.origin = o
		}
	}
	return nil
}

// set applies one --set key.path=value.
func (p *Policy) set(s string) error {
	path, raw, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return &UsageError{fmt.Errorf("--set %q: expected key.path=value", s)}
	}
	var val any
	if err := yaml.Unmarshal([]byte(raw), &val); err != nil {
		return &UsageError{fmt.Errorf("--set %s: cannot parse value %q: %v", path, raw, err)}
	}
	n := p.root
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		if !n.isMap() {
			return &UsageError{fmt.Errorf("--set %s: %s is %s, not a section", path, strings.Join(segs[:i], "."), nodeKind(n))}
		}
		child, ok := n.kids[seg]
		if !ok {
			return &UsageError{fmt.Errorf("--set %s: unknown policy key %s%s (--set overrides existing keys; add new ones to the policy file)",
				path, strings.Join(segs[:i+1], "."), suggest(seg, n.keys))}
		}
		n = child
	}
	if n.isMap() {
		return &UsageError{fmt.Errorf("--set %s: %s is a section; set one of its keys (%s)", path, path, strings.Join(n.keys, ", "))}
	}
	if !sameKind(n, val) {
		return &UsageError{fmt.Errorf("--set %s=%s: expected %s, got %s", path, raw, nodeKind(n), kindName(val))}
	}
	if err := finite(val); err != nil {
		return &UsageError{fmt.Errorf("--set %s=%s: %v", path, raw, err)}
	}
	n.val = normalize(val)
	n.origin = "--set"
	return nil
}

// sameKind reports whether val may replace n's value: numbers replace
// numbers, lists lists, and so on. A nil (empty) value goes anywhere.
func sameKind(n *pnode, val any) bool {
	if n.isMap() {
		return false
	}
	if n.val == nil || val == nil {
		return true
	}
	return kindName(n.val) == kindName(val)
}

func nodeKind(n *pnode) string {
	if n.isMap() {
		return "a section"
	}
	return kindName(n.val)
}

func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case int, int64, float64, uint64:
		return "a number"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// normalize converts YAML-decoded values to the types expressions and JSON
// agree on: every number a float64 or int, every map map[string]any.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case int64:
		return int(x)
	case uint64:
		return float64(x)
	}
	return v
}

// Map returns the merged policy as nested maps, for expressions. Each call
// returns a fresh copy.
func (p *Policy) Map() map[string]any { return p.root.toMap() }

func (n *pnode) toMap() map[string]any {
	m := make(map[string]any, len(n.keys))
	for _, k := range n.keys {
		c := n.kids[k]
		if c.isMap() {
			m[k] = c.toMap()
		} else {
			m[k] = c.val
		}
	}
	return m
}

// Lookup returns the node at a dotted path, for validation of expressions.
func (p *Policy) lookup(segs []string) (n *pnode, depth int) {
	n = p.root
	for i, s := range segs {
		if !n.isMap() {
			return n, i
		}
		c, ok := n.kids[s]
		if !ok {
			return n, i
		}
		n = c
	}
	return n, len(segs)
}

// Get returns the value at a dotted path (a map for a section).
func (p *Policy) Get(path string) (any, bool) {
	segs := strings.Split(path, ".")
	n, d := p.lookup(segs)
	if d != len(segs) {
		return nil, false
	}
	if n.isMap() {
		return n.toMap(), true
	}
	return n.val, true
}

// Digest is the SHA-256 of the merged policy's canonical JSON: two runs with
// the same effective thresholds have the same digest whatever their origins.
func (p *Policy) Digest() cache.OutputID {
	b, _ := json.Marshal(p.Map()) // encoding/json sorts map keys
	return cache.Sum(b)
}

// YAML renders the merged policy; with origins, every value carries a
// comment saying where it came from.
func (p *Policy) YAML(origins bool) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p.root.node(origins)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (n *pnode) node(origins bool) *yaml.Node {
	if !n.isMap() {
		var v yaml.Node
		v.Encode(n.val)
		if v.Kind == yaml.SequenceNode {
			v.Style = yaml.FlowStyle
		}
		if origins {
			v.LineComment = n.origin
		}
		return &v
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range n.keys {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, n.kids[k].node(origins))
	}
	return m
}

// finite rejects NaN and infinities, anywhere in a value: a threshold of
// .nan makes every comparison false, and .inf makes it meaningless.
func finite(v any) error {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("expected a finite number, got %v", x)
		}
	case []any:
		for _, e := range x {
			if err := finite(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range x {
			if err := finite(e); err != nil {
				return err
			}
		}
	}
	return nil
}
