package cache

import (
	"bufio"
	"bytes"
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
// modified again within the file system's timestamp granularity without its
// stat changing, so its digest is not remembered (git's "racily clean" rule).
const racyWindow = 2 * time.Second

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
	mu    sync.Mutex
	m     map[string]statEntry
	dirty bool
	now   func() time.Time
}

type statEntry struct {
	size, mtime int64
	ino         uint64
	sum         OutputID
}

const statCacheHeader = "lifeos statcache v1\n"

// OpenStatCache returns the stat cache stored at path, read on first use.
// A missing or malformed file gives an empty cache. An empty path gives a
// cache that is never saved.
func OpenStatCache(path string) *StatCache {
	return &StatCache{path: path, m: map[string]statEntry{}, now: time.Now}
}

func (sc *StatCache) load() {
	if sc.path == "" {
		return
	}
	data, err := os.ReadFile(sc.path)
	if err != nil || !bytes.HasPrefix(data, []byte(statCacheHeader)) {
		return
	}
	data = data[len(statCacheHeader):]
	// One line per file: <sha256> <size> <mtime> <ino> <path>
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := data[:i]
		data = data[i+1:]
		var e statEntry
		f := bytes.SplitN(line, []byte(" "), 5)
		if len(f) != 5 || parseHex(e.sum[:], string(f[0])) != nil {
			continue
		}
		var err1, err2, err3 error
		e.size, err1 = strconv.ParseInt(string(f[1]), 10, 64)
		e.mtime, err2 = strconv.ParseInt(string(f[2]), 10, 64)
		e.ino, err3 = strconv.ParseUint(string(f[3]), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		sc.m[string(f[4])] = e
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
	return sc.SumStamp(path, st.Size(), st.ModTime().UnixNano(), Inode(st))
}

// SumStamp is SumInfo for a file whose stat the caller knows (size, mtime
// in Unix nanoseconds, inode): a file confirmed earlier in the same run
// is not stat'ed again.
func (sc *StatCache) SumStamp(path string, size, mtime int64, ino uint64) (OutputID, int64, error) {
	sc.once.Do(sc.load)
	sc.mu.Lock()
	e, ok := sc.m[path]
	sc.mu.Unlock()
	if ok && e.size == size && e.mtime == mtime && e.ino == ino {
		return e.sum, e.size, nil
	}
	digest, n, err := filehash.Sum(path)
	if err != nil {
		return OutputID{}, 0, err
	}
	sum := OutputID(digest)
	if sc.now().Sub(time.Unix(0, mtime)) > racyWindow && n == size {
		sc.mu.Lock()
		sc.m[path] = statEntry{size: n, mtime: mtime, ino: ino, sum: sum}
		sc.dirty = true
		sc.mu.Unlock()
	}
	return sum, n, nil
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
	sc.m[path] = statEntry{size: st.Size(), mtime: st.ModTime().UnixNano(), ino: Inode(st), sum: sum}
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
		bw := bufio.NewWriter(w)
		bw.WriteString(statCacheHeader)
		for _, p := range paths {
			e := sc.m[p]
			fmt.Fprintf(bw, "%s %d %d %d %s\n", e.sum, e.size, e.mtime, e.ino, p)
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	sc.dirty = false
	return nil
}
