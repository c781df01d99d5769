// Package cache is lifeos's content-addressed store, modelled on the Go
// toolchain's build cache (cmd/go/internal/cache).
//
// # Layout
//
// Objects (step results, output files) are stored under their SHA-256 as
// <dir>/<xx>/<hex>-d. Action entries map an ActionID to an OutputID and are
// one versioned line each, <dir>/<xx>/<hex>-a:
//
//	v1 <action hex> <output hex> <size> <unixnano>
//
// Unlike Go's cache, a result of at most inlineMax bytes (a step's outputs
// JSON, typically under 1 KiB) follows the line in the entry file instead of
// living in a separate object: a cached re-run of a 1,000-element foreach
// then reads 1,000 files, not 2,000. The data is verified against the
// OutputID either way.
//
// The per-item results of a batch (a thousand scores) are written
// together as one pack (pack.go) instead of one entry file each.
//
// # Failure semantics
//
// Every write goes to a temporary file in the same directory, is synced and
// renamed, so a crash never leaves a partial entry or object under its final
// name. Readers check the entry's shape and the object's size and digest; any
// problem is reported as a miss (an *EntryNotFoundError with the reason), never
// as a fatal error, and a corrupt object is never returned.
//
// # Concurrency
//
// A Cache is safe for concurrent use by several goroutines and several
// processes: two writers of the same object write the same bytes, and rename
// is atomic.
//
// # Trimming
//
// Get bumps an entry's mtime at most once per hour (mtimeInterval); Trim drops
// entries unused for longer than a maximum age and the objects no kept entry
// references.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/mapfile"
	"github.com/lifeos/lifeos/internal/robustio"
)

// mtimeInterval is how stale an entry's mtime may be before Get refreshes it:
// refreshing on every hit would turn every cached run into a burst of writes
// (Go uses the same one hour).
const mtimeInterval = 1 * time.Hour

// trimInterval is how often Trim may run automatically (Go: once a day).
const trimInterval = 24 * time.Hour

// DefaultMaxAge is how long an unused entry is kept by automatic trimming.
// Go keeps 5 days of build outputs; a generated image costs GPU time, so
// lifeos keeps a month.
const DefaultMaxAge = 30 * 24 * time.Hour

const cacheREADME = `This directory holds cached step results for lifeos
(https://github.com/lifeos/lifeos). It is safe to delete it: the next run
recomputes what it needs. 'lifeos cache stats|gc|verify' inspect and trim it.
`

// Cache is a content-addressed store in one directory.
type Cache struct {
	dir    string
	packs  *packIndex
	remote *remote // nil without SetRemote
	tally  *tally  // what this view queued and exchanged (Session)
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// Open opens (creating if needed) the cache in dir, which must be absolute.
func Open(dir string) (*Cache, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("cache directory %q is not absolute", dir)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	c := &Cache{dir: dir, packs: &packIndex{}, Now: time.Now}
	readme := filepath.Join(dir, "README")
	if _, err := os.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		// A new cache holds nothing a day old: its daily trim starts a
		// day from now, not at the end of its first run, where it read
		// back every entry the run had just stored.
		if err := c.writeTrimStamp(); err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
		if err := atomicfile.WriteFile(readme, []byte(cacheREADME), 0o666); err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
	}
	return c, nil
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// StatCache returns the stat cache kept beside the cache's objects.
func (c *Cache) StatCache() *StatCache { return OpenStatCache(filepath.Join(c.dir, "statcache")) }

// OutputsStatCache is a small stat cache of the few files commands write
// outside runs (a manifest's --output): checking one through it does not
// read the stat cache of every input, 19,000 lines for a 10,000-image
// dataset.
func (c *Cache) OutputsStatCache() *StatCache {
	return OpenStatCache(filepath.Join(c.dir, "statcache-outputs"))
}

// DefaultDir returns the cache directory for a workspace: $LIFEOS_CACHE if
// set (it must be absolute, or "off" to disable caching, reported as ""),
// otherwise <root>/.lifeos/cache; also when $LIFEOS_CACHE names a shared
// store (s3://...), which that local cache stands in front of.
func DefaultDir(root string) (string, error) {
	if d := os.Getenv("LIFEOS_CACHE"); d != "" && !strings.HasPrefix(d, "s3://") {
		if d == "off" {
			return "", nil
		}
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("LIFEOS_CACHE=%q is not an absolute path", d)
		}
		return d, nil
	}
	return filepath.Join(root, ".lifeos", "cache"), nil
}

