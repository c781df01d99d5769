package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/lifeos/lifeos/internal/lazyre"
	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
	"github.com/tidwall/gjson"
)

// Large outputs by reference. A step whose outputs are large (a score over
// 100,000 images: every item with its scores) keeps them in the cache as
// one object; its memo holds the object's digest and the small outputs
// (summary, counts). A no-op run serves the step, prints its summary and
// writes its record without reading the object: only a step that takes the
// full path and reads them (its items, its outputs) loads it, once.

// memoOutputsMax is the size (JSON) above which a memo refers to an
// element's outputs instead of holding them.
const memoOutputsMax = 4 << 10

// storedOutputs are outputs kept in the cache, loaded on first use. Safe
// for concurrent use.
type storedOutputs struct {
	c     *cache.Cache
	ref   cache.OutputID
	size  int64
	head  map[string]any // the small outputs (recordOutputMax each)
	items bool           // they hold "items" (producesItems)

	once sync.Once
	v    any
	err  error
}

// itemList returns the items the outputs hold, decoded from the object
// one at a time when the outputs are not loaded: a step downstream needs
// them, not the rest (decoded whole as generic values, 100,000 items took
// four times the memory of the items themselves).
func (s *storedOutputs) itemList() ([]steps.Item, error) {
	if s.v != nil {
		m, _ := s.v.(map[string]any)
		return steps.ItemsFrom(m["items"])
	}
	data, err := s.c.ReadObject(s.ref, s.size)
	if err != nil {
		return nil, fmt.Errorf("cached outputs: %w (run again with --no-cache, or lifeos cache verify)", err)
	}
	if !gjson.ValidBytes(data) { // gjson reads, it does not check
		return nil, fmt.Errorf("cached outputs %s: not JSON (run again with --no-cache, or lifeos cache verify)", s.ref.Short())
	}
	list := []steps.Item{} // as ItemsFrom's: none is not nil
	if err := eachItem(jsonOf(data).Get("items"), func(it steps.Item) { list = append(list, it) }); err != nil {
		return nil, fmt.Errorf("outputs.%w", err)
	}
	return list, nil
}

// decodeStored makes the storedOutputs of outputs data, the object ref:
// their small outputs decoded, the rest left in the cache. With check,
// their items are checked one at a time, and not kept.
func decodeStored(c *cache.Cache, ref cache.OutputID, data []byte, check bool) (*storedOutputs, error) {
	top := jsonOf(data)
	if !top.IsObject() {
		return nil, errors.New("outputs: not an object")
	}
	small := map[string]any{}
	var items gjson.Result
	var err error
	top.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "items" {
			items = v
		}
		// Values whose JSON is this long cannot be recordOutputMax once
		// encoded again (an escape is at most six bytes for one).
		if len(v.Raw) <= 6*recordOutputMax {
			var x any
			if err = json.Unmarshal([]byte(v.Raw), &x); err != nil {
				return false
			}
			small[k.Str] = x
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	so := &storedOutputs{c: c, ref: ref, size: int64(len(data)), items: items.Exists()}
	so.head, _ = smallOutputs(small).(map[string]any) // its exact rule
	if so.items && check {
		if err := eachItem(items, func(steps.Item) {}); err != nil {
			return nil, fmt.Errorf("outputs.%w", err) // as outputItems says it
		}
	}
	return so, nil
}

// jsonOf reads JSON without copying it (gjson): data is not changed while
// the result is used.
func jsonOf(data []byte) gjson.Result {
	return gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))
}

// eachItem calls fn with every item of a JSON list of items, decoding one
// at a time, with steps.ItemsFrom's errors. gjson finds each item's bytes
// in one pass; encoding/json scanned the list three times more to reach
// them (a tenth of a 100,000-image filter's time).
func eachItem(list gjson.Result, fn func(steps.Item)) error {
	if !list.IsArray() {
		// Not a list: whatever ItemsFrom says of it.
		var v any
		if list.Exists() {
			if err := json.Unmarshal([]byte(list.Raw), &v); err != nil {
				return err
			}
		}
		items, err := steps.ItemsFrom(v)
		for _, it := range items {
			fn(it)
		}
		return err
	}
	i := 0
	var err error
	list.ForEach(func(_, v gjson.Result) bool {
		var it steps.Item
		if it, err = steps.ItemFromJSON(v.Raw); err != nil {
			err = fmt.Errorf("items[%d]: %w", i, err)
			return false
		}
		fn(it)
		i++
		return true
	})
	return err
}

func (s *storedOutputs) load() (any, error) {
	s.once.Do(func() {
		data, err := s.c.ReadObject(s.ref, s.size)
		if err != nil {
			s.err = fmt.Errorf("cached outputs: %w (run again with --no-cache, or lifeos cache verify)", err)
			return
		}
		s.v, s.err = decodeOutputs(data)
	})
	return s.v, s.err
}

// outputsPlain reports whether el's outputs (their JSON, data) hold
// nothing to redact, so that the record may refer to their object as it
// is; scanned once per element (store and the memo both ask, and the JSON
// of a batch is tens of megabytes).
func (e *engine) outputsPlain(el *element, data []byte) bool {
	if !el.outPlainKnown {
		el.outPlain, el.outPlainKnown = bytes.Equal(e.plan.redact.JSON(data), data), true
	}
	return el.outPlain
}

// upstreamView is n's outputs as its dependents see them, made once.
func (n *node) upstreamView() map[string]any {
	n.viewOnce.Do(func() { n.view = upstreamView(n.outputs) })
	return n.view
}

