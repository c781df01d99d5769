// Package pathglob expands the workspace-relative globs of pipelines
// (inputs, outputs, foreach) with doublestar's `**` syntax.
package pathglob

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
)

// Check reports a malformed pattern or one that escapes the workspace.
func Check(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("empty path")
	}
	if path.IsAbs(pattern) || filepath.IsAbs(pattern) {
		return fmt.Errorf("%q is absolute; paths are relative to the workspace root", pattern)
	}
	clean := path.Clean(filepath.ToSlash(pattern))
	if clean == ".." || len(clean) > 2 && clean[:3] == "../" {
		return fmt.Errorf("%q is outside the workspace", pattern)
	}
	if !doublestar.ValidatePattern(clean) {
		return fmt.Errorf("%q is not a valid glob", pattern)
	}
	return nil
}

// Outside says whether a path is outside the workspace: absolute, or
// starting with "..".
func Outside(p string) bool {
	if path.IsAbs(p) || filepath.IsAbs(p) {
		return true
	}
	clean := path.Clean(filepath.ToSlash(p))
	return clean == ".." || strings.HasPrefix(clean, "../")
}

// CheckRead is Check for a path that is only read (a step's inputs, the
// folder images come from, a dataset): it may be outside the workspace,
// since datasets live where the disk is; what it holds is keyed by
// content all the same.
func CheckRead(pattern string) error {
	if pattern == "" || !Outside(pattern) {
		return Check(pattern)
	}
	if !doublestar.ValidatePattern(path.Clean(filepath.ToSlash(pattern))) {
		return fmt.Errorf("%q is not a valid glob", pattern)
	}
	return nil
}

// Abs is where a workspace path is: rel under root, or rel itself when it
// is absolute (CheckRead allows that).
func Abs(root, rel string) string {
	p := filepath.FromSlash(rel)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// Files expands patterns relative to root into the sorted, de-duplicated
// list of regular files they match (slash-separated, relative to root). A
// directory matched by a pattern contributes every file below it. A literal
// path (no glob characters) that does not exist is an error; a pattern that
// matches nothing is not.
func Files(root string, patterns []string) ([]string, error) {
	var out []string
	err := Walk(root, patterns, func(rel string, _ fs.DirEntry) error {
		out = append(out, rel)
		return nil
	})
	return out, err
}

// Walk calls fn for every file Files would return, in the same order, with
// its directory entry: callers that need the file's stat (to hash it through
// a stat cache) call Info, and files found by reading a directory are not
// stat'ed at all otherwise.
func Walk(root string, patterns []string, fn func(rel string, d fs.DirEntry) error) error {
	_, err := WalkListed(root, patterns, fn)
	return err
}

// WalkListed is Walk, and reports whether the files it found were decided
// by one folder's entries (or one file): a pattern of the shape OneDir
// knows, or a folder named as it is (`from: shots`) holding no folder and
// no link. While that folder (or file) keeps its stamp, the patterns find
// the same names; a new file or folder in it would change its stamp.
func WalkListed(root string, patterns []string, fn func(rel string, d fs.DirEntry) error) (byFolder bool, err error) {
	if slices.ContainsFunc(patterns, Outside) {
		return false, walkOutside(root, patterns, fn)
	}
	if len(patterns) == 1 && !hasMeta(patterns[0]) {
		// One literal file, the shape of a foreach element's inputs: no
		// map, no sort.
		pat := patterns[0]
		if err := Check(pat); err != nil {
			return false, err
		}
		pat = path.Clean(filepath.ToSlash(pat))
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(pat)))
		if err != nil {
			return false, fmt.Errorf("input %s: %w", pat, unwrap(err))
		}
		if st.Mode().IsRegular() {
			return true, fn(pat, fs.FileInfoToDirEntry(st))
		}
		if st.IsDir() {
			if flat, err := walkFlatDir(root, pat, fn); flat || err != nil {
				return flat, err
			}
		}
	}
	if len(patterns) == 1 {
		if dir, base, ok := oneDirGlob(patterns[0]); ok {
			return true, walkOneDir(root, dir, base, fn)
		}
	}
	return false, walkAll(root, patterns, fn)
}

