package cache

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/filehash"
)

// racyWindow: a file modified this recently before it was hashed may be
// modified again without its stat changing, so its digest is not
// remembered.
const racyWindow = filehash.RacyWindow

// StatCache remembers the SHA-256 of files by (path, size, mtime, inode), so
// unchanged files are not re-hashed on every run (git's index, Go's
// fileHash cache). It is a hint: a stale or unreadable stat cache only costs
// hashing time.
//
// A StatCache is safe for concurrent use. Save writes it back atomically;
// concurrent processes may overwrite each other's additions, which is harmless.
type StatCache struct {
	path  string
	once  sync.Once // loads the file on first use: a run served by memos never needs it
	mu    sync.RWMutex
	m     map[string]statEntry
	dirty bool
	now   func() time.Time
	// day is when it was loaded: the day of every use this process
	// records (a run that crosses midnight records the earlier one).
	day int32
}

type statEntry struct {
	st  filehash.Stamp
	sum OutputID
	day int32 // the last day (Unix days) a run looked it up or added it
}

const (
	statCacheHeader   = "lifeos statcache v2\n"
	statCacheHeaderV1 = "lifeos statcache v1\n" // lines without a day: read as used today
)

// statMaxDays: a file no run has looked up for this long (the cache's
// DefaultMaxAge) is forgotten. Batches come and go: without this, every
// file ever hashed stayed, and every run that hashes reads them all.
const statMaxDays = int32(DefaultMaxAge / (24 * time.Hour))

// OpenStatCache returns the stat cache stored at path, read on first use.
// A missing or malformed file gives an empty cache. An empty path gives a
// cache that is never saved.
func OpenStatCache(path string) *StatCache {
	return &StatCache{path: path, m: map[string]statEntry{}, now: time.Now}
}

// Preload reads the file in the background, so that listing a folder and
// loading the stat cache overlap; lookups wait for it.
func (sc *StatCache) Preload() { go sc.once.Do(sc.load) }

func (sc *StatCache) load() {
	sc.day = int32(sc.now().Unix() / 86400)
	if sc.path == "" {
		return
	}
	data, err := os.ReadFile(sc.path)
	if err != nil {
		return
	}
	v2 := bytes.HasPrefix(data, []byte(statCacheHeader))
	if !v2 && !bytes.HasPrefix(data, []byte(statCacheHeaderV1)) {
		return
	}
	data = data[len(statCacheHeader):] // both headers have one length
	today := sc.day
	sc.m = make(map[string]statEntry, bytes.Count(data, []byte{'\n'}))
	// One line per file: <sha256> <size> <mtime> <ino> <day> <path>
	for len(data) > 0 {
		line, rest, ok := bytes.Cut(data, []byte{'\n'})
		if !ok {
			break
		}
		data = rest
		var e statEntry
		if len(line) < 2*len(e.sum)+1 || line[2*len(e.sum)] != ' ' {
			continue
		}
		if _, err := hex.Decode(e.sum[:], line[:2*len(e.sum)]); err != nil {
			continue
		}
		line = line[2*len(e.sum)+1:]
		e.st, line, ok = filehash.CutStamp(line)
		if !ok {
			continue
		}
		e.day = today
		if v2 {
			day, rest, ok := bytes.Cut(line, []byte{' '})
			d, err := strconv.ParseInt(string(day), 10, 32)
			if !ok || err != nil {
				continue
			}
			e.day, line = int32(d), rest
		}
		if len(line) == 0 {
			continue
		}
		if today-e.day > statMaxDays {
			sc.dirty = true // saved without it
			continue
		}
		sc.m[string(line)] = e
	}
}

// Sum returns the SHA-256 of the file at path (which should be absolute and
// clean) and its size, hashing it only if its stat changed.
func (sc *StatCache) Sum(path string) (OutputID, int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return OutputID{}, 0, err
	}
	return sc.SumInfo(path, st)
}

// SumInfo is Sum for a file the caller has just stat'ed.
func (sc *StatCache) SumInfo(path string, st fs.FileInfo) (OutputID, int64, error) {
	if st.IsDir() {
		return OutputID{}, 0, fmt.Errorf("%s is a directory", path)
	}
	return sc.SumStamp(path, st.Size(), st.ModTime().UnixNano(), filehash.Inode(st))
}

// SumStamp is SumInfo for a file whose stat the caller knows (size, mtime
// in Unix nanoseconds, inode): a file confirmed earlier in the same run
// is not stat'ed again.
func (sc *StatCache) SumStamp(path string, size, mtime int64, ino uint64) (OutputID, int64, error) {
	// The stamp may be older than the file (confirmed earlier in the run):
	// read to its end.
	sum, n, _, err := sc.sumStamp(path, size, mtime, ino, -1, nil)
	return sum, n, err
}

