package runner

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/jsontext"
	"gopkg.in/yaml.v3"
)

// withDecoder decodes a step's `with:` node into its typed params struct,
// strictly: unknown keys and wrong types are errors at the offending node.
// yaml.v3's own Node.Decode has no strict mode and reports lines only.
//
// ${{ }} strings are evaluated by eval; with eval == nil (validation before
// anything runs) they are skipped and dynamic is set, so the static rest is
// still checked.
type withDecoder struct {
	file      string
	src       []byte
	templates map[*yaml.Node]*Template
	eval      func(*Template) (any, error)
	dynamic   bool
	// at overrides positions while decoding the value of an expression,
	// whose nodes were made at run time.
	at *Pos
}

var durationType = reflect.TypeOf(time.Duration(0))

func (d *withDecoder) errorf(n *yaml.Node, path, format string, args ...any) error {
	p := Pos{d.file, n.Line, n.Column}
	if d.at != nil {
		p = *d.at
	}
	msg := fmt.Sprintf(format, args...)
	if d.at != nil {
		msg += " (from the ${{ }} expression)"
	}
	return &PipelineError{Pos: p, Err: fmt.Errorf("%s: %s", path, msg), Source: sourceLine(d.src, p.Line)}
}

func (d *withDecoder) decode(n *yaml.Node, rv reflect.Value, path string) error {
	n = resolveAlias(n)
	if t, ok := d.templates[n]; ok {
		if d.eval == nil {
			d.dynamic = true
			return nil
		}
		v, err := d.eval(t)
		if err != nil {
			return err
		}
		if s, ok := v.(string); ok && rv.Kind() == reflect.String {
			rv.SetString(s)
			return nil
		}
		var vn yaml.Node
		if err := vn.Encode(v); err != nil {
			return d.errorf(n, path, "cannot use value %s: %v", formatValue(v), err)
		}
		sub := *d
		pos := t.Pos
		sub.at = &pos
		sub.templates = nil
		return sub.decode(&vn, rv, path)
	}
	if rv.Kind() == reflect.Pointer {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			return nil
		}
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		return d.decode(n, rv.Elem(), path)
	}
	if rv.Type() == durationType {
		dur, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			return d.errorf(n, path, "expected a duration such as 90s or 10m, got %s", describeNode(n))
		}
		rv.SetInt(int64(dur))
		return nil
	}
	switch rv.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, rv, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errorf(n, path, "expected a mapping, got %s", describeNode(n))
		}
		if rv.IsNil() {
			rv.Set(reflect.MakeMap(rv.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			elem := reflect.New(rv.Type().Elem()).Elem()
			if err := d.decode(v, elem, path+"."+k.Value); err != nil {
				return err
			}
			rv.SetMapIndex(reflect.ValueOf(k.Value).Convert(rv.Type().Key()), elem)
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return d.errorf(n, path, "expected a list, got %s", describeNode(n))
		}
		s := reflect.MakeSlice(rv.Type(), 0, len(n.Content))
		for i, e := range n.Content {
			elem := reflect.New(rv.Type().Elem()).Elem()
			if err := d.decode(e, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
			if _, ok := d.templates[resolveAlias(e)]; ok && d.eval == nil {
				continue
			}
			s = reflect.Append(s, elem)
		}
		rv.Set(s)
		return nil
	case reflect.Interface:
		v, err := d.generic(n)
		if err != nil {
			return err
		}
		if v != nil {
			rv.Set(reflect.ValueOf(v))
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errorf(n, path, "expected %s, got %s", kindWord(rv.Kind()), describeNode(n))
	}
	tag := n.ShortTag()
	switch rv.Kind() {
	case reflect.String:
		if tag == "!!null" {
			return nil
		}
		rv.SetString(n.Value) // numbers and booleans as written, as yaml.v3 does
		return nil
	case reflect.Bool:
		if tag != "!!bool" {
			return d.errorf(n, path, "expected true or false, got %s", describeNode(n))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		if tag != "!!int" {
			return d.errorf(n, path, "expected an integer, got %s", describeNode(n))
		}
	case reflect.Float64, reflect.Float32:
		if tag != "!!int" && tag != "!!float" {
			return d.errorf(n, path, "expected a number, got %s", describeNode(n))
		}
	}
	if err := n.Decode(rv.Addr().Interface()); err != nil {
		return d.errorf(n, path, "%v", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return nil
}

func kindWord(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "an integer"
	}
}

type fieldIndex struct {
	names []string
	idx   map[string]int
}

var fieldCache sync.Map // reflect.Type -> fieldIndex

// yamlFields maps the yaml tag names of a struct type to field indexes.
func yamlFields(t reflect.Type) (names []string, idx map[string]int) {
	if fi, ok := fieldCache.Load(t); ok {
		return fi.(fieldIndex).names, fi.(fieldIndex).idx
	}
	names, idx = computeFields(t)
	fieldCache.Store(t, fieldIndex{names, idx})
	return names, idx
}

func computeFields(t reflect.Type) (names []string, idx map[string]int) {
	idx = map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
		idx[name] = i
	}
	return names, idx
}

func (d *withDecoder) decodeStruct(n *yaml.Node, rv reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping, got %s", describeNode(n))
	}
	names, idx := yamlFields(rv.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fi, ok := idx[k.Value]
		if !ok {
			return d.errorf(k, path, "unknown key `%s`%s (known: %s)", k.Value, suggest(k.Value, names), strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return d.errorf(k, path, "duplicate key %s", k.Value)
		}
		seen[k.Value] = true
		if err := d.decode(v, rv.Field(fi), path+"."+k.Value); err != nil {
			return err
		}
	}
	return nil
}

// generic converts a node to plain values (map[string]any, []any, scalars),
// evaluating ${{ }} strings. It is the form params are hashed and recorded in.
func (d *withDecoder) generic(n *yaml.Node) (any, error) {
	n = resolveAlias(n)
	if t, ok := d.templates[n]; ok {
		if d.eval == nil {
			d.dynamic = true
			return nil, nil
		}
		return d.eval(t)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := d.generic(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := d.generic(e)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, d.errorf(n, "with", "%v", err)
	}
	return normalize(v), nil
}

// flatten emits the leaves of a resolved with value with their paths
// ("with.lora.strength", "with.run[4]"), so that a key line, and the plan
// reason that quotes it, names exactly the value that changed.
func flatten(prefix string, v any, emit func(path string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			flatten(prefix+"."+k, x[k], emit)
		}
		if len(x) == 0 {
			emit(prefix, x)
		}
	case []any:
		for i, e := range x {
			flatten(prefix+"["+strconv.Itoa(i)+"]", e, emit)
		}
		if len(x) == 0 {
			emit(prefix, x)
		}
	default:
		emit(prefix, v)
	}
}

// jsonText encodes v as compact JSON without HTML escaping, for key lines
// and messages that people read. Scalars take a fast path: they are most of
// the key lines of a large foreach.
func jsonText(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return jsontext.AppendString(nil, x), nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case nil:
		return []byte("null"), nil
	}
	return jsontext.Marshal(v)
}
