// Package pathglob expands the workspace-relative globs of pipelines
// (inputs, outputs, foreach) with doublestar's `**` syntax.
package pathglob

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

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

// Files expands patterns relative to root into the sorted, de-duplicated
// list of regular files they match (slash-separated, relative to root). A
// directory matched by a pattern contributes every file below it. A literal
// path (no glob characters) that does not exist is an error; a pattern that
// matches nothing is not.
func Files(root string, patterns []string) ([]string, error) {
	fsys := os.DirFS(root)
	seen := map[string]bool{}
	var out []string
	add := func(p string) error {
		st, err := fs.Stat(fsys, p)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			return nil
		}
		return fs.WalkDir(fsys, p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
			return nil
		})
	}
	for _, pat := range patterns {
		if err := Check(pat); err != nil {
			return nil, err
		}
		pat = path.Clean(filepath.ToSlash(pat))
		if !hasMeta(pat) {
			if err := add(pat); err != nil {
				return nil, fmt.Errorf("input %s: %w", pat, unwrap(err))
			}
			continue
		}
		matches, err := doublestar.Glob(fsys, pat, doublestar.WithFilesOnly())
		if err != nil {
			return nil, fmt.Errorf("glob %s: %w", pat, err)
		}
		for _, m := range matches {
			if err := add(m); err != nil {
				return nil, err
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

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
