package cache

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/par"
)

// Result is the object a step execution stores: its outputs (a JSON value)
// and the files it produced. The cache knows this shape so that Trim keeps
// the file objects a kept result refers to.
type Result struct {
	Outputs json.RawMessage `json:"outputs,omitempty"`
	// OutputsObject holds the outputs instead, when they are large (every
	// item of a batch): one object that memos and run records refer to
	// as well, not a copy in each.
	OutputsObject OutputID `json:"outputs_object,omitzero"`
	OutputsSize   int64    `json:"outputs_size,omitempty"`
	Files         []File   `json:"files,omitempty"`
	// Dirs are the directories below the owned roots, empty ones included;
	// Roots are the declared output paths that the result owns whole:
	// restoring it removes what is under them and not in Files or Dirs.
	Dirs  []string `json:"dirs,omitempty"`
	Roots []string `json:"roots,omitempty"`
}

// File is one produced file of a Result, stored as an object.
type File struct {
	Path   string   `json:"path"` // slash-separated, relative to the workspace root
	Object OutputID `json:"sha256"`
	Size   int64    `json:"size"`
	Mode   uint32   `json:"mode"`
	// Data is the content of a small file (InlineFileMax bytes at most),
	// kept in the result itself instead of as an object: one file created
	// per element, not two. Its digest is still Object.
	Data []byte `json:"data,omitempty"`
}

// encodeBufs are EncodeResult's writers, reused: a 64 KB buffer made for
// every result stored was 50 MB of fresh heap over a cold foreach of
// 1,000 elements, whose results are mostly a few hundred bytes.
var encodeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// EncodeResult writes res as json.Marshal writes it, with n files in
// place of res.Files, file(i) making the i-th shortly before the encoding
// reaches it: the small files of a result are kept inside it, and 100,000
// of them are never in memory at once. file is called from two goroutines
// at a time (reading 100,000 small files is system calls, which two cores
// make in half the time); the first error in file order is returned.
func EncodeResult(w io.Writer, res *Result, n int, file func(i int) (File, error)) error {
	bw := encodeBufs.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // holds no writer while pooled
		encodeBufs.Put(bw)
	}()
	first := true
	key := func(name string) {
		if first {
			bw.WriteByte('{')
		} else {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString(`"` + name + `":`)
	}
	field := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		key(name)
		_, err = bw.Write(b)
		return err
	}
	// The order and omissions of Result's fields and tags.
	if len(res.Outputs) > 0 {
		if err := field("outputs", res.Outputs); err != nil {
			return err
		}
	}
	if res.OutputsObject != (OutputID{}) {
		if err := field("outputs_object", res.OutputsObject); err != nil {
			return err
		}
	}
	if res.OutputsSize != 0 {
		if err := field("outputs_size", res.OutputsSize); err != nil {
			return err
		}
	}
	// In blocks, each made in parallel then encoded in order.
	const block = 512
	made := make([]File, min(n, block))
	var b []byte
	for start := 0; start < n; start += block {
		blk := made[:min(block, n-start)]
		err := par.For(context.Background(), len(blk), 2, func(i int) (err error) {
			blk[i], err = file(start + i)
			return err
		})
		if err != nil {
			return err
		}
		for i := range blk {
			if start+i == 0 {
				key("files")
				bw.WriteByte('[')
			} else {
				bw.WriteByte(',')
			}
			if b, err = appendFile(b[:0], &blk[i]); err != nil {
				return err
			}
			if _, err := bw.Write(b); err != nil {
				return err
			}
			blk[i] = File{} // its data is written: let it go
		}
	}
	if n > 0 {
		bw.WriteByte(']')
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"dirs", res.Dirs}, {"roots", res.Roots}} {
		if len(l.v) > 0 {
			if err := field(l.name, l.v); err != nil {
				return err
			}
		}
	}
	if first {
		bw.WriteByte('{')
	}
	bw.WriteByte('}')
	return bw.Flush()
}

