package steps

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/lifeos/lifeos/internal/jsontext"
	"github.com/tidwall/gjson"
)

// Item is one image flowing between steps: where it is, its content
// digest and size, and every field upstream steps attached to it, such as
// generation settings (prompt, seed) and scores under the scoring step's id
// (`item.sharp.sharpness`). In JSON, and so in expressions, it is one flat
// object: {"path": ..., "sha256": ..., "width": ..., "height": ..., "<field>": ...}.
//
// Items are values: With and WithFields return a changed copy, and the
// zero Item has no fields.
type Item struct {
	Path   string
	SHA256 string
	Width  int
	Height int
	// fields are the other fields as one JSON object, keys sorted, each
	// value as encoding/json writes it ("" for none). A batch holds
	// 100,000 items; as a map of maps each took 1.2 KB, as its JSON
	// about a tenth of that. Fields are read back as JSON reads them:
	// numbers float64, objects map[string]any, the same whether the item
	// was just made or came from the cache.
	fields string
}

var itemCore = map[string]bool{"path": true, "sha256": true, "width": true, "height": true}

// MarshalJSON writes the item as one flat object (keys sorted).
func (it Item) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(it.Path)+len(it.SHA256)+len(it.fields)+64)
	b = append(b, '{')
	core := [4]struct {
		key string
		val func([]byte) []byte
	}{
		{"height", func(b []byte) []byte { return strconv.AppendInt(b, int64(it.Height), 10) }},
		{"path", func(b []byte) []byte { return jsontext.AppendString(b, it.Path) }},
		{"sha256", func(b []byte) []byte { return jsontext.AppendString(b, it.SHA256) }},
		{"width", func(b []byte) []byte { return strconv.AppendInt(b, int64(it.Width), 10) }},
	}
	next := 0
	writeCore := func(until string, all bool) {
		for ; next < len(core) && (all || core[next].key < until); next++ {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, core[next].key...)
			b = append(b, '"', ':')
			b = core[next].val(b)
		}
	}
	it.eachField(func(k, v gjson.Result) bool {
		writeCore(k.Str, false)
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, k.Raw...)
		b = append(b, ':')
		b = append(b, v.Raw...)
		return true
	})
	writeCore("", true)
	return append(b, '}'), nil
}

// UnmarshalJSON reads the flat object MarshalJSON writes.
func (it *Item) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	return it.fromMap(m)
}

func (it *Item) fromMap(m map[string]any) error {
	path, _ := m["path"].(string)
	sum, _ := m["sha256"].(string)
	if path == "" || len(sum) != 64 {
		return errors.New("an item needs a path and a sha256")
	}
	w, _ := m["width"].(float64)
	h, _ := m["height"].(float64)
	fields, err := encodeFields(m)
	if err != nil {
		return err
	}
	*it = Item{Path: path, SHA256: sum, Width: int(w), Height: int(h), fields: fields}
	return nil
}

// encodeFields is the fields string of m, leaving out the core fields.
func encodeFields(m map[string]any) (string, error) {
	n := 0
	for k := range m {
		if !itemCore[k] {
			n++
		}
	}
	if n == 0 {
		return "", nil
	}
	if n < len(m) {
		rest := make(map[string]any, n)
		for k, v := range m {
			if !itemCore[k] {
				rest[k] = v
			}
		}
		m = rest
	}
	b, err := jsontext.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// eachField calls fn with every field's key and value as JSON, in key
// order, until fn returns false.
func (it Item) eachField(fn func(k, v gjson.Result) bool) {
	if it.fields != "" {
		gjson.Parse(it.fields).ForEach(fn)
	}
}

// Field returns the value of one field, as JSON reads it back.
func (it Item) Field(key string) (any, bool) {
	var v any
	found := false
	it.eachField(func(k, x gjson.Result) bool {
		if k.Str == key {
			v, found = x.Value(), true
		}
		return !found && k.Str < key
	})
	return v, found
}

// Fields returns the item's fields (not path, sha256, width and height)
// as JSON reads them back: a new map, the caller's to change.
func (it Item) Fields() map[string]any {
	m := map[string]any{}
	it.eachField(func(k, v gjson.Result) bool {
		m[k.Str] = v.Value()
		return true
	})
	return m
}

// FieldNames returns the item's field names, sorted.
func (it Item) FieldNames() []string {
	var names []string
	it.eachField(func(k, _ gjson.Result) bool {
		names = append(names, k.Str)
		return true
	})
	return names
}

// ItemsFrom converts the JSON form of a list of items (as outputs and
// expressions hold them: []any of objects) back to Items.
func ItemsFrom(v any) ([]Item, error) {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("items: expected a list, got %T", v)
	}
	items := make([]Item, len(list))
	for i, e := range list {
		var err error
		if items[i], err = ItemFrom(e); err != nil {
			return nil, fmt.Errorf("items[%d]: %w", i, err)
		}
	}
	return items, nil
}

