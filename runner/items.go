package runner

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
)

// Items flow along needs. A step's items are the "items" of its outputs
// when it produces some (images, generation, scoring), and otherwise the
// items it received, so that a scorecard or gate between a scorer and a
// filter passes every score on. A step receives its needs' items merged by
// content digest.

// outputItems decides the items a finished node passes on.
func (e *engine) outputItems(n *node) ([]steps.Item, error) {
	var lists [][]steps.Item
	collect := func(out any) error {
		if so, ok := out.(*storedOutputs); ok {
			if !so.items {
				return nil
			}
			items, err := so.itemList()
			if err != nil {
				return fmt.Errorf("step %s: %w", n.s.ID, err)
			}
			lists = append(lists, items)
			return nil
		}
		out, err := resolve(out)
		if err != nil {
			return fmt.Errorf("step %s: %w", n.s.ID, err)
		}
		m, ok := out.(map[string]any)
		if !ok {
			return nil
		}
		v, ok := m["items"]
		if !ok {
			return nil
		}
		items, err := steps.ItemsFrom(v)
		if err != nil {
			return fmt.Errorf("step %s: outputs.%w", n.s.ID, err)
		}
		lists = append(lists, items)
		return nil
	}
	if n.s.isForeach() {
		for _, el := range n.elems {
			if err := collect(el.outputs); err != nil {
				return nil, err
			}
		}
	} else if err := collect(n.outputs); err != nil {
		return nil, err
	}
	if lists == nil {
		return e.nodeInItems(n)
	}
	return steps.MergeItems(lists...), nil
}

// ItemCache is the per-item cache of the workspace at root, as runs use
// it (scores, embeddings), for commands that score outside a run; nil
// when caching is off (LIFEOS_CACHE=off).
func ItemCache(root string) (steps.ItemCache, error) {
	dir, err := cache.DefaultDir(root)
	if err != nil || dir == "" {
		return nil, err
	}
	c, err := cache.Open(dir)
	if err != nil {
		return nil, err
	}
	return itemCache{c}, nil
}

// itemCache is the steps.ItemCache of a run: per-item results stored in the
// content-addressed cache under a salted digest of the step's key.
type itemCache struct{ c *cache.Cache }

func (ic itemCache) id(key string) cache.ActionID {
	return cache.ActionID(sha256.Sum256([]byte("lifeos item-v1\n" + key)))
}

func (ic itemCache) Get(key string) ([]byte, bool) {
	data, _, err := ic.c.GetBytes(ic.id(key))
	return data, err == nil
}

// Prefetch looks keys up in parallel when a shared store stands behind
// the cache: what it has is copied in, so the Gets that follow are local.
func (ic itemCache) Prefetch(keys []string) {
	if ic.c.Remote() == nil {
		return // local lookups are fast one by one
	}
	ids := make([]cache.ActionID, len(keys))
	for i, k := range keys {
		ids[i] = ic.id(k)
	}
	ic.c.Prefetch(ids)
}

func (ic itemCache) PutBatch(keys []string, data [][]byte) error {
	ids := make([]cache.ActionID, len(keys))
	for i, k := range keys {
		ids[i] = ic.id(k)
	}
	return ic.c.PutPack(ids, data)
}

// Put stores one result that a crash must not lose (a generated image):
// with a shared store, it returns once the store has it too, so that a
// worker killed after it is not asked for the image again.
func (ic itemCache) Put(key string, data []byte) error {
	if _, err := ic.c.PutBytes(ic.id(key), data); err != nil {
		return err
	}
	if ic.c.Remote() != nil {
		// A failed upload is the run's warning, not this result's error:
		// it is stored here.
		ic.c.WaitUploads(context.Background())
	}
	return nil
}
