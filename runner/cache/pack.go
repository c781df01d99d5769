package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
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
	"github.com/lifeos/lifeos/internal/robustio"
)

// Packs hold many small entries in one file: the scores of a batch of
// 100,000 images are one file, not 100,000 entry files that each take a
// 4 KB block on disk. A pack is written once, under the SHA-256 of its
// content (<dir>/packs/<hex>.pack, through a temporary file and a rename,
// like objects), and never changed. Its layout:
//
//	"lifeos pack v1\n"
//	count                         uint32, little-endian
//	count index records, sorted by action:
//	  action [32]byte, data SHA-256 [32]byte, offset uint64, size uint32
//	the data of each record, at its offset from the start of the file
//
// A process reads the indexes of all packs on its first packed lookup (76
// bytes per entry) and the data of an entry with one pread, verified
// against its digest: a damaged record is a miss. Loose entries come
// first: a pack is only looked in when there is no entry file.
//
// Packs are for results that are cheap to recompute (scores): they are
// written when a batch is done, so an interrupted batch stores nothing.
// Results a crash must not lose one by one (a generated image) are loose
// entries, written as each is made. The entries of a bundle adopted from
// the shared store (AdoptEntries) are a pack too: a crash loses none of
// them, since the store still has them.

const (
	packHeader    = "lifeos pack v1\n"
	packRecord    = 32 + 32 + 8 + 4
	packIndexFrom = len(packHeader) + 4
	packsDir      = "packs"
)

// packFile is one pack, opened on first read.
type packFile struct {
	path    string
	mtime   time.Time
	open    sync.Once
	f       *os.File
	err     error
	touched bool // its mtime refreshed by this process (under packIndex.mu)
}

// packLoc is where a packed entry's data is.
type packLoc struct {
	pack *packFile
	off  int64
	size int64
	sum  OutputID
}

// packIndex maps the actions of every pack to their data.
type packIndex struct {
	once sync.Once
	mu   sync.RWMutex
	m    map[ActionID]packLoc
	n    int // packs
}

// PutPack stores results for many actions in one pack. ids and data are
// parallel; a repeated id keeps its first result.
func (c *Cache) PutPack(ids []ActionID, data [][]byte) error {
	return c.putPack(ids, data, true)
}

// putPack is PutPack; share says whether the entries are to be put in the
// shared store too (not when they came from it).
func (c *Cache) putPack(ids []ActionID, data [][]byte, share bool) error {
	if len(ids) != len(data) {
		return errors.New("put pack: ids and data differ in length")
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return bytes.Compare(ids[a][:], ids[b][:]) })
	order = slices.CompactFunc(order, func(a, b int) bool { return ids[a] == ids[b] })
	if len(order) == 0 {
		return nil
	}
	off := packIndexFrom + len(order)*packRecord
	total := off
	for _, i := range order {
		total += len(data[i])
	}
	buf := make([]byte, 0, total)
	buf = append(buf, packHeader...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(order)))
	sums := make([]OutputID, len(order))
	for k, i := range order {
		sums[k] = Sum(data[i])
		buf = append(buf, ids[i][:]...)
		buf = append(buf, sums[k][:]...)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(off))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(data[i])))
		off += len(data[i])
	}
	for _, i := range order {
		buf = append(buf, data[i]...)
	}
	sum := sha256.Sum256(buf)
	dir := filepath.Join(c.dir, packsDir)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("put pack: %w", err)
	}
	name := filepath.Join(dir, hex.EncodeToString(sum[:])+".pack")
	// Not synced, as objects are not: every read checks its record's digest.
	if err := atomicfile.WriteFileUnsynced(name, buf, 0o444); err != nil {
		return fmt.Errorf("put pack: %w", err)
	}
	c.loadPacks()
	if share && c.remote != nil {
		// Shared one entry each: another cache looks results up one by one.
		for k, i := range order {
			if len(data[i]) <= inlineMax {
				c.queueEntry(ids[i], append(c.entryLine(ids[i], sums[k], int64(len(data[i]))), data[i]...))
			} else if _, err := c.PutData(data[i]); err == nil {
				c.queueEntry(ids[i], c.entryLine(ids[i], sums[k], int64(len(data[i]))))
			}
		}
	}
	p := &packFile{path: name, mtime: c.Now(), touched: true}
	c.packs.mu.Lock()
	defer c.packs.mu.Unlock()
	c.packs.n++
	off = packIndexFrom + len(order)*packRecord
	for k, i := range order {
		c.packs.m[ids[i]] = packLoc{pack: p, off: int64(off), size: int64(len(data[i])), sum: sums[k]}
		off += len(data[i])
	}
	return nil
}

// loadPacks reads the index of every pack, once per process. A pack whose
// index cannot be read is skipped (cache verify removes it).
func (c *Cache) loadPacks() {
	c.packs.once.Do(func() {
		c.packs.m = map[ActionID]packLoc{}
		ents, err := os.ReadDir(filepath.Join(c.dir, packsDir))
		if err != nil {
			return
		}
		for _, e := range ents {
			if filepath.Ext(e.Name()) != ".pack" {
				continue
			}
			p := &packFile{path: filepath.Join(c.dir, packsDir, e.Name())}
			if info, err := e.Info(); err == nil {
				p.mtime = info.ModTime()
			}
			if readPackIndex(p, func(id ActionID, loc packLoc) { c.packs.m[id] = loc }) == nil {
				c.packs.n++
			}
		}
	})
}