// walkFlatDir walks the folder dir, named as it is, with one read when it
// holds no folder and no link (a batch's images): what the generic walk
// would find, without its map of every file. flat is false, and nothing
// called, otherwise.
func walkFlatDir(root, dir string, fn func(rel string, d fs.DirEntry) error) (flat bool, err error) {
	abs := filepath.Join(root, filepath.FromSlash(dir))
	ents, err := readDir(abs)
	if err != nil {
		return false, nil // the generic walk says what is wrong
	}
	if slices.ContainsFunc(ents, func(e Entry) bool { return e.Type == fs.ModeDir || e.Type == fs.ModeSymlink }) {
		return false, nil
	}
	if dir == "." {
		ents = slices.DeleteFunc(ents, func(e Entry) bool { return Hidden(e.Name) }) // a worktree's .git file
	}
	slices.SortFunc(ents, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	for _, e := range ents {
		if e.Type != 0 {
			continue // a socket, a device: not a file the walk finds
		}
		if err := fn(prefix+e.Name, &entry{dir: abs, e: e}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// walkAll is Walk for any patterns: every match, found through a map and
// sorted.
func walkAll(root string, patterns []string, fn func(rel string, d fs.DirEntry) error) error {
	fsys := hideState{os.DirFS(root)}
	found := map[string]fs.DirEntry{}
	var add func(p string, d fs.DirEntry) error
	add = func(p string, d fs.DirEntry) error {
		if d.Type()&fs.ModeSymlink != 0 {
			// Follow links: the content (and stat) that matters is the target's.
			st, err := fs.Stat(fsys, p)
			if err != nil {
				return err
			}
			d = fs.FileInfoToDirEntry(st)
		}
		if !d.IsDir() {
			if d.Type().IsRegular() {
				found[p] = d
			}
			return nil
		}
		return fs.WalkDir(fsys, p, func(q string, e fs.DirEntry, err error) error {
			if err != nil || q == p {
				return err
			}
			if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
				return add(q, e)
			}
			return nil
		})
	}
	for _, pat := range patterns {
		if err := Check(pat); err != nil {
			return err
		}
		pat = path.Clean(filepath.ToSlash(pat))
		if !hasMeta(pat) {
			st, err := os.Stat(filepath.Join(root, filepath.FromSlash(pat)))
			if err == nil {
				err = add(pat, fs.FileInfoToDirEntry(st))
			}
			if err != nil {
				return fmt.Errorf("input %s: %w", pat, unwrap(err))
			}
			continue
		}
		err := doublestar.GlobWalk(fsys, pat, add, doublestar.WithFilesOnly())
		if err != nil {
			return fmt.Errorf("glob %s: %w", pat, err)
		}
	}
	names := make([]string, 0, len(found))
	for p := range found {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if err := fn(p, found[p]); err != nil {
			return err
		}
	}
	return nil
}

// StateDir is lifeos's own folder in a workspace: its cache, run records,
// history.
const StateDir = ".lifeos"

// Hidden reports whether the workspace's top-level entry name is one that
// no wildcard matches and no folder named as an input (".") holds:
// lifeos's state and git's. Every run changes the first and every commit
// the second, and neither is a pipeline's content: a step over
// "**/*.json" would otherwise never be up to date, see lifeos's files as
// its own, and see what a worker's copy of the workspace (a snapshot,
// which leaves them out) lacks. A path into one named as it is
// (".lifeos/runs") is read as any other.
func Hidden(name string) bool { return name == StateDir || name == ".git" }

// hideState is a workspace's file system without its Hidden entries in
// its listing (walkOneDir and walkFlatDir leave them out on their own).
type hideState struct{ fs.FS }

func (h hideState) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(h.FS, name)
	if name == "." {
		ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return Hidden(e.Name()) })
	}
	return ents, err
}

func (h hideState) Stat(name string) (fs.FileInfo, error) { return fs.Stat(h.FS, name) }