func (c *Cache) fileName(id [32]byte, kind string) string {
	h := hex.EncodeToString(id[:])
	return filepath.Join(c.dir, h[:2], h+"-"+kind)
}

// ObjectPath returns where the object id is stored. The file may not exist.
func (c *Cache) ObjectPath(id OutputID) string { return c.fileName(id, "d") }

// Entry is the result recorded for an ActionID.
type Entry struct {
	Output OutputID
	Size   int64
	Time   time.Time
}

// EntryNotFoundError is returned by Get for a miss; Err says why when the
// entry existed but could not be used.
type EntryNotFoundError struct{ Err error }

func (e *EntryNotFoundError) Error() string {
	if e.Err == nil {
		return "cache entry not found"
	}
	return "cache entry not found: " + e.Err.Error()
}

func (e *EntryNotFoundError) Unwrap() error { return e.Err }

// IsMiss reports whether err is a cache miss.
func IsMiss(err error) bool {
	var e *EntryNotFoundError
	return errors.As(err, &e)
}

const (
	hexSize   = 2 * sha256.Size
	entryHead = "v1 "
	// "v1 <hex> <hex> <20-digit size> <20-digit unixnano>\n"
	entrySize = len(entryHead) + hexSize + 1 + hexSize + 1 + 20 + 1 + 20 + 1
	// inlineMax is the largest result stored inside its entry.
	inlineMax = 16 << 10
)

// entryBufs holds read buffers for entries: zeroing a fresh 16 KiB buffer
// per lookup showed up in profiles of cached runs.
var entryBufs = sync.Pool{New: func() any { b := make([]byte, entrySize+inlineMax+1); return &b }}

// Get looks up the entry for id. It does not check the object; use GetBytes
// or CopyObject, which verify the content.
func (c *Cache) Get(id ActionID) (Entry, error) {
	e, _, err := c.get(id)
	return e, err
}

// get reads an entry and, when the result is inlined, its data
// (unverified); after a local miss, from the remote, if there is one.
func (c *Cache) get(id ActionID) (Entry, []byte, error) {
	return c.lookup(id, false)
}

// lookup is get; for Prefetch, it notes a miss in the remote for the
// lookup that follows.
func (c *Cache) lookup(id ActionID, prefetch bool) (Entry, []byte, error) {
	e, data, err := c.getLocal(id)
	if err == nil || c.remote == nil {
		return e, data, err
	}
	if !prefetch && c.remote.tookMiss(id, c.Now()) {
		return Entry{}, nil, err
	}
	e, data, rerr := c.remoteGet(id)
	switch {
	case rerr == nil:
		return e, data, nil
	case errors.Is(rerr, fs.ErrNotExist):
		if prefetch {
			c.remote.noteMiss(id, c.Now())
		}
		return Entry{}, nil, err
	}
	return Entry{}, nil, &EntryNotFoundError{Err: rerr}
}

