package cache

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// # Entry bundles
//
// A foreach carried out on a worker stores one small entry per element in
// the shared store, and the machines after it (the step's next steps, the
// submitting side) read them back: a request per element each, 1,000
// requests for 1,000 images, where the entries are 300 bytes. The worker
// also sends them as one object, a bundle, named in what it reports
// (runner.Outcome.Entries); a machine that knows the bundle fetches it once
// and adopts its entries into its local cache. The entries stay in the
// store one by one: a bundle only saves requests, and another user or a
// later run finds each entry by its action as always.
//
// A bundle is an object (stored under the SHA-256 of its content, which
// is verified when fetched):
//
//	"lifeos entries v1\n"
//	then per entry: action [32]byte, size uint32 little-endian, the entry
//
// Only entries whose result is inside them are bundled: adopting one then
// needs nothing else.

const bundleHeader = "lifeos entries v1\n"

// BundleEntries puts in the shared store one object holding the entries
// of ids that the local cache has with their results inside, and returns
// its digest and how many it holds (0, and no object, for none).
func (c *Cache) BundleEntries(ctx context.Context, ids []ActionID) (OutputID, int, error) {
	if c.remote == nil {
		return OutputID{}, 0, errors.New("no shared cache")
	}
	b := []byte(bundleHeader)
	n := 0
	for _, id := range ids {
		e, inline, err := c.getLocal(id)
		if err != nil || inline == nil {
			continue
		}
		entry := append(c.entryLine(id, e.Output, e.Size), inline...)
		b = append(b, id[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(entry)))
		b = append(b, entry...)
		n++
	}
	if n == 0 {
		return OutputID{}, 0, nil
	}
	if _, err := c.UploadData(ctx, b); err != nil {
		return OutputID{}, 0, fmt.Errorf("entry bundle: %w", err)
	}
	id := Sum(b)
	c.remote.mu.Lock()
	c.remote.sent[id] = true // made here: AdoptEntries need not fetch it
	c.remote.mu.Unlock()
	return id, n, nil
}

// AdoptEntries fetches bundles (in parallel) and writes into the local
// cache each of their entries it lacks, checked as an entry fetched alone
// is, and returns how many it adopted. A bundle that is missing or
// damaged adopts nothing (the first such error is returned): its entries
// are then fetched one by one when asked for.
//
// The entries go into one pack, not a file each: adopting a 1,000-image
// foreach wrote 1,000 files, a third of what the submitting side spent on
// the run; and one pack for all the bundles, not one each, since every
// packed lookup reads the index of every pack. Entries lost in a crash
// before the pack is written are in the shared store still.
func (c *Cache) AdoptEntries(bundles ...OutputID) (int, error) {
	if c.remote == nil {
		return 0, errors.New("no shared cache")
	}
	var mu sync.Mutex
	var ids []ActionID
	var results [][]byte
	var first error
	each(c.remote.ctx, bundles, func(id OutputID) error {
		got, data, err := c.bundleEntries(id)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			first = cmp.Or(first, err)
			return nil
		}
		ids, results = append(ids, got...), append(results, data...)
		return nil
	})
	if err := c.putPack(ids, results, false); err != nil {
		return 0, fmt.Errorf("entry bundles: %w", err)
	}
	c.remote.mu.Lock()
	for _, id := range ids {
		c.remote.knowShared(id)
	}
	c.remote.mu.Unlock()
	return len(ids), first
}

// bundleEntries fetches bundle id and returns the entries in it the cache
// lacks, with their results, all checked; nothing when one is not right.
func (c *Cache) bundleEntries(id OutputID) ([]ActionID, [][]byte, error) {
	c.remote.mu.Lock()
	mine := c.remote.sent[id]
	c.remote.mu.Unlock()
	if mine {
		return nil, nil, nil // this process bundled them from its own cache
	}
	b, err := c.ReadObject(id, -1)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(b, []byte(bundleHeader)) {
		return nil, nil, fmt.Errorf("object %s is not an entry bundle", id.Short())
	}
	b = b[len(bundleHeader):]
	var ids []ActionID
	var results [][]byte
	for len(b) > 0 {
		if len(b) < 32+4 {
			return nil, nil, fmt.Errorf("entry bundle %s is truncated", id.Short())
		}
		action := ActionID(b[:32])
		size := int(binary.LittleEndian.Uint32(b[32:36]))
		b = b[36:]
		if size > len(b) {
			return nil, nil, fmt.Errorf("entry bundle %s is truncated", id.Short())
		}
		entry := b[:size:size]
		b = b[size:]
		if c.holds(action) {
			continue
		}
		_, inline, err := checkEntry(action, entry)
		if err != nil || inline == nil {
			return nil, nil, fmt.Errorf("entry bundle %s: entry %s: %w", id.Short(), action.Short(), cmp.Or(err, errors.New("its result is not inside it")))
		}
		ids, results = append(ids, action), append(results, inline)
	}
	return ids, results, nil
}
