package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/runner/cache"
)

// # Files not written
//
// Two runs find results whose files they do not write: `run --engine
// temporal --no-download`, which records a run carried out on workers
// without fetching the files its steps wrote, and `plan`, which says what
// a run would restore without restoring it. The steps after them read
// those files (an exec's inputs, a foreach's glob), and their keys must be
// the ones computed with the files in place (by the workers; by the run
// plan foretells, after its restores). The workspace has them missing, or
// as an older run or an edit left them; leftFiles holds what the results
// say they are, and input patterns are matched through it (walkLeft): a
// left file as if it were written, a file under a folder a left result
// owns whole (its Roots) and not in that result as if it were removed, as
// the restore would have done. Only results whose files differ from the
// workspace's are left: an up-to-date workspace is matched as usual.
type leftFiles struct {
	// Written as results are restored, read by every element after:
	// the steps after a left one only read.
	mu    sync.RWMutex
	files map[string]cache.OutputID // workspace path -> content digest
	byDir map[string][]string       // folder -> its files: a glob over one folder looks there only
	roots []string
	any   atomic.Bool // a result was left: every element's key asks
}

// add records the files of a result left in the shared cache.
func (l *leftFiles) add(res *cache.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.files == nil {
		l.files = make(map[string]cache.OutputID, len(res.Files))
		l.byDir = map[string][]string{}
	}
	for _, f := range res.Files {
		if _, ok := l.files[f.Path]; !ok {
			d := path.Dir(f.Path)
			l.byDir[d] = append(l.byDir[d], f.Path)
		}
		l.files[f.Path] = f.Object
	}
	l.roots = append(l.roots, res.Roots...)
	l.any.Store(len(l.files) > 0 || len(l.roots) > 0)
}

// active reports whether a result was left with files or folders.
func (l *leftFiles) active() bool { return l.any.Load() }

// leftEntry is a file an input pattern matches: in the workspace (d), or
// in a result not written (left, with its digest).
type leftEntry struct {
	rel  string
	d    fs.DirEntry
	sum  cache.OutputID
	left bool
}

// walkLeft is pathglob.Walk over the workspace as it would be with the
// left results written: the same files in the same order, each either on
// disk or in a left result.
func (e *engine) walkLeft(patterns []string) ([]leftEntry, error) {
	l := &e.left
	l.mu.RLock()
	defer l.mu.RUnlock()
	hidden := func(rel string) bool {
		if _, ok := l.files[rel]; ok {
			return true
		}
		return slices.ContainsFunc(l.roots, func(r string) bool { return within(rel, r) })
	}
	found := map[string]leftEntry{}
	var outside []string
	for _, p := range patterns {
		if pathglob.Outside(p) {
			outside = append(outside, p) // never a step's output
			continue
		}
		if err := pathglob.Check(p); err != nil {
			return nil, err
		}
		pat := path.Clean(filepath.ToSlash(p))
		n := 0
		match := func(f string) {
			if matchesLeft(pat, f) {
				found[f] = leftEntry{rel: f, sum: l.files[f], left: true}
				n++
			}
		}
		if _, ok := l.files[pat]; ok {
			match(pat) // a foreach element's input
		} else if dir, ok := pathglob.OneDir(pat); ok {
			// Each of 100,000 elements may have one ("policies/*.yaml"):
			// not a pass over every left file each.
			for _, f := range l.byDir[dir] {
				match(f)
			}
		} else {
			for f := range l.files {
				match(f)
			}
		}
		err := pathglob.Walk(e.plan.Root, []string{pat}, func(rel string, d fs.DirEntry) error {
			if !hidden(rel) {
				found[rel] = leftEntry{rel: rel, d: d}
				n++
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) && n > 0 {
			err = nil // a file or folder a left result holds
		}
		if err != nil {
			return nil, err
		}
		if n == 0 && !pathglob.HasMeta(pat) {
			// On disk, but a left result's restore would remove it.
			return nil, fmt.Errorf("input %s: %w", pat, fs.ErrNotExist)
		}
	}
	names := make([]string, 0, len(found))
	for rel := range found {
		names = append(names, rel)
	}
	sort.Strings(names) // the order of pathglob.Walk
	out := make([]leftEntry, len(names))
	for i, rel := range names {
		out[i] = found[rel]
	}
	if len(outside) > 0 {
		err := pathglob.Walk(e.plan.Root, outside, func(rel string, d fs.DirEntry) error {
			out = append(out, leftEntry{rel: rel, d: d})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// matchesLeft reports whether pattern pat finds the file f as
// pathglob.Walk does: a glob matches files only, a path without glob
// characters names the file or a folder above it.
func matchesLeft(pat, f string) bool {
	if !pathglob.HasMeta(pat) {
		return within(f, pat)
	}
	ok, _ := doublestar.Match(pat, f)
	return ok
}

// within reports whether the workspace path rel is dir or below it.
func within(rel, dir string) bool {
	return rel == dir || strings.HasPrefix(rel, dir+"/")
}