// getLocal is get in the local cache only. A hit marks the entry used.
func (c *Cache) getLocal(id ActionID) (Entry, []byte, error) {
	e, inline, mtime, err := c.readEntryFile(id)
	if errors.Is(err, fs.ErrNotExist) {
		e, inline, err = c.getPacked(id)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil // a plain miss
		} else if err == nil {
			return e, inline, nil
		}
		return Entry{}, nil, &EntryNotFoundError{Err: err}
	}
	if err != nil {
		return Entry{}, nil, &EntryNotFoundError{Err: err}
	}
	if c.Now().Sub(mtime) > mtimeInterval {
		now := c.Now()
		os.Chtimes(c.fileName(id, "a"), now, now) // best effort: only trimming depends on it
	}
	return e, inline, nil
}

// readEntryFile reads id's entry file and its inline result (unverified),
// returning the file's mtime; it does not mark the entry used.
func (c *Cache) readEntryFile(id ActionID) (Entry, []byte, time.Time, error) {
	bp := entryBufs.Get().(*[]byte)
	defer entryBufs.Put(bp)
	buf := *bp
	n, mtime, err := readSmall(c.fileName(id, "a"), buf)
	if err != nil {
		return Entry{}, nil, mtime, err
	}
	if n == len(buf) {
		return Entry{}, nil, mtime, errors.New("entry has wrong size") // too long
	}
	e, inline, err := splitEntry(id, buf[:n])
	return e, bytes.Clone(inline), mtime, err
}

// splitEntry checks an entry's form, its action and the size of the result
// inside it, and returns that result (nil when there is none), unverified.
func splitEntry(id ActionID, b []byte) (Entry, []byte, error) {
	if len(b) < entrySize {
		return Entry{}, nil, errors.New("entry has wrong size")
	}
	e, err := parseEntry(b[:entrySize], id)
	if err != nil {
		return Entry{}, nil, err
	}
	if len(b) == entrySize {
		return e, nil, nil
	}
	if int64(len(b)-entrySize) != e.Size {
		return Entry{}, nil, errors.New("inline result has wrong size")
	}
	return e, b[entrySize:], nil
}

// localResult is GetBytes from the entry file and the objects here only,
// without marking the entry used: Trim, Verify, push and pull read every
// entry, and must neither renew them nor ask the shared store. A result
// in an object larger than max is not read (nil data); with max < 0, only
// results inside their entries are.
func (c *Cache) localResult(id ActionID, max int64) (Entry, []byte, error) {
	e, data, _, err := c.readEntryFile(id)
	switch {
	case err != nil:
		return e, nil, err
	case data != nil:
		if err := checkInline(e, data); err != nil {
			return e, nil, err
		}
		return e, data, nil
	case e.Size > max:
		return e, nil, nil
	}
	data, err = c.readObject(e.Output, e.Size, robustio.ReadFile)
	return e, data, err
}

// checkInline checks a result kept inside entry e against its digest.
func checkInline(e Entry, data []byte) error {
	if Sum(data) != e.Output {
		return errors.New("inline result is corrupt (digest mismatch)")
	}
	return nil
}

func parseEntry(b []byte, id ActionID) (Entry, error) {
	if !bytes.HasPrefix(b, []byte(entryHead)) || b[len(b)-1] != '\n' {
		return Entry{}, errors.New("malformed entry")
	}
	f := strings.Fields(string(b[len(entryHead):]))
	if len(f) != 4 {
		return Entry{}, errors.New("malformed entry")
	}
	if f[0] != id.String() {
		return Entry{}, errors.New("entry is for another action")
	}
	out, err := ParseOutputID(f[1])
	if err != nil {
		return Entry{}, fmt.Errorf("malformed entry: %w", err)
	}
	size, err1 := strconv.ParseInt(f[2], 10, 64)
	nano, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || size < 0 {
		return Entry{}, errors.New("malformed entry")
	}
	return Entry{Output: out, Size: size, Time: time.Unix(0, nano)}, nil
}

// GetBytes returns the object recorded for id, verified against its digest.
func (c *Cache) GetBytes(id ActionID) ([]byte, Entry, error) {
	return c.getBytes(id, robustio.ReadFile)
}