// ItemFrom converts the JSON form of one item (an object) back to an Item.
func ItemFrom(v any) (Item, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Item{}, fmt.Errorf("expected an object, got %T", v)
	}
	var it Item
	err := it.fromMap(m)
	return it, err
}

// ItemFromJSON converts one item's JSON (an object, as MarshalJSON writes
// it) to an Item, as ItemFrom converts it decoded: the same item, the same
// errors. The fields of an item that lifeos wrote are kept as they are
// written instead of being decoded and encoded again (the items of a
// batch are read by every step after the one that made them). Nothing of
// data is kept: it may be a whole step's outputs.
func ItemFromJSON(data string) (Item, error) {
	r := gjson.Parse(data)
	if !r.IsObject() {
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return Item{}, err
		}
		return ItemFrom(v)
	}
	var it Item
	pathOK, sumOK, fast := false, false, true
	var last string
	var stack [256]byte
	fields := append(stack[:0], '{') // the fields, as they go by
	r.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "path":
			it.Path, pathOK = v.Str, v.Type == gjson.String
			fast = fast && (!pathOK || canonicalString(v)) // escapes, bad UTF-8: its rules
		case "sha256":
			it.SHA256, sumOK = v.Str, v.Type == gjson.String
			fast = fast && (!sumOK || canonicalString(v))
		case "width":
			it.Width = int(v.Num)
			fast = fast && (v.Type == gjson.Number || v.Type == gjson.Null)
		case "height":
			it.Height = int(v.Num)
			fast = fast && (v.Type == gjson.Number || v.Type == gjson.Null)
		default:
			// Sorted and as encoding/json writes them, or decoded
			// and encoded again.
			fast = fast && (len(fields) == 1 || k.Str > last) && canonicalString(k) && canonical(v)
			last = k.Str
			if len(fields) > 1 {
				fields = append(fields, ',')
			}
			fields = append(append(append(fields, k.Raw...), ':'), v.Raw...)
		}
		return fast
	})
	if !fast {
		var v any // encoding/json's rules, repeated keys included
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return Item{}, err
		}
		return ItemFrom(v)
	}
	if !pathOK || it.Path == "" || !sumOK || len(it.SHA256) != 64 {
		return Item{}, errors.New("an item needs a path and a sha256")
	}
	it.Path, it.SHA256 = strings.Clone(it.Path), strings.Clone(it.SHA256)
	if len(fields) > 1 {
		it.fields = string(append(fields, '}')) // a copy of its own size
	}
	return it, nil
}

// canonical reports whether v's JSON is what encoding/json (without HTML
// escaping) writes for the value it decodes to: no space, object keys
// sorted, numbers as a float64 formats, strings without escapes. It may
// say no to some that are: those are decoded and encoded again.
func canonical(v gjson.Result) bool {
	switch v.Type {
	case gjson.Null:
		return v.Raw == "null"
	case gjson.True:
		return v.Raw == "true"
	case gjson.False:
		return v.Raw == "false"
	case gjson.String:
		return canonicalString(v)
	case gjson.Number:
		var buf [32]byte
		return !math.IsInf(v.Num, 0) && string(appendFloat(buf[:0], v.Num)) == v.Raw
	}
	// An array or an object: every element canonical, and nothing
	// between them but commas.
	ok, size, n := true, 2, 0
	var last string
	if v.IsArray() {
		v.ForEach(func(_, e gjson.Result) bool {
			ok = canonical(e)
			size += len(e.Raw)
			n++
			return ok
		})
	} else {
		v.ForEach(func(k, e gjson.Result) bool {
			ok = (n == 0 || k.Str > last) && canonicalString(k) && canonical(e)
			last = k.Str
			size += len(k.Raw) + 1 + len(e.Raw)
			n++
			return ok
		})
	}
	if n > 1 {
		size += n - 1
	}
	return ok && size == len(v.Raw)
}