// walkOutside walks patterns some of which are outside root: those inside
// first, then each outside one from its own base folder, with names in the
// pattern's form (/data/set/a.png, ../shared/b.png).
func walkOutside(root string, patterns []string, fn func(rel string, d fs.DirEntry) error) error {
	var inside []string
	for _, p := range patterns {
		if !Outside(p) {
			inside = append(inside, p)
		}
	}
	if len(inside) > 0 {
		if err := Walk(root, inside, fn); err != nil {
			return err
		}
	}
	for _, p := range patterns {
		if !Outside(p) {
			continue
		}
		if err := CheckRead(p); err != nil {
			return err
		}
		base, rest := doublestar.SplitPattern(path.Clean(filepath.ToSlash(p)))
		if rest == "" || rest == "." {
			base, rest = path.Dir(base), path.Base(base)
		}
		err := Walk(Abs(root, base), []string{rest}, func(rel string, d fs.DirEntry) error {
			return fn(path.Join(base, rel), d)
		})
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("input %s: %w", p, fs.ErrNotExist) // named in full, not from its base
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// oneDirGlob splits a pattern whose only glob characters are * and ? in
// its last element ("images/*.png", the usual shape of a foreach or of a
// step's inputs) into its directory and that element.
func oneDirGlob(pat string) (dir, base string, ok bool) {
	if Check(pat) != nil {
		return "", "", false
	}
	pat = path.Clean(filepath.ToSlash(pat))
	dir, base = path.Split(pat)
	if hasMeta(dir) || strings.ContainsAny(base, "[{\\") || strings.Contains(base, "**") || !hasMeta(base) {
		return "", "", false
	}
	return path.Clean(dir), base, true
}

// ListedDir returns what WalkListed's byFolder is about for one pattern:
// the folder OneDir finds, or the folder (or file) a pattern without
// meta characters names. While it keeps its stamp, a walk that was by
// folder finds the same names.
func ListedDir(pattern string) (dir string, ok bool) {
	if dir, ok := OneDir(pattern); ok {
		return dir, true
	}
	if hasMeta(pattern) || Check(pattern) != nil || Outside(pattern) {
		return "", false
	}
	return path.Clean(filepath.ToSlash(pattern)), true
}

// OneDir returns the folder whose listing alone decides what a pattern
// matches ("images" for "images/*.png"), when it is that shape. As long as
// that folder has the same stat (no entry added, removed or renamed in
// it), the pattern matches the same names.
func OneDir(pattern string) (dir string, ok bool) {
	if Outside(pattern) {
		return "", false
	}
	dir, _, ok = oneDirGlob(pattern)
	return dir, ok
}

// ListOneDir is Files for one pattern of the shape OneDir knows. It also
// reports whether the folder alone decided the result: no file matched
// through a link, whose target may change without the folder changing.
func ListOneDir(root, pattern string) (files []string, byFolder bool, err error) {
	dir, base, ok := oneDirGlob(pattern)
	if !ok || Outside(pattern) {
		return nil, false, fmt.Errorf("%s: not a pattern over one folder", pattern)
	}
	byFolder = true
	err = walkOneDir(root, dir, base, func(rel string, d fs.DirEntry) error {
		if _, listed := d.(*entry); !listed {
			byFolder = false // a link, followed
		}
		files = append(files, rel)
		return nil
	})
	return files, byFolder, err
}

// walkOneDir matches a oneDirGlob pattern with one read of its directory,
// as doublestar with WithFilesOnly would: regular files, and links to
// them, in name order.
func walkOneDir(root, dir, base string, fn func(rel string, d fs.DirEntry) error) error {
	abs := filepath.Join(root, filepath.FromSlash(dir))
	ents, err := readDir(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // a pattern may match nothing
		}
		return fmt.Errorf("glob %s: %w", path.Join(dir, base), unwrap(err))
	}
	match := func(name string) bool {
		ok, _ := path.Match(base, name)
		return ok
	}
	if ext := base[1:]; base[0] == '*' && !hasMeta(ext) {
		match = func(name string) bool { return strings.HasSuffix(name, ext) } // "*.png"
	}
	ents = slices.DeleteFunc(ents, func(e Entry) bool { return !match(e.Name) || dir == "." && Hidden(e.Name) })
	slices.SortFunc(ents, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	var matched []fs.DirEntry
	for _, e := range ents {
		var d fs.DirEntry = &entry{dir: abs, e: e}
		if e.Type == fs.ModeSymlink {
			// Follow links: the content (and stat) that matters is the target's.
			st, err := os.Stat(filepath.Join(abs, e.Name))
			if err != nil {
				return fmt.Errorf("glob %s: %w", path.Join(dir, base), err)
			}
			d = fs.FileInfoToDirEntry(st)
		}
		if d.Type().IsRegular() {
			matched = append(matched, d)
		}
	}
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	for _, e := range matched {
		if err := fn(prefix+e.Name(), e); err != nil {
			return err
		}
	}
	return nil
}

// entry is a listed file as an fs.DirEntry; Info stats it.
type entry struct {
	dir string
	e   Entry
}

func (e *entry) Name() string               { return e.e.Name }
func (e *entry) IsDir() bool                { return e.e.Type == fs.ModeDir }
func (e *entry) Type() fs.FileMode          { return e.e.Type }
func (e *entry) Info() (fs.FileInfo, error) { return os.Lstat(filepath.Join(e.dir, e.e.Name)) }

// HasMeta reports whether a pattern has glob characters: without them it
// names one file or folder.
func HasMeta(p string) bool { return hasMeta(p) }

func hasMeta(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '{', '\\':
			return true
		}
	}
	return false
}

func unwrap(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// Entry is a listed directory entry: its name, and its type as the file
// system gives it (fs.ModeDir, fs.ModeSymlink, 0 for a regular file,
// fs.ModeIrregular for anything else).
type Entry struct {
	Name string
	Type fs.FileMode
}

// ReadDir lists dir, unsorted, with one allocation per entry (its name):
// os.File.ReadDir makes a DirEntry for each, most of the time of listing a
// folder of 19,000 images and captions.
func ReadDir(dir string) ([]Entry, error) { return readDir(dir) }