// GetBytesMapped is GetBytes for a command that reads one large result
// once and exits: an object is mapped for the rest of the process
// (mapfile) instead of copied onto the heap, where each 4 KB is a page
// fault (a dataset's stamps record is a megabyte for 10,000 images). The
// bytes must not be written.
func (c *Cache) GetBytesMapped(id ActionID) ([]byte, Entry, error) {
	return c.getBytes(id, mapfile.Read)
}

func (c *Cache) getBytes(id ActionID, read func(string) ([]byte, error)) ([]byte, Entry, error) {
	e, inline, err := c.get(id)
	if err != nil {
		return nil, e, err
	}
	if inline != nil {
		if err := checkInline(e, inline); err != nil {
			return nil, e, &EntryNotFoundError{Err: err}
		}
		return inline, e, nil
	}
	data, err := c.readObjectWith(e.Output, e.Size, read)
	if err != nil {
		return nil, e, &EntryNotFoundError{Err: err}
	}
	return data, e, nil
}

// ReadObject returns the content of object id, checking its size (when
// size >= 0) and digest.
func (c *Cache) ReadObject(id OutputID, size int64) ([]byte, error) {
	return c.readObjectWith(id, size, robustio.ReadFile)
}

// readObjectWith is ReadObject with the file read by read.
func (c *Cache) readObjectWith(id OutputID, size int64, read func(string) ([]byte, error)) ([]byte, error) {
	data, err := c.readObject(id, size, read)
	if errors.Is(err, fs.ErrNotExist) && c.remote != nil {
		// Kept as it arrives, verified on the way: not read back (a
		// snapshot's pack is 32 MiB, fetched by every worker).
		var buf bytes.Buffer
		buf.Grow(int(max(size, 0)))
		if err := c.fetchObject(id, size, &buf); err != nil {
			return nil, fmt.Errorf("object %s: %w", id.Short(), err)
		}
		return buf.Bytes(), nil
	}
	return data, err
}

// readObject is ReadObject in the local cache only.
func (c *Cache) readObject(id OutputID, size int64, read func(string) ([]byte, error)) ([]byte, error) {
	data, err := read(c.ObjectPath(id))
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", id.Short(), err)
	}
	if size >= 0 && int64(len(data)) != size {
		return nil, fmt.Errorf("object %s has size %d, want %d", id.Short(), len(data), size)
	}
	if Sum(data) != id {
		return nil, fmt.Errorf("object %s is corrupt (digest mismatch)", id.Short())
	}
	return data, nil
}

// PutBytes stores data as the result of id: inside the entry when small,
// otherwise as an object.
func (c *Cache) PutBytes(id ActionID, data []byte) (OutputID, error) {
	if len(data) > 0 && len(data) <= inlineMax {
		out := Sum(data)
		return out, c.putEntry(id, out, int64(len(data)), data)
	}
	out, err := c.PutObject(bytes.NewReader(data))
	if err != nil {
		return out, err
	}
	return out, c.putEntry(id, out, int64(len(data)), nil)
}

// PutObject stores the content of r as an object and returns its id.
func (c *Cache) PutObject(r io.Reader) (OutputID, error) {
	o, err := c.newObject()
	if err != nil {
		return OutputID{}, err
	}
	if _, err := io.Copy(o, r); err != nil {
		o.abort()
		return OutputID{}, fmt.Errorf("store object: %w", err)
	}
	return o.commit()
}

// objectWriter is an object being written: hashed into a temporary file in
// the cache itself, then renamed to its digest. One pass over the data,
// and no partial object is ever visible.
type objectWriter struct {
	c *Cache
	f *os.File
	h hash.Hash
	n int64
}

func (c *Cache) newObject() (*objectWriter, error) {
	tmpDir := filepath.Join(c.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, atomicfile.TempPattern("obj"))
	if err != nil {
		return nil, err
	}
	return &objectWriter{c: c, f: f, h: sha256.New()}, nil
}