// readPackIndex calls add for every record of the pack's index.
func readPackIndex(p *packFile, add func(ActionID, packLoc)) error {
	f, err := os.Open(p.path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, packIndexFrom)
	if _, err := io.ReadFull(f, head); err != nil {
		return err
	}
	if string(head[:len(packHeader)]) != packHeader {
		return errors.New("not a pack")
	}
	count := int(binary.LittleEndian.Uint32(head[len(packHeader):]))
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if int64(packIndexFrom+count*packRecord) > st.Size() {
		return errors.New("pack index past its end")
	}
	index := make([]byte, count*packRecord)
	if _, err := io.ReadFull(f, index); err != nil {
		return err
	}
	for k := range count {
		r := index[k*packRecord:]
		var id ActionID
		loc := packLoc{pack: p}
		copy(id[:], r[:32])
		copy(loc.sum[:], r[32:64])
		loc.off = int64(binary.LittleEndian.Uint64(r[64:72]))
		loc.size = int64(binary.LittleEndian.Uint32(r[72:76]))
		if loc.off+loc.size > st.Size() {
			return errors.New("pack record past its end")
		}
		add(id, loc)
	}
	return nil
}

// Close closes the pack files the cache has open. A long-lived process
// done with the cache calls it; the cache stays usable (packs are opened
// again when read).
func (c *Cache) Close() error {
	c.packs.mu.Lock()
	defer c.packs.mu.Unlock()
	var first error
	fresh := map[*packFile]*packFile{} // one new packFile per pack, opened again on its next read
	for id, loc := range c.packs.m {
		p := loc.pack
		if fresh[p] == nil {
			fresh[p] = &packFile{path: p.path, mtime: p.mtime, touched: p.touched}
			if p.f != nil {
				if err := p.f.Close(); err != nil && first == nil {
					first = err
				}
			}
		}
		loc.pack = fresh[p]
		c.packs.m[id] = loc
	}
	return first
}

// removePack deletes a pack file, first closing this process's handle to
// it and forgetting its entries: on Windows an open file keeps its name
// (and a new pack cannot take it) until its last handle is closed.
func (c *Cache) removePack(path string) error {
	c.packs.mu.Lock()
	for id, loc := range c.packs.m {
		if loc.pack.path == path {
			if loc.pack.f != nil {
				loc.pack.f.Close() // a read still in flight fails: a miss
			}
			delete(c.packs.m, id)
		}
	}
	c.packs.mu.Unlock()
	return os.Remove(path)
}

// getPacked returns a packed entry and its data, verified, and marks its
// pack used.
func (c *Cache) getPacked(id ActionID) (Entry, []byte, error) {
	e, data, p, err := c.readPacked(id)
	if err != nil {
		return e, data, err
	}
	c.packs.mu.Lock()
	touch := !p.touched && c.Now().Sub(p.mtime) > mtimeInterval
	p.touched = true
	c.packs.mu.Unlock()
	if touch {
		now := c.Now()
		os.Chtimes(p.path, now, now) // best effort: only trimming depends on it
	}
	return e, data, nil
}

// readPacked is getPacked without marking the pack used.
func (c *Cache) readPacked(id ActionID) (Entry, []byte, *packFile, error) {
	c.loadPacks()
	c.packs.mu.RLock()
	loc, ok := c.packs.m[id]
	c.packs.mu.RUnlock()
	if !ok {
		return Entry{}, nil, nil, fs.ErrNotExist
	}
	p := loc.pack
	p.open.Do(func() { p.f, p.err = robustio.Open(p.path) })
	if p.err != nil {
		return Entry{}, nil, nil, p.err
	}
	data := make([]byte, loc.size)
	if _, err := p.f.ReadAt(data, loc.off); err != nil {
		return Entry{}, nil, nil, fmt.Errorf("pack %s: %w", filepath.Base(p.path), err)
	}
	if Sum(data) != loc.sum {
		return Entry{}, nil, nil, fmt.Errorf("pack %s: record is corrupt (digest mismatch)", filepath.Base(p.path))
	}
	return Entry{Output: loc.sum, Size: loc.size, Time: p.mtime}, data, p, nil
}

// walkPacks calls fn for every pack file.
func (c *Cache) walkPacks(fn func(path string, info fs.FileInfo) error) error {
	ents, err := os.ReadDir(filepath.Join(c.dir, packsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".pack" {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if err := fn(filepath.Join(c.dir, packsDir, e.Name()), info); err != nil {
			return err
		}
	}
	return nil
}

// verifyPack checks every record of a pack; the first problem found.
func verifyPack(path string) (entries int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:])+".pack" != filepath.Base(path) {
		return 0, errors.New("content does not match its name (corrupt pack)")
	}
	err = readPackIndex(&packFile{path: path}, func(_ ActionID, loc packLoc) {
		entries++
	})
	return entries, err
}
