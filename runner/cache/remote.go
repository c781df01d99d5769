package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/par"
	"github.com/lifeos/lifeos/internal/robustio"
)

// # A shared store behind the cache
//
// With a Remote attached (SetRemote), the local cache stays in front: a
// lookup that misses locally asks the remote, and what it finds is
// verified (an entry's form and action, every object's size and digest)
// and copied into the local cache before it is used; anything damaged or
// partial is a miss. What a run stores locally is uploaded in the
// background: objects under cas/<xx>/<sha256>, entries (the same bytes as
// the local entry file) under ac/<xx>/<action> written create-only, so the
// first result stored for an action is the one everybody gets. An entry
// is uploaded only after every object stored before it, so a reader never
// finds an entry whose objects are not there yet. The remote is an
// accelerator: a failed upload is a warning, and a failed download a miss.

// Remote is an object store shared by several caches (internal/s3store).
type Remote interface {
	// Get copies the object at key to w; an error wrapping fs.ErrNotExist
	// when there is none.
	Get(ctx context.Context, key string, w io.Writer) (int64, error)
	// Put stores size bytes of r at key; with ifAbsent, an existing object
	// is kept and the error wraps fs.ErrExist. r is read again on a retry.
	Put(ctx context.Context, key string, r io.ReadSeeker, size int64, ifAbsent bool) error
	// Stat returns an object's size; an error wrapping fs.ErrNotExist when
	// there is none.
	Stat(ctx context.Context, key string) (int64, error)
	// List calls fn for every object under prefix, in key order.
	List(ctx context.Context, prefix string, fn func(key string, size int64) error) error
	// String names the store in messages (s3://bucket/prefix).
	String() string
}

// Key prefixes in a remote store.
const (
	RemoteObjects = "cas/"
	RemoteEntries = "ac/"
)

// remoteStatBefore is the object size from which an upload first asks
// whether the remote has it: a refused create-only put has sent the body.
const remoteStatBefore = 256 << 10

// remoteWorkers is how many uploads run at once: enough to hide a
// service's latency, few enough not to compete with the run.
const remoteWorkers = 8

func remoteKey(prefix string, id [32]byte) string {
	h := hex.EncodeToString(id[:])
	return prefix + h[:2] + "/" + h
}

// RemoteStats counts what a cache exchanged with its remote.
type RemoteStats struct {
	Fetched, FetchedBytes   int64 // entries and objects downloaded and verified
	Damaged                 int64 // remote entries or objects found damaged: misses
	Uploaded, UploadedBytes int64 // entries and objects the remote did not have
	Failed                  int64 // uploads that failed
	FirstError              error // the first failed upload
}

type remote struct {
	r    Remote
	warn func(string)
	ctx  context.Context
	stop context.CancelFunc
	jobs chan upload
	wg   sync.WaitGroup

	mu        sync.Mutex
	cond      *sync.Cond
	enqueued  uint64              // objects queued so far
	done      map[uint64]bool     // objects finished beyond the watermark
	watermark uint64              // every object up to it is finished
	sent      map[[32]byte]bool   // objects queued, fetched or known there
	seqOf     map[[32]byte]uint64 // the place in the queue of those not done
	// shared are the entries this process put in the remote or found
	// there (Shared).
	shared  map[[32]byte]bool
	damaged map[[32]byte]bool // remote copies found damaged: replace them
	// missed are the entries Prefetch found missing, and when: the one
	// lookup that follows takes that answer instead of asking again.
	missed map[[32]byte]time.Time
	stats  RemoteStats
	closed bool
	// After offlineAfter failures in a row (each already retried by the
	// client), the remote is taken as unreachable for the rest of the
	// process: a dead endpoint must not cost every lookup its retries.
	failures int
	offline  bool
}

const offlineAfter = 3

// upload is one object (seq > 0) or one entry (data set, waiting for the
// objects in wait), queued through the view t counts.
type upload struct {
	seq  uint64
	id   [32]byte
	wait []uint64
	data []byte
	t    *tally
}

// tally is what one view of the cache (Session) queued and exchanged with
// the remote, under remote.mu: a worker carries out several steps at once
// on one cache, and each must wait for its own uploads only, and report
// only its own.
type tally struct {
	pending int      // uploads queued and not finished
	deps    []uint64 // objects queued or relied on since its last entry
	stats   RemoteStats
}

