// Package atomicfile writes files so that a reader never sees a partial one:
// the data goes to a temporary file in the same directory, is synced, and is
// renamed over the destination (restic's local.Save, Go's cache.putIndexEntry).
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lifeos/lifeos/internal/robustio"
)

// WriteFile atomically replaces name with data. Parent directories are
// created. On any error the temporary file is removed and name is untouched.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	return Write(name, perm, writeAll(data))
}

// writeAll is a fill that writes data.
func writeAll(data []byte) func(w io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// WriteFileUnsynced atomically replaces name with data without syncing
// it: a reader never sees a partial file, but a crash may lose the write.
// For what is only informational (who holds a lock) or is verified on
// every read (a damaged entry is a miss), where an fsync would cost more
// than it saves.
func WriteFileUnsynced(name string, data []byte, perm os.FileMode) error {
	return WriteUnsynced(name, perm, writeAll(data))
}

// WriteUnsynced is Write without the sync (see WriteFileUnsynced).
func WriteUnsynced(name string, perm os.FileMode, fill func(w io.Writer) error) error {
	return write(name, perm, fill, false)
}

// Write atomically replaces name with what fill writes. fill must not retain w.
func Write(name string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	return write(name, perm, fill, true)
}

func write(name string, perm os.FileMode, fill func(w io.Writer) error, sync bool) error {
	p, err := Create(name, "", perm)
	if err != nil {
		return err
	}
	return p.Commit(fill, sync)
}

// Pending is a file being written atomically whose temporary file exists
// before its data does: a run creates its record's while it runs, so that
// its end waits only for the write.
type Pending struct {
	f         *os.File
	name, tmp string
}

// Create makes the folder of name and a temporary file for it, beside it
// or in tmpDir when that is not "" (on the same file system: where a killed
// writer's leftover is looked for in one place rather than in every folder
// of its kind). Commit or Abort it.
func Create(name, tmpDir string, perm os.FileMode) (*Pending, error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	if tmpDir == "" {
		tmpDir = dir
	} else if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return nil, err
	}
	f, err := createTemp(tmpDir, TempPattern(filepath.Base(name)), perm)
	if err != nil {
		return nil, err
	}
	return &Pending{f: f, name: name, tmp: f.Name()}, nil
}

// Commit fills the file, syncs it when sync is set, and renames it into
// place; on failure the temporary file is removed and name is untouched.
func (p *Pending) Commit(fill func(w io.Writer) error, sync bool) (err error) {
	defer func() {
		if err != nil {
			p.Abort()
			// Name the file being written, not its temporary stand-in.
			var pe *fs.PathError
			if errors.As(err, &pe) && pe.Path == p.tmp {
				pe.Path = p.name
			}
		}
	}()
	if err := fill(p.f); err != nil {
		return err
	}
	if sync {
		if err := p.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", p.name, err)
		}
	}
	if err := p.f.Close(); err != nil {
		return err
	}
	return robustio.Rename(p.tmp, p.name)
}

// Abort removes the temporary file.
func (p *Pending) Abort() {
	p.f.Close()
	os.Remove(p.tmp)
}

// createTemp is os.CreateTemp with the file's permissions given, so that
// the umask applies to them as it does to any file a program creates
// (os.CreateTemp makes 0600, and a chmod afterwards would ignore the
// umask: reports were world-writable whatever the user's umask).
func createTemp(dir, pattern string, perm os.FileMode) (*os.File, error) {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	for range 100 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, pattern), Err: fs.ErrExist}
}

// Temporary files have one recognisable name, .<name>.tmp-<pid>-<random>,
// so that what a killed process left behind can be found and removed,
// and what a live one is writing cannot be mistaken for it.

// TempPattern is the os.CreateTemp pattern of a temporary file for base.
func TempPattern(base string) string {
	return "." + base + ".tmp-" + strconv.Itoa(os.Getpid()) + "-*"
}

// TempOwner returns the process id in a temporary file's name, and false
// when name is not a temporary file.
func TempOwner(name string) (int, bool) {
	i := strings.LastIndex(name, ".tmp-")
	if !strings.HasPrefix(name, ".") || i < 1 {
		return 0, false
	}
	rest := name[i+len(".tmp-"):]
	j := strings.IndexByte(rest, '-')
	if j < 1 {
		return 0, false
	}
	pid, err := strconv.Atoi(rest[:j])
	return pid, err == nil && pid > 0
}

// Sweep removes the temporary files in dir (and below it when recursive)
// whose process is gone, and returns their paths, sorted. A missing dir is
// not an error. Directories are read in the order the system gives (a
// folder of 10,000 images is not sorted to find no leftover in it).
func Sweep(dir string, recursive bool) ([]string, error) {
	removed, _, err := SweepClean(dir, recursive)
	return removed, err
}

// SweepClean is Sweep that also reports whether dir held no temporary
// file at all, of a dead process or a live one.
func SweepClean(dir string, recursive bool) (removed []string, clean bool, err error) {
	found := 0
	var errs []error
	var sweep func(dir string) error
	sweep = func(dir string) error {
		f, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		ents, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if e.IsDir() {
				if recursive {
					if err := sweep(p); err != nil {
						errs = append(errs, err)
					}
				}
				continue
			}
			pid, ok := TempOwner(e.Name())
			if ok {
				found++
			}
			if ok && !processAlive(pid) {
				if err := os.Remove(p); err != nil {
					errs = append(errs, err)
				} else {
					removed = append(removed, p)
				}
			}
		}
		return nil
	}
	err = errors.Join(sweep(dir), errors.Join(errs...))
	slices.Sort(removed)
	return removed, found == 0 && err == nil, err
}

// AppendJSONLine appends v as one line to a JSON-lines file: one write on a
// file opened for appending, then fsync, so concurrent appenders never
// interleave. If a crash left a last line without its newline, the new
// line starts on a line of its own, and readers skip the torn one.
func AppendJSONLine(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	line := append(b, '\n')
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