func (o *objectWriter) Write(b []byte) (int, error) {
	n, err := o.f.Write(b)
	o.h.Write(b[:n])
	o.n += int64(n)
	return n, err
}

func (o *objectWriter) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}

// commit stores what was written under its digest. Not synced: every read
// of an object checks its size and digest, so one a crash damaged is a
// miss; and it is renamed over whatever damaged copy holds its name, so
// storing the same content again repairs it. An intact copy is kept
// (keepIntact).
func (o *objectWriter) commit() (id OutputID, err error) {
	tmp := o.f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := o.f.Close(); err != nil {
		return id, fmt.Errorf("store object: %w", err)
	}
	o.h.Sum(id[:0])
	if o.c.keepIntact(id, o.n) {
		os.Remove(tmp)
		return id, nil
	}
	name := o.c.ObjectPath(id)
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		return id, err
	}
	// Objects are read-only: nothing should edit them in place (restic).
	if err := os.Chmod(tmp, 0o444); err != nil {
		return id, err
	}
	if err := robustio.Rename(tmp, name); err != nil {
		return id, fmt.Errorf("store object: %w", err)
	}
	o.c.queueObject(id)
	return id, nil
}

// PutStream stores what write writes as the result of id, as PutBytes
// stores it (inside the entry when small), without holding a large one
// in memory: past inlineMax bytes, it goes to its object as it is written.
// Nothing is stored when write fails.
func (c *Cache) PutStream(id ActionID, write func(io.Writer) error) (OutputID, error) {
	s := &spillWriter{c: c, buf: make([]byte, 0, 4<<10)}
	err := write(s)
	if err == nil {
		err = s.err
	}
	if err != nil {
		if s.obj != nil {
			s.obj.abort()
		}
		return OutputID{}, err
	}
	if s.obj == nil {
		return c.PutBytes(id, s.buf)
	}
	out, err := s.obj.commit()
	if err != nil {
		return out, err
	}
	return out, c.putEntry(id, out, s.obj.n, nil)
}

// spillWriter keeps what is written in memory up to inlineMax bytes, and
// moves it to a new object beyond.
type spillWriter struct {
	c   *Cache
	buf []byte
	obj *objectWriter
	err error
}

func (s *spillWriter) Write(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.obj == nil && len(s.buf)+len(b) <= inlineMax {
		s.buf = append(s.buf, b...)
		return len(b), nil
	}
	if s.obj == nil {
		if s.obj, s.err = s.c.newObject(); s.err != nil {
			return 0, s.err
		}
		if _, s.err = s.obj.Write(s.buf); s.err != nil {
			return 0, s.err
		}
		s.buf = nil
	}
	n, err := s.obj.Write(b)
	s.err = err
	return n, err
}

// PutData stores data as an object and returns its id, as PutObject
// does, without writing a temporary file when the object is there.
func (c *Cache) PutData(data []byte) (OutputID, error) {
	if id := Sum(data); c.keepIntact(id, int64(len(data))) {
		return id, nil
	}
	return c.PutObject(bytes.NewReader(data))
}

// keepIntact reports whether object id is stored intact, size bytes, and
// if so marks it used now (Trim keeps it while it keeps being stored) and
// queues it for the shared store. Storing it again would only replace a
// good copy, which may be open: Windows refuses a rename over an open
// file.
func (c *Cache) keepIntact(id OutputID, size int64) bool {
	name := c.ObjectPath(id)
	sum, n, err := filehash.Sum(name)
	if err != nil || n != size || OutputID(sum) != id {
		return false
	}
	now := c.Now()
	if os.Chtimes(name, now, now) != nil {
		return false
	}
	c.queueObject(id)
	return true
}

// Touch marks object id as used now, so that Trim keeps it.
func (c *Cache) Touch(id OutputID) {
	now := c.Now()
	os.Chtimes(c.ObjectPath(id), now, now)
}

