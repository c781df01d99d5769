package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/robustio"
	"github.com/lifeos/lifeos/runner/cache"
)

// Declared outputs (steps.Deps.Writes) belong to lifeos. After a success
// their tree is stored: every file, every directory and the declared roots.
// On a hit each root is made identical to the stored tree: missing and
// changed files are put back, files and directories the tree lacks are
// removed. After a failure they are moved to .lifeos/failed/, never deleted
// and never left in place. So the files on disk are always what the run
// reports.

// outputTree collects what the declared outputs hold after a success: the
// files (following links, as pathglob does), the directories below literal
// roots, and those roots.
func (e *engine) outputTree(writes []string) (files []string, dirs []string, roots []string, err error) {
	if files, err = pathglob.Files(e.plan.Root, writes); err != nil {
		return nil, nil, nil, err
	}
	for _, w := range writes {
		if pathglob.Check(w) != nil || hasGlobMeta(w) {
			continue // a glob owns its matches, not a tree
		}
		root := path.Clean(filepath.ToSlash(w))
		roots = append(roots, root)
		err := filepath.WalkDir(e.abs(root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				rel, _ := filepath.Rel(e.plan.Root, p)
				dirs = append(dirs, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	return files, dirs, roots, nil
}

// linkFrom hard-links f into abs from another scratch copy of the
// workspace (RunOptions.LinkFrom) that holds it with the stored content
// and mode, and reports whether it did. Only where a file tells how many
// names it has: unshare must find the linked ones before a step writes.
func (e *engine) linkFrom(abs string, f cache.File) bool {
	for _, other := range e.o.LinkFrom {
		if linkChecked(e.stat, pathglob.Abs(other, f.Path), abs, f.Object, func(st fs.FileInfo) bool {
			_, counted := filehash.Links(st)
			return counted && st.Mode().Perm() == os.FileMode(f.Mode).Perm() && st.Size() == f.Size
		}) {
			return true
		}
	}
	return false
}

// unshare gives each declared output file of a step about to run in a
// scratch copy that has another name (linkFrom made it, in this run or
// one before) a copy of its own: a command that writes it in place must
// not change another copy's file. A literal output costs one stat.
func (e *engine) unshare(writes []string) error {
	if !e.o.Scratch {
		return nil
	}
	for _, w := range writes {
		if pathglob.Outside(w) {
			continue // not in the copy
		}
		if !hasGlobMeta(w) {
			st, err := os.Lstat(e.abs(w))
			if err != nil {
				continue // not made yet
			}
			if !st.IsDir() {
				if err := e.unshareFile(w, st); err != nil {
					return err
				}
				continue
			}
		}
		files, err := pathglob.Files(e.plan.Root, []string{w})
		if err != nil {
			return fmt.Errorf("unshare %s: %w", w, err)
		}
		for _, rel := range files {
			if st, err := os.Lstat(e.abs(rel)); err == nil {
				if err := e.unshareFile(rel, st); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// unshareFile gives rel, stat'ed as st, a file of its own when it is a
// regular file with more than one name.
func (e *engine) unshareFile(rel string, st fs.FileInfo) error {
	if n, ok := filehash.Links(st); !ok || n < 2 || !st.Mode().IsRegular() {
		return nil
	}
	abs := e.abs(rel)
	data, err := os.ReadFile(abs)
	if err != nil {
		return fmt.Errorf("unshare %s: %w", rel, err)
	}
	if err := atomicfile.WriteFileUnsynced(abs, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("unshare %s: %w", rel, err)
	}
	return nil
}

func hasGlobMeta(p string) bool { return strings.ContainsAny(p, "*?[{\\") }

func (e *engine) abs(rel string) string { return pathglob.Abs(e.plan.Root, rel) }

// outputChanges are the differences a restore found between the stored
// tree and the disk.
type outputChanges struct {
	put     []string // files missing or different, put back
	dirs    []string // folders missing, made
	removed []string // files and folders the stored tree lacks
}

func (c *outputChanges) count() int { return len(c.put) + len(c.dirs) + len(c.removed) }

// syncOutputs makes the declared outputs identical to a stored result. With
// apply false (a plan) it changes nothing and only finds the differences.
// It returns them and, when applying, the stamps of every file and
// directory of the tree afterwards, for the memo. An error means the result
// cannot be restored: a miss.
func (e *engine) syncOutputs(res *cache.Result, apply bool) (ch outputChanges, writes []stamp, err error) {
	// A worker's scratch copy is never synced; elsewhere each file is,
	// as it is written or with the others before the run is recorded.
	batch := !e.o.Scratch && atomicfile.SyncsFS
	syncEach := !e.o.Scratch && !atomicfile.SyncsFS
	want := make(map[string]bool, len(res.Files)+len(res.Dirs))
	for _, d := range res.Dirs {
		if pathglob.Check(d) != nil {
			return ch, nil, fmt.Errorf("bad stored path %q", d)
		}
		want[d] = true
		if _, err := os.Stat(e.abs(d)); err != nil {
			ch.dirs = append(ch.dirs, d+"/")
			if apply {
				if err := os.MkdirAll(e.abs(d), 0o777); err != nil {
					return ch, nil, err
				}
			}
		}
	}
	for _, f := range res.Files {
		if pathglob.Check(f.Path) != nil {
			return ch, nil, fmt.Errorf("bad stored path %q", f.Path)
		}
		want[f.Path] = true
		abs := e.abs(f.Path)
		info, err := os.Stat(abs)
		if err == nil && info.Mode().IsRegular() {
			if sum, _, err := e.stat.SumInfo(abs, info); err == nil && sum == f.Object {
				writes = append(writes, stampOf(f.Path, info))
				continue
			}
		}
		ch.put = append(ch.put, f.Path)
		if !apply {
			continue
		}
		if err == nil && info.IsDir() {
			if err := robustio.RemoveAll(abs); err != nil {
				return ch, nil, err
			}
		}
		if f.Data != nil && (cache.Sum(f.Data) != f.Object || int64(len(f.Data)) != f.Size) {
			return ch, nil, fmt.Errorf("stored %s is corrupt (digest mismatch)", f.Path)
		}
		if e.linkFrom(abs, f) {
			// Linked, not written: the scratch copies are never synced.
		} else if f.Data != nil {
			write := atomicfile.WriteFileUnsynced
			if syncEach {
				write = atomicfile.WriteFile
			}
			if err := write(abs, f.Data, os.FileMode(f.Mode).Perm()); err != nil {
				return ch, nil, err
			}
		} else if err := e.cache.CopyObject(f.Object, abs, os.FileMode(f.Mode).Perm(), syncEach); err != nil {
			return ch, nil, err
		}
		if batch {
			e.durable.Add(abs)
		}
		e.stat.Remember(abs, f.Object)
		if info, err := os.Stat(abs); err == nil {
			writes = append(writes, stampOf(f.Path, info))
		}
	}
	// What the stored tree lacks goes, inside the roots only.
	for _, root := range res.Roots {
		var extra []string
		err := filepath.WalkDir(e.abs(root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(e.plan.Root, p)
			rel = filepath.ToSlash(rel)
			if want[rel] {
				return nil
			}
			extra = append(extra, rel)
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		})
		if err != nil {
			return ch, nil, err
		}
		for _, x := range extra {
			ch.removed = append(ch.removed, x)
			if apply {
				if err := robustio.RemoveAll(e.abs(x)); err != nil {
					return ch, nil, err
				}
			}
		}
	}
	if !apply {
		return ch, nil, nil
	}
	// Folders last: putting a file back or removing one changes its
	// folder's stamp.
	for _, d := range res.Dirs {
		if info, err := os.Stat(e.abs(d)); err == nil {
			writes = append(writes, stampOf(d, info))
		}
	}
	return ch, writes, nil
}

// done says in a few words what a restore changed: "restored a.png and 1
// more, removed b.png".
func (c *outputChanges) done() string {
	put := c.restored()
	var parts []string
	if len(put) > 0 {
		parts = append(parts, "restored "+andMore(put[0], len(put)-1))
	}
	if len(c.removed) > 0 {
		parts = append(parts, "removed "+andMore(c.removed[0], len(c.removed)-1))
	}
	return strings.Join(parts, ", ")
}

// pending says what a plan found changed, counted as done counts it: the
// run will restore it.
func (c *outputChanges) pending() string {
	all := append(append([]string{}, c.restored()...), c.removed...)
	return "output changed on disk: " + andMore(all[0], len(all)-1) + "; the run restores it"
}

// restored lists what a restore puts back: the files, or when no file is
// missing, the empty folders.
func (c *outputChanges) restored() []string {
	if len(c.put) > 0 {
		return c.put
	}
	return c.dirs
}

func andMore(first string, more int) string {
	if more == 0 {
		return first
	}
	return first + " and " + strconv.Itoa(more) + " more"
}

// moveAside moves what a failed or interrupted element left in its
// declared outputs to .lifeos/failed/<run>/<element>/, keeping the
// workspace-relative paths, so nothing is lost and nothing half-made is
// mistaken for a result. Files in keep (finished elements of a step that
// failed part-way) stay where they are. It returns the workspace-relative
// folder the work went to, or "" when there was nothing to move.
func (e *engine) moveAside(el *element, keep map[string]bool) (string, error) {
	if len(el.deps.Writes) == 0 {
		return "", nil
	}
	name := el.n.s.ID
	if el.foreach {
		name += "." + strconv.Itoa(el.index)
	}
	dest := e.failedDir(name)
	var moves []string
	for _, w := range el.deps.Writes {
		if pathglob.Check(w) != nil {
			continue
		}
		if !hasGlobMeta(w) && len(keep) == 0 {
			if _, err := os.Lstat(e.abs(w)); err == nil {
				moves = append(moves, path.Clean(filepath.ToSlash(w)))
			}
			continue
		}
		files, _ := pathglob.Files(e.plan.Root, []string{w})
		for _, f := range files {
			if !keep[f] {
				moves = append(moves, f)
			}
		}
	}
	if len(moves) == 0 {
		return "", nil
	}
	sort.Strings(moves)
	var errs []error
	for _, m := range moves {
		to := filepath.Join(dest, filepath.FromSlash(m))
		if err := os.MkdirAll(filepath.Dir(to), 0o777); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(e.abs(m), to); err != nil {
			errs = append(errs, err)
		}
	}
	rel := e.relPath(dest) + "/"
	if err := errors.Join(errs...); err != nil {
		return rel, fmt.Errorf("move failed work aside: %w", err)
	}
	return rel, nil
}

// FailedDir is where the work of failed steps is kept in a workspace.
func FailedDir(root string) string { return filepath.Join(root, ".lifeos", "failed") }

// failedDir is this run's folder of failed work, or an element's in it.
func (e *engine) failedDir(elem ...string) string {
	return filepath.Join(append([]string{FailedDir(e.plan.Root), e.rec.ID}, elem...)...)
}

// sweep removes, once per directory and run, the temporary files that
// killed processes left in dir (workspace-relative, or absolute for the
// cache; see atomicfile.Sweep). Runs call it for the folders their outputs
// live in, for .lifeos/ and for the cache's tmp/.
func (e *engine) sweep(dir string, recursive bool) {
	e.sweepDir(dir, recursive, true)
}

// sweepDir is sweep; with stamps, a folder unchanged since it was last
// found clean is not read again. The folders under .lifeos change every
// run, and are swept before the key state (which holds the stamps) is
// read: they go without.
func (e *engine) sweepDir(dir string, recursive, stamps bool) {
	if e.explain {
		return
	}
	// A map under a mutex, not a sync.Map: every foreach element asks for
	// its folder, and boxing the key for a sync.Map allocated each time.
	e.sweptMu.Lock()
	done := e.swept[dir]
	if !done {
		if e.swept == nil {
			e.swept = map[string]bool{}
		}
		e.swept[dir] = true
	}
	e.sweptMu.Unlock()
	if done {
		return
	}
	abs := dir
	if !filepath.IsAbs(dir) {
		abs = e.abs(dir)
	}
	// A folder found clean, whose stamp has not changed since, has had no
	// file created in it: reading it again (10,000 images) would find
	// nothing. The stamp is taken before the read, and trusted only when
	// older than the racy window, so a file created meanwhile is never
	// missed.
	var before stamp
	stamped := false
	if stamps && !recursive {
		if info, err := os.Stat(abs); err == nil {
			before, stamped = stampOf(dir, info), true
			if e.state.clean(before) {
				return
			}
		}
	}
	removed, clean, err := atomicfile.SweepClean(abs, recursive)
	if stamped && clean && !before.racy(time.Now()) {
		e.state.setClean(before)
	}
	if err != nil {
		fmt.Fprintf(e.o.Stderr, "lifeos: warning: remove leftover temporary files: %v\n", err)
	}
	for _, r := range removed {
		fmt.Fprintf(e.o.Stderr, "lifeos: removed %s, left by a killed run\n", e.relPath(r))
	}
}

// sweepOutputs sweeps around an element's declared outputs: in each
// folder, and beside each file.
func (e *engine) sweepOutputs(writes []string) {
	for _, w := range writes {
		if pathglob.Check(w) != nil || hasGlobMeta(w) {
			continue
		}
		w = path.Clean(filepath.ToSlash(w))
		e.sweep(path.Dir(w), false)
		if st, err := os.Stat(e.abs(w)); err == nil && st.IsDir() {
			e.sweep(w, true)
		}
	}
}
