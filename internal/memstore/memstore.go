// Package memstore is a shared store in memory, for tests of the cache
// and of what is built on it (cache.Remote).
package memstore

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// Store is a shared store in memory, with create-only puts honoured; it
// records the order of puts and counts gets.
type Store struct {
	Mu      sync.Mutex // guards the fields
	Objs    map[string][]byte
	Puts    []string // the keys put, in order
	Tries   int      // puts asked for, refused ones too
	Gets    int
	BlockOn string        // a key prefix whose puts wait for Release
	Release chan struct{} // closed to let them go
}

// New returns an empty store.
func New() *Store { return &Store{Objs: map[string][]byte{}} }

// String names the store.
func (m *Store) String() string { return "mem://test/" }

// Get is the cache.Remote method.
func (m *Store) Get(_ context.Context, key string, w io.Writer) (int64, error) {
	m.Mu.Lock()
	m.Gets++
	b, ok := m.Objs[key]
	m.Mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	n, err := w.Write(b)
	return int64(n), err
}

// Put is the cache.Remote method.
func (m *Store) Put(ctx context.Context, key string, r io.ReadSeeker, size int64, ifAbsent bool) error {
	if m.BlockOn != "" && strings.HasPrefix(key, m.BlockOn) {
		select {
		case <-m.Release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %s: %d bytes, said %d", key, len(b), size)
	}
	m.Mu.Lock()
	defer m.Mu.Unlock()
	m.Tries++
	if _, ok := m.Objs[key]; ok && ifAbsent {
		return fmt.Errorf("put %s: %w", key, fs.ErrExist)
	}
	m.Objs[key] = b
	m.Puts = append(m.Puts, key)
	return nil
}

// Stat is the cache.Remote method.
func (m *Store) Stat(_ context.Context, key string) (int64, error) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	b, ok := m.Objs[key]
	if !ok {
		return 0, fs.ErrNotExist
	}
	return int64(len(b)), nil
}

// List is the cache.Remote method.
func (m *Store) List(_ context.Context, prefix string, fn func(string, int64) error) error {
	m.Mu.Lock()
	var keys []string
	for k := range m.Objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.Mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, int64(len(m.Objs[k]))); err != nil {
			return err
		}
	}
	return nil
}

// Set stores b at key, as a damaged or foreign object would be.
func (m *Store) Set(key string, b []byte) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	m.Objs[key] = b
}