// upstreamView is what a step sees of a need's outputs (steps.Env.Upstream):
// the outputs of at most recordOutputMax bytes each, the same whether they
// were just made or are stored; items come through Env.Items.
func upstreamView(outputs any) map[string]any {
	if s, ok := outputs.(*storedOutputs); ok {
		return s.head
	}
	m, _ := smallOutputs(outputs).(map[string]any)
	return m
}

// runIDPattern matches run ids (newRunID) and RFC 3339 times: what a step
// may legitimately write that differs from run to run (a report names the
// run that made it).
var runIDPattern = lazyre.New(`\b\d{8}-\d{6}-[0-9a-f]{6}\b|\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)

// sameResult reports whether two results of one key differ only in run
// ids and times (LIFEOS_DEBUG=cacheverify): outputs and every file's
// content compared with those replaced.
func (e *engine) sameResult(a, b []byte) bool {
	var ra, rb cache.Result
	if json.Unmarshal(a, &ra) != nil || json.Unmarshal(b, &rb) != nil || len(ra.Files) != len(rb.Files) {
		return false
	}
	norm := func(data []byte) []byte { return runIDPattern().ReplaceAll(data, []byte("<run>")) }
	outputs := func(r cache.Result) []byte {
		if r.OutputsObject != (cache.OutputID{}) {
			data, _ := e.cache.ReadObject(r.OutputsObject, r.OutputsSize)
			return data
		}
		return r.Outputs
	}
	if !bytes.Equal(norm(outputs(ra)), norm(outputs(rb))) {
		return false
	}
	content := func(f cache.File) []byte {
		if f.Data != nil {
			return f.Data
		}
		data, _ := e.cache.ReadObject(f.Object, f.Size)
		return data
	}
	for i := range ra.Files {
		fa, fb := ra.Files[i], rb.Files[i]
		if fa.Path != fb.Path || fa.Mode != fb.Mode {
			return false
		}
		if fa.Object != fb.Object && !bytes.Equal(norm(content(fa)), norm(content(fb))) {
			return false
		}
	}
	return slices.Equal(ra.Dirs, rb.Dirs) && slices.Equal(ra.Roots, rb.Roots)
}

// resolve returns outputs as values: stored ones are loaded.
func resolve(outputs any) (any, error) {
	if s, ok := outputs.(*storedOutputs); ok {
		return s.load()
	}
	return outputs, nil
}

// summaryOf is the "summary" output, without loading stored outputs.
func summaryOf(outputs any) string {
	m, ok := outputs.(map[string]any)
	if s, stored := outputs.(*storedOutputs); stored {
		m, ok = s.head, true
	}
	if ok {
		s, _ := m["summary"].(string)
		return s
	}
	return ""
}

// nodeItems returns the items n passes on (outputItems), decided once: for
// a step served from a memo, when a step downstream first needs them.
func (e *engine) nodeItems(n *node) ([]steps.Item, error) {
	n.itemsOnce.Do(func() { n.items, n.itemsErr = e.outputItems(n) })
	return n.items, n.itemsErr
}

// nodeInputs makes what n's elements need to take the full path: their
// needs' outputs as the step sees them, once per node, by the first
// element that needs them (a no-op run never does).
func (e *engine) nodeInputs(n *node) {
	n.inputsOnce.Do(func() {
		n.up = make(map[string]steps.Outputs, len(n.deps))
		for _, d := range n.deps {
			if m := d.upstreamView(); m != nil {
				n.up[d.s.ID] = m
			}
		}
	})
}

// nodeInItems returns the merged items of n's needs, made once, by the
// first element that runs (or a step downstream that needs them passed
// on): the key does not need them (itemsIdentity), so a step restored from
// the cache never reads 100,000 items it does not use.
func (e *engine) nodeInItems(n *node) ([]steps.Item, error) {
	n.inItemsOnce.Do(func() {
		lists := make([][]steps.Item, 0, len(n.deps))
		for _, d := range n.deps {
			items, err := e.nodeItems(d)
			if err != nil {
				n.inItemsErr = err
				return
			}
			lists = append(lists, items)
		}
		n.inItems = steps.MergeItems(lists...)
	})
	return n.inItems, n.inItemsErr
}

// MarshalJSON writes the outputs themselves, loading them: a record
// encoded whole (without a cache to refer to) holds them.
func (s *storedOutputs) MarshalJSON() ([]byte, error) {
	v, err := s.load()
	if err != nil {
		return nil, err
	}
	return jsonText(v)
}

// itemsIdentity identifies, without decoding anything, what n's items and
// outputs derive from: n's element results and, recursively, its needs'.
// A step that reads items has it in its key (and memo fingerprint) in
// place of the items' digest, which would mean loading and encoding
// 100,000 items to find a filter's key.
func itemsIdentity(n *node) string {
	h := sha256.New()
	produces := false
	for _, el := range n.elems {
		produces = produces || producesItems(el.outputs)
	}
	if produces {
		for _, el := range n.elems {
			h.Write(el.output[:])
		}
	} else {
		// Passed on: what the needs' items derive from.
		for _, d := range n.deps {
			h.Write([]byte(d.itemsID))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// producesItems reports whether outputs hold "items" (see outputItems).
func producesItems(outputs any) bool {
	switch x := outputs.(type) {
	case map[string]any:
		_, ok := x["items"]
		return ok
	case *storedOutputs:
		return x.items
	}
	return false
}