// SetRemote puts r behind the cache. Uploads run in the background until
// FlushRemote. warn (nil to discard) is told once if r becomes unreachable.
func (c *Cache) SetRemote(r Remote, warn func(string)) {
	ctx, stop := context.WithCancel(context.Background())
	rm := &remote{r: r, warn: warn, ctx: ctx, stop: stop, jobs: make(chan upload, 4096), done: map[uint64]bool{}, sent: map[[32]byte]bool{},
		seqOf: map[[32]byte]uint64{}, shared: map[[32]byte]bool{}, damaged: map[[32]byte]bool{}, missed: map[[32]byte]time.Time{}}
	rm.cond = sync.NewCond(&rm.mu)
	for range remoteWorkers {
		rm.wg.Add(1)
		go rm.work(c)
	}
	c.remote, c.tally = rm, &tally{}
}

// Session returns a view of the cache for one run among others in this
// process (the steps a worker carries out at once): the same cache and
// store, but its WaitUploads waits for the uploads queued through it only
// and counts only what it exchanged with the store. Without a remote it
// is c.
func (c *Cache) Session() *Cache {
	if c.remote == nil {
		return c
	}
	s := *c
	s.tally = &tally{}
	return &s
}

// Remote returns the store behind the cache, nil when there is none.
func (c *Cache) Remote() Remote {
	if c.remote == nil {
		return nil
	}
	return c.remote.r
}

// FlushRemote waits for the uploads still queued (or, once ctx is done,
// abandons them: a later run or `cache push` sends what is missing) and
// returns what was exchanged with the remote. Lookups still ask the
// remote afterwards; what is stored is no longer uploaded.
func (c *Cache) FlushRemote(ctx context.Context) RemoteStats {
	rm := c.remote
	if rm == nil {
		return RemoteStats{}
	}
	rm.mu.Lock()
	if !rm.closed {
		rm.closed = true
		close(rm.jobs)
	}
	rm.mu.Unlock()
	finished := make(chan struct{})
	go func() { rm.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		rm.stop()
		rm.mu.Lock()
		rm.cond.Broadcast()
		rm.mu.Unlock()
		<-finished
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.stats
}

// result notes whether an operation reached the remote: an answer, even
// "no such object", resets the count of failures in a row.
func (rm *remote) result(err error) {
	reached := err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist)
	rm.mu.Lock()
	if reached {
		rm.failures = 0
		rm.mu.Unlock()
		return
	}
	rm.failures++
	off := rm.failures == offlineAfter && !rm.offline
	if off {
		rm.offline = true
	}
	rm.mu.Unlock()
	if off && rm.warn != nil {
		rm.warn(fmt.Sprintf("shared cache %s unreachable, using the local cache only: %v", rm.r, err))
	}
}

func (rm *remote) isOffline() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.offline
}

// count applies f to the process's figures and to those of view t.
func (rm *remote) count(t *tally, f func(s *RemoteStats)) {
	rm.mu.Lock()
	f(&rm.stats)
	f(&t.stats)
	rm.mu.Unlock()
}

// finished reports whether object upload seq is done (rm.mu held).
func (rm *remote) finished(seq uint64) bool {
	return seq <= rm.watermark || rm.done[seq]
}

// queueObject uploads object id once it is stored locally.
func (c *Cache) queueObject(id OutputID) {
	rm := c.remote
	if rm == nil {
		return
	}
	rm.mu.Lock()
	if rm.closed {
		rm.mu.Unlock()
		return
	}
	t := c.tally
	if rm.sent[id] {
		// Queued through another view, perhaps: this one's entries
		// wait for it all the same.
		if seq := rm.seqOf[id]; seq > 0 && !rm.finished(seq) {
			t.deps = append(t.deps, seq)
		}
		rm.mu.Unlock()
		return
	}
	rm.sent[id] = true
	rm.enqueued++
	rm.seqOf[id] = rm.enqueued
	t.pending++
	t.deps = append(t.deps, rm.enqueued)
	u := upload{seq: rm.enqueued, id: id, t: t}
	rm.mu.Unlock()
	rm.jobs <- u
}