// SumLook is Sum for a caller that also needs to read the file (an
// image's header, a caption's text): when the file has to be hashed, look
// reads it from its start in the same pass (filehash.SumLook) and looked is
// true; when the stat cache knows the file, look is not called. st is the
// file's stamp, taken before it was read.
func (sc *StatCache) SumLook(path string, look func(io.Reader) error) (sum OutputID, st filehash.Stamp, looked bool, err error) {
	sc.once.Do(sc.load)
	sc.mu.RLock()
	_, known := sc.m[path]
	sc.mu.RUnlock()
	var dir bool
	if !known {
		// No stamp to compare: the file is read whatever its stat says,
		// so it is opened first and stat'ed through its descriptor.
		var digest [32]byte
		var n int64
		digest, st, dir, n, err = filehash.SumLookStat(path, look)
		if err == nil && !dir {
			sum = OutputID(digest)
			sc.note(path, st, n, sum)
			return sum, st, look != nil, nil
		}
	} else {
		st, dir, err = filehash.Stat(path)
	}
	if err != nil {
		return OutputID{}, st, !known && look != nil, err
	}
	if dir {
		return OutputID{}, st, false, fmt.Errorf("%s is a directory", path)
	}
	sum, _, looked, err = sc.sumStamp(path, st.Size, st.Mtime, st.Ino, st.Size, look)
	return sum, st, looked, err
}

// sumStamp hashes path unless its stamp is known, reading at most limit
// bytes when limit >= 0 (filehash.SumLookSize).
func (sc *StatCache) sumStamp(path string, size, mtime int64, ino uint64, limit int64, look func(io.Reader) error) (OutputID, int64, bool, error) {
	sc.once.Do(sc.load)
	sc.mu.RLock()
	e, ok := sc.m[path]
	sc.mu.RUnlock()
	if ok && e.st == (filehash.Stamp{Size: size, Mtime: mtime, Ino: ino}) {
		if e.day != sc.day { // once a day per file: the file is written back
			sc.mu.Lock()
			if cur, ok := sc.m[path]; ok && cur.st == e.st {
				cur.day = sc.day
				sc.m[path] = cur
				sc.dirty = true
			}
			sc.mu.Unlock()
		}
		return e.sum, size, false, nil
	}
	digest, n, err := filehash.SumLookSize(path, limit, look)
	if err != nil {
		return OutputID{}, 0, look != nil, err
	}
	sum := OutputID(digest)
	sc.note(path, filehash.Stamp{Size: size, Mtime: mtime, Ino: ino}, n, sum)
	return sum, n, look != nil, nil
}

// note keeps sum as the digest of the file at path with stamp st, read
// whole (n bytes), unless it was modified too recently to be trusted.
func (sc *StatCache) note(path string, st filehash.Stamp, n int64, sum OutputID) {
	if sc.now().Sub(time.Unix(0, st.Mtime)) > racyWindow && n == st.Size {
		sc.mu.Lock()
		sc.m[path] = statEntry{st: st, sum: sum, day: sc.day}
		sc.dirty = true
		sc.mu.Unlock()
	}
}

// Remember records that path, as it is now on disk, has digest sum; used
// after writing a file whose content is known (a restored cache object).
func (sc *StatCache) Remember(path string, sum OutputID) {
	st, err := os.Stat(path)
	if err != nil || sc.now().Sub(st.ModTime()) <= racyWindow {
		return
	}
	sc.once.Do(sc.load)
	sc.mu.Lock()
	sc.m[path] = statEntry{st: filehash.Stamp{Size: st.Size(), Mtime: st.ModTime().UnixNano(), Ino: filehash.Inode(st)}, sum: sum, day: sc.day}
	sc.dirty = true
	sc.mu.Unlock()
}

// Save writes the stat cache back if it changed.
func (sc *StatCache) Save() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.dirty || sc.path == "" {
		return nil
	}
	paths := make([]string, 0, len(sc.m))
	for p := range sc.m {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	// Not synced: the stat cache only spares re-hashing, and a damaged
	// one is dropped when read.
	err := atomicfile.WriteUnsynced(sc.path, 0o666, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString(statCacheHeader)
		var line []byte
		for _, p := range paths {
			e := sc.m[p]
			line = hex.AppendEncode(line[:0], e.sum[:])
			line = append(line, ' ')
			line = e.st.AppendText(line)
			line = strconv.AppendInt(line, int64(e.day), 10)
			line = append(line, ' ')
			line = append(line, p...)
			line = append(line, '\n')
			bw.Write(line)
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	sc.dirty = false
	return nil
}