// appendFile appends f's JSON as json.Marshal writes it, without
// reflection for the paths that need no escaping (all but a few): 100,000
// files of a filter spent a tenth of its time in json.Marshal.
func appendFile(b []byte, f *File) ([]byte, error) {
	if !plainJSON(f.Path) {
		j, err := json.Marshal(f)
		return append(b, j...), err
	}
	b = append(b, `{"path":"`...)
	b = append(b, f.Path...)
	b = append(b, `","sha256":"`...)
	b = hex.AppendEncode(b, f.Object[:])
	b = append(b, `","size":`...)
	b = strconv.AppendInt(b, f.Size, 10)
	b = append(b, `,"mode":`...)
	b = strconv.AppendUint(b, uint64(f.Mode), 10)
	if len(f.Data) > 0 {
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, f.Data)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// plainJSON reports whether json.Marshal writes s as it is between quotes:
// printable ASCII, without a quote, a backslash or what it escapes for
// HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// ReadSized reads a file of size bytes (an output small enough to be
// kept inside its result) into a buffer of that size, with plain system
// calls where they are cheaper (the files of a 100,000-image filter are
// read each time it runs); false if it cannot, or is not that size now.
func ReadSized(name string, size int64) ([]byte, bool) {
	buf := make([]byte, size+1) // one more: a file that grew is noticed
	n, _, err := readSmall(name, buf)
	if err != nil || int64(n) != size {
		return nil, false
	}
	return buf[:n:n], true
}

// InlineFileMax is the largest output file kept inside its result.
const InlineFileMax = 4 << 10

// MarshalText encodes the id as hex, so JSON records stay readable.
func (id OutputID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the hex form.
func (id *OutputID) UnmarshalText(b []byte) error {
	v, err := ParseOutputID(string(b))
	*id = v
	return err
}

// Stats describes the cache's content.
type Stats struct {
	Entries     int // loose and packed
	Packs       int // files holding Packed of the entries
	Packed      int
	Objects     int
	ObjectBytes int64
	Oldest      time.Time // least recently used entry
	Newest      time.Time
}

// Stats walks the cache directory.
func (c *Cache) Stats() (Stats, error) {
	var s Stats
	err := c.walk(func(path, kind string, info fs.FileInfo) error {
		switch kind {
		case "a":
			s.Entries++
			mt := info.ModTime()
			if s.Oldest.IsZero() || mt.Before(s.Oldest) {
				s.Oldest = mt
			}
			if mt.After(s.Newest) {
				s.Newest = mt
			}
		case "d":
			s.Objects++
			s.ObjectBytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	err = c.walkPacks(func(path string, info fs.FileInfo) error {
		n := 0
		if readPackIndex(&packFile{path: path}, func(ActionID, packLoc) { n++ }) != nil {
			return nil
		}
		s.Packs++
		s.Packed += n
		s.Entries += n
		s.ObjectBytes += info.Size()
		if mt := info.ModTime(); s.Oldest.IsZero() || mt.Before(s.Oldest) {
			s.Oldest = mt
		}
		if mt := info.ModTime(); mt.After(s.Newest) {
			s.Newest = mt
		}
		return nil
	})
	return s, err
}

// walk calls fn for every entry ("a") and object ("d") file.
func (c *Cache) walk(fn func(path, kind string, info fs.FileInfo) error) error {
	subdirs, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	for _, sd := range subdirs {
		if !sd.IsDir() || len(sd.Name()) != 2 {
			continue
		}
		dir := filepath.Join(c.dir, sd.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			name := f.Name()
			if len(name) != hexSize+2 || name[hexSize] != '-' {
				continue
			}
			info, err := f.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed concurrently
				}
				return err
			}
			if err := fn(filepath.Join(dir, name), name[hexSize+1:], info); err != nil {
				return err
			}
		}
	}
	return nil
}

// TrimReport says what Trim removed.
type TrimReport struct {
	Entries, Objects, Packs int
	Bytes                   int64
}

// Trim removes entries not used within maxAge, then objects that no remaining
// entry refers to (directly or as a file of a Result) and that are older than
// maxAge themselves, so an object just written by a concurrent run is kept.
func (c *Cache) Trim(maxAge time.Duration) (TrimReport, error) {
	var r TrimReport
	cutoff := c.Now().Add(-maxAge)
	live := map[OutputID]bool{}
	err := c.walk(func(path, kind string, info fs.FileInfo) error {
		if kind != "a" {
			return nil
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(path); err == nil {
				r.Entries++
			}
			return nil
		}
		id, err := ParseActionID(strings.TrimSuffix(filepath.Base(path), "-a"))
		if err != nil {
			return nil
		}
		// Results are small JSON; a larger object is a plain file.
		e, data, err := c.localResult(id, 1<<20)
		if e.Output != (OutputID{}) {
			live[e.Output] = true
		}
		if err == nil && data != nil {
			var res Result
			if json.Unmarshal(data, &res) == nil {
				for _, f := range res.Files {
					live[f.Object] = true
				}
				if res.OutputsObject != (OutputID{}) {
					live[res.OutputsObject] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("trim cache: %w", err)
	}
	err = c.walk(func(path, kind string, info fs.FileInfo) error {
		if kind == "k" || kind == "l" {
			// Key lines and logs live as long as their entry.
			if _, err := os.Stat(strings.TrimSuffix(path, "-"+kind) + "-a"); errors.Is(err, fs.ErrNotExist) {
				os.Remove(path)
			}
			return nil
		}
		if kind != "d" || !info.ModTime().Before(cutoff) {
			return nil
		}
		id, err := ParseOutputID(strings.TrimSuffix(filepath.Base(path), "-d"))
		if err != nil || live[id] {
			return nil
		}
		if err := os.Remove(path); err == nil {
			r.Objects++
			r.Bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("trim cache: %w", err)
	}
	// A pack is used as a whole: it goes when none of its entries was
	// used within maxAge (a hit refreshes its mtime, as for entries).
	err = c.walkPacks(func(path string, info fs.FileInfo) error {
		if info.ModTime().Before(cutoff) {
			if err := c.removePack(path); err == nil {
				r.Packs++
				r.Bytes += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("trim cache: %w", err)
	}
	c.removeStaleTemp()
	if r.Entries+r.Packs > 0 {
		c.markTrimmed()
	}
	return r, nil
}

// trimmedFile's mtime is when Trim or Verify last removed something: memos
// recorded before it may promise results the cache no longer holds.
const trimmedFile = "trimmed"

// TrimStamp is when entries were last removed (Unix nanoseconds), 0 if
// never.
func (c *Cache) TrimStamp() int64 {
	st, err := os.Stat(filepath.Join(c.dir, trimmedFile))
	if err != nil {
		return 0
	}
	return st.ModTime().UnixNano()
}

// markTrimmed records that entries were removed now.
func (c *Cache) markTrimmed() {
	name := filepath.Join(c.dir, trimmedFile)
	atomicfile.WriteFileUnsynced(name, []byte("entries were removed at this file's mtime\n"), 0o666)
	now := c.Now()
	os.Chtimes(name, now, now)
}

func (c *Cache) removeStaleTemp() {
	tmpDir := filepath.Join(c.dir, "tmp")
	files, _ := os.ReadDir(tmpDir)
	for _, f := range files {
		if info, err := f.Info(); err == nil && c.Now().Sub(info.ModTime()) > trimInterval {
			os.Remove(filepath.Join(tmpDir, f.Name()))
		}
	}
}

// trimStampFile holds the Unix time of the last trim.
const trimStampFile = "trim.txt"

// writeTrimStamp records that the cache was trimmed now.
func (c *Cache) writeTrimStamp() error {
	return atomicfile.WriteFile(filepath.Join(c.dir, trimStampFile), []byte(strconv.FormatInt(c.Now().Unix(), 10)+"\n"), 0o666)
}

// MaybeTrim runs Trim(DefaultMaxAge) if it has not run within trimInterval,
// as recorded in <dir>/trim.txt, and reports whether it did. Errors are
// ignored: trimming is housekeeping, and the next run tries again.
func (c *Cache) MaybeTrim() bool {
	now := c.Now()
	if data, err := os.ReadFile(filepath.Join(c.dir, trimStampFile)); err == nil {
		if t, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			if now.Sub(time.Unix(t, 0)) < trimInterval {
				return false
			}
		}
	}
	if _, err := c.Trim(DefaultMaxAge); err != nil {
		return false
	}
	// What killed processes were writing: the cache may be shared by
	// live runs of other workspaces, whose files the sweep keeps.
	atomicfile.Sweep(c.dir, true)
	c.writeTrimStamp()
	return true
}

// Problem is one defect found by Verify.
type Problem struct {
	Path   string
	Reason string
}

// Verify re-hashes every object and checks every entry. Corrupt objects and
// unusable entries are removed (they would only ever be misses) and reported.
func (c *Cache) Verify() (checked int, problems []Problem, err error) {
	// Objects first, so an entry whose object was just found corrupt is
	// reported and removed too.
	err = c.walk(func(path, kind string, info fs.FileInfo) error {
		if kind != "d" {
			return nil
		}
		checked++
		got, herr := filehash.Hex(path)
		if herr != nil || got != filepath.Base(path)[:hexSize] {
			reason := "content does not match its name (corrupt object)"
			if herr != nil {
				reason = herr.Error()
			}
			problems = append(problems, Problem{path, reason})
			os.Remove(path)
		}
		return nil
	})
	if err != nil {
		return checked, problems, fmt.Errorf("verify cache: %w", err)
	}
	err = c.walkPacks(func(path string, info fs.FileInfo) error {
		n, verr := verifyPack(path)
		checked += max(n, 1)
		if verr != nil {
			problems = append(problems, Problem{path, verr.Error()})
			c.removePack(path)
		}
		return nil
	})
	if err != nil {
		return checked, problems, fmt.Errorf("verify cache: %w", err)
	}
	err = c.walk(func(path, kind string, info fs.FileInfo) error {
		if kind != "a" {
			return nil
		}
		checked++
		id, perr := ParseActionID(filepath.Base(path)[:hexSize])
		if perr != nil {
			return nil
		}
		_, _, gerr := c.localResult(id, math.MaxInt64)
		if gerr != nil {
			problems = append(problems, Problem{path, gerr.Error()})
			os.Remove(path)
		}
		return nil
	})
	if err != nil {
		return checked, problems, fmt.Errorf("verify cache: %w", err)
	}
	if len(problems) > 0 {
		c.markTrimmed()
	}
	return checked, problems, nil
}