// queueEntry uploads an entry's bytes after the objects this view stored
// (or relied on) before it: those its result refers to are among them.
func (c *Cache) queueEntry(id ActionID, data []byte) {
	rm := c.remote
	if rm == nil {
		return
	}
	rm.mu.Lock()
	if rm.closed {
		rm.mu.Unlock()
		return
	}
	t := c.tally
	t.deps = slices.DeleteFunc(t.deps, rm.finished)
	u := upload{id: id, wait: slices.Clone(t.deps), data: data, t: t}
	t.pending++
	rm.knowShared(id)
	rm.mu.Unlock()
	rm.jobs <- u
}

// knowShared records that the remote holds entry id (rm.mu held). The set
// is bounded: forgetting only costs a put the remote refuses.
func (rm *remote) knowShared(id [32]byte) {
	if len(rm.shared) >= 1<<20 {
		clear(rm.shared)
	}
	rm.shared[id] = true
}

// Shared reports whether this process knows the remote to hold entry id
// (it put it there or found it there): without a remote, true.
func (c *Cache) Shared(id ActionID) bool {
	rm := c.remote
	if rm == nil {
		return true
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.shared[id]
}

// Share makes sure the remote holds entry id and every object its result
// res refers to, as this cache does, unless this process knows it does: a
// result served from a worker's own cache must be found in the shared
// store by the machines it is reported to, though the worker may have
// made it before this remote was attached, or the remote may have let it
// expire. What the remote already holds is refused by its create-only
// puts, at one round trip each.
func (c *Cache) Share(id ActionID, res *Result) {
	if c.Shared(id) {
		return
	}
	e, inline, err := c.getLocal(id)
	if err != nil {
		return // not here: nothing to share
	}
	for _, f := range res.Files {
		if len(f.Data) == 0 {
			c.queueObject(f.Object)
		}
	}
	if res.OutputsObject != (OutputID{}) {
		c.queueObject(res.OutputsObject)
	}
	if inline == nil {
		c.queueObject(e.Output)
	}
	c.queueEntry(id, append(c.entryLine(id, e.Output, e.Size), inline...))
}

func (rm *remote) work(c *Cache) {
	defer rm.wg.Done()
	for u := range rm.jobs {
		var err error
		if u.seq > 0 {
			err = rm.putObject(c, OutputID(u.id), u.t)
			rm.mu.Lock()
			delete(rm.seqOf, u.id) // nothing is to wait for it now
			rm.done[u.seq] = true
			for rm.done[rm.watermark+1] {
				delete(rm.done, rm.watermark+1)
				rm.watermark++
			}
			rm.cond.Broadcast()
			rm.mu.Unlock()
		} else {
			rm.mu.Lock()
			for slices.ContainsFunc(u.wait, func(seq uint64) bool { return !rm.finished(seq) }) && rm.ctx.Err() == nil {
				rm.cond.Wait()
			}
			rm.mu.Unlock()
			err = rm.putEntry(ActionID(u.id), u.data, u.t)
		}
		rm.mu.Lock()
		if err != nil {
			for _, s := range []*RemoteStats{&rm.stats, &u.t.stats} {
				s.Failed++
				if s.FirstError == nil {
					s.FirstError = err
				}
			}
		}
		u.t.pending--
		rm.cond.Broadcast()
		rm.mu.Unlock()
	}
}

// WaitUploads waits until what was queued through c (the cache, or one
// Session of it) is uploaded, or, once ctx is done, stops waiting; it
// returns what c exchanged with the remote since it was attached or the
// session began. Uploads go on after it.
func (c *Cache) WaitUploads(ctx context.Context) RemoteStats {
	rm := c.remote
	if rm == nil {
		return RemoteStats{}
	}
	stop := context.AfterFunc(ctx, func() {
		rm.mu.Lock()
		rm.cond.Broadcast()
		rm.mu.Unlock()
	})
	defer stop()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for c.tally.pending > 0 && ctx.Err() == nil {
		rm.cond.Wait()
	}
	return c.tally.stats
}

// RemoteStatsSince is the difference between two readings of
// WaitUploads: what one run exchanged, on a cache that outlives it.
func RemoteStatsSince(now, before RemoteStats) RemoteStats {
	d := RemoteStats{Fetched: now.Fetched - before.Fetched, FetchedBytes: now.FetchedBytes - before.FetchedBytes,
		Damaged: now.Damaged - before.Damaged, Uploaded: now.Uploaded - before.Uploaded,
		UploadedBytes: now.UploadedBytes - before.UploadedBytes, Failed: now.Failed - before.Failed}
	if d.Failed > 0 {
		d.FirstError = now.FirstError
	}
	return d
}

func (rm *remote) replace(id [32]byte) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.damaged[id]
}