// PutFile stores the content of the file at path as an object.
func (c *Cache) PutFile(path string) (OutputID, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return OutputID{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return OutputID{}, 0, err
	}
	id, err := c.PutObject(f)
	return id, st.Size(), err
}

// Put records out (an object already stored) as the result of id.
func (c *Cache) Put(id ActionID, out OutputID, size int64) error {
	return c.putEntry(id, out, size, nil)
}

// putEntry writes the entry for id, followed by the result itself when
// inline is not nil.
func (c *Cache) putEntry(id ActionID, out OutputID, size int64, inline []byte) error {
	data := append(c.entryLine(id, out, size), inline...)
	// Not synced: an entry is checked when read (its form, its action, the
	// digest of its result), so one a crash damaged is a miss, and an fsync
	// per entry was a third of a cold run's time.
	if err := atomicfile.WriteFileUnsynced(c.fileName(id, "a"), data, 0o666); err != nil {
		return fmt.Errorf("store cache entry: %w", err)
	}
	if inline == nil {
		c.queueObject(out) // stored earlier, perhaps before there was a remote
	}
	c.queueEntry(id, data)
	return nil
}

// entryLine is the first line of an entry file.
func (c *Cache) entryLine(id ActionID, out OutputID, size int64) []byte {
	line := fmt.Appendf(make([]byte, 0, entrySize+16), "v1 %s %s %20d %20d\n", id, out, size, c.Now().UnixNano())
	if len(line) != entrySize {
		panic("cache: bad entry size") // a size over 20 digits: not an int64
	}
	return line
}

// CopyObject writes object id to dst atomically, verifying its digest while
// copying; an object only the remote has is written to the cache and to
// dst as it arrives, verified on the way. A corrupt object leaves dst
// untouched and returns an error. With
// durable, dst is synced before it takes its name: a restored output that
// a run then reports is on disk; a worker's copy of a snapshot, checked
// against its digest each time it is used, is not worth an fsync per file,
// and where a run can sync all it restored at once (atomicfile.Batch), it
// does that instead.
func (c *Cache) CopyObject(id OutputID, dst string, perm os.FileMode, durable bool) error {
	write := atomicfile.Write
	if !durable {
		write = atomicfile.WriteUnsynced
	}
	src, err := os.Open(c.ObjectPath(id))
	if errors.Is(err, fs.ErrNotExist) && c.remote != nil {
		// One pass instead of fetching, then reading back through
		// SHA-256: a 2 MB image in 3 ms instead of 5.2
		// (BenchmarkCopyFetchedObject).
		if err := write(dst, perm, func(w io.Writer) error { return c.fetchObject(id, -1, w) }); err != nil {
			return fmt.Errorf("object %s: %w", id.Short(), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("object %s: %w", id.Short(), err)
	}
	defer src.Close()
	return write(dst, perm, func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), src); err != nil {
			return err
		}
		if OutputID(h.Sum(nil)) != id {
			return fmt.Errorf("object %s is corrupt (digest mismatch)", id.Short())
		}
		return nil
	})
}

// PutLog keeps the log of the run that made an entry, beside it (not in
// its result, whose digest is what the steps downstream key on: a log
// line with a time in it must not re-run them). It is advisory, and
// lives as long as the entry.
func (c *Cache) PutLog(id ActionID, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return atomicfile.WriteFileUnsynced(c.fileName(id, "l"), data, 0o666)
}

// Log returns the log stored by PutLog; fs.ErrNotExist when there is none.
func (c *Cache) Log(id ActionID) ([]byte, error) {
	return os.ReadFile(c.fileName(id, "l"))
}

// Key returns the key lines stored beside an entry (by lifeos before
// 2026-12-01: they are now kept with the workspace's key state).
func (c *Cache) Key(id ActionID) ([]string, error) {
	data, err := os.ReadFile(c.fileName(id, "k"))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), nil
}