// appendFloat appends f as encoding/json writes a float64 (its
// floatEncoder): shortest form, exponent only outside [1e-6, 1e21).
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-09 is written e-9
		b = b[:n-1]
	}
	return b
}

// canonicalString reports whether a JSON string is written as
// encoding/json writes it: here, without any escape (those that need one,
// and U+2028 and U+2029, which it always escapes, are not).
func canonicalString(s gjson.Result) bool {
	raw := s.Raw
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	raw = raw[1 : len(raw)-1]
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == '\\' || c == '"' {
			return false
		}
	}
	return utf8.ValidString(raw) && !strings.Contains(raw, "\u2028") && !strings.Contains(raw, "\u2029")
}

// With returns a copy of the item with the field set; it fails for a
// value JSON cannot hold (a NaN score, say).
func (it Item) With(key string, v any) (Item, error) {
	if itemCore[key] {
		return Item{}, fmt.Errorf("%s: %q is the item's own field, not one a step sets", it.Path, key)
	}
	val, err := jsontext.Marshal(v)
	if err != nil {
		return Item{}, fmt.Errorf("%s: field %s: %w", it.Path, key, err)
	}
	k, _ := jsontext.Marshal(key) // a string always encodes
	one := make([]byte, 0, len(k)+len(val)+3)
	one = append(append(append(append(append(one, '{'), k...), ':'), val...), '}')
	it.fields = mergeFields(it.fields, unsafe.String(unsafe.SliceData(one), len(one)))
	return it, nil
}

// WithFields returns a copy of the item with every field of m set.
func (it Item) WithFields(m map[string]any) (Item, error) {
	for k := range m {
		if itemCore[k] {
			return Item{}, fmt.Errorf("%s: %q is the item's own field, not one a step sets", it.Path, k)
		}
	}
	add, err := encodeFields(m)
	if err != nil {
		return Item{}, fmt.Errorf("%s: fields: %w", it.Path, err)
	}
	it.fields = mergeFields(it.fields, add)
	return it, nil
}

// mergeFields merges two fields strings, b's value winning for a key in
// both.
func mergeFields(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return strings.Clone(b) // b may live in a caller's buffer
	}
	type pair struct{ k, v gjson.Result }
	var as, bs []pair
	gjson.Parse(a).ForEach(func(k, v gjson.Result) bool { as = append(as, pair{k, v}); return true })
	gjson.Parse(b).ForEach(func(k, v gjson.Result) bool { bs = append(bs, pair{k, v}); return true })
	out := make([]byte, 0, len(a)+len(b))
	out = append(out, '{')
	put := func(p pair) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, p.k.Raw...), ':'), p.v.Raw...)
	}
	i, j := 0, 0
	for i < len(as) || j < len(bs) {
		switch {
		case j == len(bs) || i < len(as) && as[i].k.Str < bs[j].k.Str:
			put(as[i])
			i++
		case i == len(as) || bs[j].k.Str < as[i].k.Str:
			put(bs[j])
			j++
		default: // the same key: b's
			put(bs[j])
			i++
			j++
		}
	}
	return string(append(out, '}'))
}

// MergeItems merges lists of items by content digest, in order of first
// appearance: the same image scored by two steps becomes one item with both
// steps' fields (later lists win on a conflicting field).
func MergeItems(lists ...[]Item) []Item {
	if len(lists) == 1 && distinct(lists[0]) {
		// Nothing to merge: the list itself. Items are values (With
		// copies), so steps can share it; a copy per step was a large
		// part of a 100,000-image run's memory.
		return lists[0]
	}
	var out []Item
	at := map[string]int{}
	for _, list := range lists {
		for _, it := range list {
			i, ok := at[it.SHA256]
			if !ok {
				at[it.SHA256] = len(out)
				out = append(out, it)
				continue
			}
			out[i].fields = mergeFields(out[i].fields, it.fields)
		}
	}
	return out
}

// distinct reports whether no two items share a digest.
func distinct(items []Item) bool {
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		if _, ok := seen[it.SHA256]; ok {
			return false
		}
		seen[it.SHA256] = struct{}{}
	}
	return true
}