func (rm *remote) putObject(c *Cache, id OutputID, t *tally) error {
	if err := rm.ctx.Err(); err != nil {
		return err
	}
	if rm.isOffline() {
		return errOffline
	}
	key := remoteKey(RemoteObjects, id)
	replace := rm.replace(id)
	f, err := robustio.Open(c.ObjectPath(id))
	if err != nil {
		return fmt.Errorf("upload object %s: %w", id.Short(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= remoteStatBefore && !replace {
		n, err := rm.r.Stat(rm.ctx, key)
		rm.result(err)
		if err == nil && n == st.Size() {
			return nil
		}
	}
	return rm.put(key, f, st.Size(), !replace, t)
}

// put uploads one object or entry and counts it; one the store already
// holds (a create-only put refused) is no error and is not counted.
func (rm *remote) put(key string, r io.ReadSeeker, size int64, ifAbsent bool, t *tally) error {
	err := rm.r.Put(rm.ctx, key, r, size, ifAbsent)
	rm.result(err)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return err
	}
	rm.count(t, func(s *RemoteStats) { s.Uploaded++; s.UploadedBytes += size })
	return nil
}

func (rm *remote) putEntry(id ActionID, data []byte, t *tally) error {
	if err := rm.ctx.Err(); err != nil {
		return err
	}
	if rm.isOffline() {
		return errOffline
	}
	return rm.put(remoteKey(RemoteEntries, id), bytes.NewReader(data), int64(len(data)), !rm.replace(id), t)
}

// remoteGet looks an entry up in the remote after a local miss. What it
// finds is checked, its object fetched when not inline, and the entry
// written to the local cache; any problem is a miss.
func (c *Cache) remoteGet(id ActionID) (Entry, []byte, error) {
	rm := c.remote
	if rm.isOffline() {
		return Entry{}, nil, fs.ErrNotExist
	}
	var buf bytes.Buffer
	_, err := rm.r.Get(rm.ctx, remoteKey(RemoteEntries, id), &limitWriter{w: &buf, n: int64(entrySize + inlineMax)})
	rm.result(err)
	if err != nil {
		return Entry{}, nil, err
	}
	b := buf.Bytes()
	damaged := func(err error) (Entry, []byte, error) {
		rm.markDamaged(id, c.tally)
		return Entry{}, nil, fmt.Errorf("%s: entry %s: %v: %w", rm.r, id.Short(), err, errDamaged)
	}
	e, inline, err := checkEntry(id, b)
	if err != nil {
		return damaged(err)
	}
	if inline == nil {
		if _, err := os.Stat(c.ObjectPath(e.Output)); err != nil {
			if err := c.fetchObject(e.Output, e.Size, nil); err != nil {
				return Entry{}, nil, err
			}
		}
	}
	if err := c.keepFetched(id, b); err != nil {
		return Entry{}, nil, err
	}
	rm.count(c.tally, func(s *RemoteStats) { s.Fetched++; s.FetchedBytes += int64(len(b)) })
	return e, inline, nil
}

// checkEntry checks an entry's bytes as found in the remote: its form, its
// action, and its result's size and digest when the result is inside it
// (returned, nil otherwise).
func checkEntry(id ActionID, b []byte) (Entry, []byte, error) {
	e, inline, err := splitEntry(id, b)
	if err == nil && inline != nil {
		err = checkInline(e, inline)
	}
	if err != nil {
		return Entry{}, nil, err
	}
	return e, inline, nil
}

// keepFetched writes an entry the remote holds into the local cache, as
// fetched (time included): not uploaded again.
func (c *Cache) keepFetched(id ActionID, b []byte) error {
	if err := atomicfile.WriteFileUnsynced(c.fileName(id, "a"), b, 0o666); err != nil {
		return fmt.Errorf("store fetched entry: %w", err)
	}
	c.remote.mu.Lock()
	c.remote.knowShared(id)
	c.remote.mu.Unlock()
	return nil
}

// markDamaged notes that the remote's copy of id is damaged, counted for
// view t too.
func (rm *remote) markDamaged(id [32]byte, t *tally) {
	rm.mu.Lock()
	rm.damaged[id] = true
	rm.mu.Unlock()
	rm.count(t, func(s *RemoteStats) { s.Damaged++ })
}

// fetchObject copies object id from the remote into the local cache,
// verifying its size (when size >= 0) and digest on the way. also, when
// not nil, receives the content as it arrives: verified only when
// fetchObject returns nil.
func (c *Cache) fetchObject(id OutputID, size int64, also io.Writer) error {
	rm := c.remote
	if rm == nil || rm.isOffline() {
		return fs.ErrNotExist
	}
	tmpDir := filepath.Join(c.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, atomicfile.TempPattern("fetch"))
	if err != nil {
		return err
	}
	tmp := f.Name()
	kept := false
	defer func() {
		if !kept {
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	if also != nil {
		w = io.MultiWriter(f, h, also)
	}
	n, err := rm.r.Get(rm.ctx, remoteKey(RemoteObjects, id), w)
	rm.result(err)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetch object %s: %w", id.Short(), err)
	}
	if (size >= 0 && n != size) || OutputID(h.Sum(nil)) != id {
		rm.markDamaged(id, c.tally)
		return fmt.Errorf("%s: object %s: size or digest mismatch: %w", rm.r, id.Short(), errDamaged)
	}
	name := c.ObjectPath(id)
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		return err
	}
	if err := robustio.Rename(tmp, name); err != nil {
		return err
	}
	kept = true
	rm.mu.Lock()
	rm.sent[id] = true // the remote has it
	rm.mu.Unlock()
	rm.count(c.tally, func(s *RemoteStats) { s.Fetched++; s.FetchedBytes += n })
	return nil
}

var (
	errOffline = errors.New("the shared cache is unreachable")
	errDamaged = errors.New("damaged, taken as a miss")
)

func isDamaged(err error) bool { return errors.Is(err, errDamaged) }

// limitWriter fails once more than n bytes are written: an entry is small,
// and whatever the remote holds under its name must not fill memory.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errors.New("entry too large")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// RemoteUsage counts the entries and objects in the remote store and
// their bytes, by listing it.
func (c *Cache) RemoteUsage(ctx context.Context) (entries, entryBytes, objects, objectBytes int64, err error) {
	rm := c.remote
	if rm == nil {
		return 0, 0, 0, 0, errors.New("no remote store")
	}
	err = rm.r.List(ctx, RemoteEntries, func(_ string, size int64) error { entries++; entryBytes += size; return nil })
	if err != nil {
		return
	}
	err = rm.r.List(ctx, RemoteObjects, func(_ string, size int64) error { objects++; objectBytes += size; return nil })
	return
}

// Transfers is how many transfers with the shared store run at once (Push,
// Pull, a snapshot's upload and materialising): most of a small file's time
// is its round trip.
const Transfers = 8

// each is par.Each with the transfers' concurrency.
func each[T any](ctx context.Context, list []T, fn func(T) error) error {
	return par.Each(ctx, Transfers, list, fn)
}

func (rm *remote) snapshot() RemoteStats {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.stats
}

func (rm *remote) since(before RemoteStats) RemoteStats {
	return RemoteStatsSince(rm.snapshot(), before)
}

// remoteKeys lists the keys under prefix in the remote.
func (rm *remote) keys(ctx context.Context, prefix string) (map[string]int64, error) {
	have := map[string]int64{}
	err := rm.r.List(ctx, prefix, func(key string, size int64) error { have[key] = size; return nil })
	return have, err
}

// startSync begins a Push or Pull: the remote, its stats so far and the
// objects it holds.
func (c *Cache) startSync(ctx context.Context) (*remote, RemoteStats, map[string]int64, error) {
	rm := c.remote
	if rm == nil {
		return nil, RemoteStats{}, nil, errors.New("no shared cache")
	}
	before := rm.snapshot()
	objs, err := rm.keys(ctx, RemoteObjects)
	return rm, before, objs, err
}

// Push uploads what the local cache has and the remote lacks: objects,
// verified first (a damaged one is skipped and counted), then entries,
// loose and packed, whose objects are there.
func (c *Cache) Push(ctx context.Context) (RemoteStats, error) {
	rm, before, objs, err := c.startSync(ctx)
	if err != nil {
		return RemoteStats{}, err
	}
	entries, err := rm.keys(ctx, RemoteEntries)
	if err != nil {
		return RemoteStats{}, err
	}
	var local []OutputID
	var loose []ActionID
	if err := c.walk(func(path, kind string, _ fs.FileInfo) error {
		var id [32]byte
		if parseHex(id[:], filepath.Base(path)[:hexSize]) != nil {
			return nil
		}
		_, remoteObj := objs[remoteKey(RemoteObjects, id)]
		_, remoteEntry := entries[remoteKey(RemoteEntries, id)]
		switch {
		case kind == "d" && !remoteObj:
			local = append(local, id)
		case kind == "a" && !remoteEntry:
			loose = append(loose, id)
		}
		return nil
	}); err != nil {
		return RemoteStats{}, err
	}
	var mu sync.Mutex
	err = each(ctx, local, func(id OutputID) error {
		if sum, _, err := filehash.Sum(c.ObjectPath(id)); err != nil || OutputID(sum) != id {
			rm.count(c.tally, func(s *RemoteStats) { s.Damaged++ })
			return nil // cache verify removes it
		}
		if err := rm.putObject(c, id, c.tally); err != nil {
			return err
		}
		mu.Lock()
		objs[remoteKey(RemoteObjects, id)] = 0
		mu.Unlock()
		return nil
	})
	if err != nil {
		return rm.since(before), err
	}
	var sends []upload
	for _, id := range loose {
		e, inline, err := c.localResult(id, -1) // sending is not using: not renewed
		if err != nil {
			continue // damaged: a miss here too
		}
		if inline == nil {
			if _, ok := objs[remoteKey(RemoteObjects, e.Output)]; !ok {
				continue // its object is in neither cache
			}
		}
		sends = append(sends, upload{id: id, data: append(c.entryLine(id, e.Output, e.Size), inline...)})
	}
	c.loadPacks()
	c.packs.mu.RLock()
	var packed []ActionID
	for id := range c.packs.m {
		if _, ok := entries[remoteKey(RemoteEntries, id)]; !ok {
			packed = append(packed, id)
		}
	}
	c.packs.mu.RUnlock()
	for _, id := range packed {
		if e, data, _, err := c.readPacked(id); err == nil && len(data) <= inlineMax {
			sends = append(sends, upload{id: id, data: append(c.entryLine(id, e.Output, e.Size), data...)})
		}
	}
	err = each(ctx, sends, func(u upload) error { return rm.putEntry(ActionID(u.id), u.data, c.tally) })
	return rm.since(before), err
}

// Pull copies into the local cache what the remote has and it lacks,
// verifying every entry and object; damaged ones are counted and left.
func (c *Cache) Pull(ctx context.Context) (RemoteStats, error) {
	rm, before, objs, err := c.startSync(ctx)
	if err != nil {
		return RemoteStats{}, err
	}
	type obj struct {
		id   OutputID
		size int64
	}
	var want []obj
	for key, size := range objs {
		var id OutputID
		if parseHex(id[:], key[len(key)-hexSize:]) != nil {
			continue
		}
		if _, err := os.Stat(c.ObjectPath(id)); errors.Is(err, fs.ErrNotExist) {
			want = append(want, obj{id, size})
		}
	}
	if err := each(ctx, want, func(o obj) error {
		if err := c.fetchObject(o.id, o.size, nil); err != nil && !isDamaged(err) {
			return err
		}
		return nil
	}); err != nil {
		return rm.since(before), err
	}
	entries, err := rm.keys(ctx, RemoteEntries)
	if err != nil {
		return rm.since(before), err
	}
	var ids []ActionID
	for key := range entries {
		var id ActionID
		if parseHex(id[:], key[len(key)-hexSize:]) != nil {
			continue
		}
		if !c.holds(id) {
			ids = append(ids, id)
		}
	}
	err = each(ctx, ids, func(id ActionID) error {
		if _, _, err := c.remoteGet(id); err != nil && !isDamaged(err) && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	return rm.since(before), err
}

// holds reports whether the local cache has an intact entry for id,
// loose or packed, without marking it used.
func (c *Cache) holds(id ActionID) bool {
	_, _, err := c.localResult(id, -1)
	if errors.Is(err, fs.ErrNotExist) {
		c.loadPacks()
		c.packs.mu.RLock()
		_, ok := c.packs.m[id]
		c.packs.mu.RUnlock()
		return ok
	}
	return err == nil
}

// Prefetch looks ids up in parallel: what is missing locally and found in
// the remote is copied in (verified), so that the lookups that follow are
// local. What the remote does not have either is a miss for the next
// lookup of it too, if that comes within missFresh: a cold batch asked
// the store twice for every element, once here and once to run it.
// Without a remote it does nothing.
func (c *Cache) Prefetch(ids []ActionID) {
	rm := c.remote
	if rm == nil {
		return
	}
	now := c.Now()
	rm.mu.Lock()
	for id, at := range rm.missed { // those no lookup came for
		if now.Sub(at) > missFresh {
			delete(rm.missed, id)
		}
	}
	rm.mu.Unlock()
	each(rm.ctx, ids, func(id ActionID) error {
		c.lookup(id, true)
		return nil
	})
}

// missFresh is how long a miss Prefetch saw answers for the store. Another
// machine may store the entry meanwhile; this run then carries it out
// again, as it would have had the entry come a moment after its lookup.
const missFresh = 10 * time.Second

// noteMiss notes that Prefetch found id missing in the remote at now.
func (rm *remote) noteMiss(id [32]byte, now time.Time) {
	rm.mu.Lock()
	rm.missed[id] = now
	rm.mu.Unlock()
}

// tookMiss reports whether Prefetch found id missing in the remote just
// now, and forgets it: the lookup after that one asks again.
func (rm *remote) tookMiss(id [32]byte, now time.Time) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	at, ok := rm.missed[id]
	delete(rm.missed, id)
	return ok && now.Sub(at) <= missFresh
}

// LocalFile is a file to upload by its digest (UploadFiles).
type LocalFile struct {
	Path string
	ID   OutputID
	Size int64
}

// listFrom is how many files an upload asks about before it lists the
// store instead: a listing returns a thousand keys per request.
const listFrom = 2000

// UploadFiles puts files in the remote store under their digests, now
// (not queued), unless the store has them; it returns how many it sent.
// A file that no longer has its digest is sent all the same, and is a
// miss wherever it is read.
func (c *Cache) UploadFiles(ctx context.Context, files []LocalFile) (sent int, sentBytes int64, err error) {
	rm := c.remote
	if rm == nil {
		return 0, 0, errors.New("no shared cache")
	}
	var have map[string]int64
	if len(files) >= listFrom {
		if have, err = rm.keys(ctx, RemoteObjects); err != nil {
			return 0, 0, err
		}
	}
	var mu sync.Mutex
	err = each(ctx, files, func(f LocalFile) error {
		key := remoteKey(RemoteObjects, f.ID)
		rm.mu.Lock()
		known := rm.sent[f.ID] && !rm.damaged[f.ID]
		rm.mu.Unlock()
		if known {
			return nil
		}
		if have != nil {
			if n, ok := have[key]; ok && n == f.Size {
				return nil
			}
		} else if f.Size >= remoteStatBefore {
			// A large file is looked for first; a small one is sent
			// create-only, one request either way.
			if n, err := rm.r.Stat(ctx, key); err == nil && n == f.Size {
				return nil
			}
		}
		r, err := os.Open(f.Path)
		if err != nil {
			return err
		}
		defer r.Close()
		err = rm.r.Put(ctx, key, r, f.Size, !rm.replace(f.ID))
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		rm.mu.Lock()
		rm.sent[f.ID] = true
		rm.mu.Unlock()
		if err == nil {
			mu.Lock()
			sent++
			sentBytes += f.Size
			mu.Unlock()
		}
		return nil
	})
	return sent, sentBytes, err
}

// UploadData puts data in the remote store under its digest, now, unless
// the store has it; it reports whether it sent it. As for any object, a
// large one is looked for first and a small one is sent create-only: one
// request either way.
func (c *Cache) UploadData(ctx context.Context, data []byte) (bool, error) {
	rm := c.remote
	if rm == nil {
		return false, errors.New("no shared cache")
	}
	id := Sum(data)
	key := remoteKey(RemoteObjects, id)
	if len(data) >= remoteStatBefore {
		if n, err := rm.r.Stat(ctx, key); err == nil && n == int64(len(data)) {
			return false, nil
		}
	}
	err := rm.r.Put(ctx, key, bytes.NewReader(data), int64(len(data)), !rm.replace(id))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	return err == nil, nil
}
