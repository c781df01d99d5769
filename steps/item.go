package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Item is one image flowing between steps: where it is, its content
// digest and size, and every field upstream steps attached to it, such as
// generation settings (prompt, seed) and scores under the scoring step's id
// (`item.sharp.sharpness`). In JSON, and so in expressions, it is one flat
// object: {"path": ..., "sha256": ..., "width": ..., "height": ..., "<field>": ...}.
type Item struct {
	Path   string
	SHA256 string
	Width  int
	Height int
	// Fields holds everything else, keyed by name.
	Fields map[string]any
}

var itemCore = map[string]bool{"path": true, "sha256": true, "width": true, "height": true}

// MarshalJSON writes the item as one flat object (keys sorted).
func (it Item) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(it.Fields)+4)
	for k, v := range it.Fields {
		if !itemCore[k] {
			m[k] = v
		}
	}
	m["path"], m["sha256"], m["width"], m["height"] = it.Path, it.SHA256, it.Width, it.Height
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
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
	*it = Item{Path: path, SHA256: sum, Width: int(w), Height: int(h), Fields: map[string]any{}}
	for k, v := range m {
		if !itemCore[k] {
			it.Fields[k] = v
		}
	}
	return nil
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

// With returns a copy of the item with the field set.
func (it Item) With(key string, v any) Item {
	it = it.clone()
	it.Fields[key] = v
	return it
}

func (it Item) clone() Item {
	f := make(map[string]any, len(it.Fields)+1)
	for k, x := range it.Fields {
		f[k] = x
	}
	it.Fields = f
	return it
}

// MergeItems merges lists of items by content digest, in order of first
// appearance: the same image scored by two steps becomes one item with both
// steps' fields (later lists win on a conflicting field).
func MergeItems(lists ...[]Item) []Item {
	if len(lists) == 1 && distinct(lists[0]) {
		// Nothing to merge: the list itself. Items are never changed in
		// place (With copies), so steps can share it; a copy per step
		// was a large part of a 100,000-image run's memory.
		return lists[0]
	}
	var out []Item
	at := map[string]int{}
	for _, list := range lists {
		for _, it := range list {
			i, ok := at[it.SHA256]
			if !ok {
				at[it.SHA256] = len(out)
				out = append(out, it.clone())
				continue
			}
			for k, v := range it.Fields {
				out[i].Fields[k] = v
			}
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

// FieldNames returns the item's field names, sorted.
func (it Item) FieldNames() []string {
	names := make([]string, 0, len(it.Fields))
	for k := range it.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
