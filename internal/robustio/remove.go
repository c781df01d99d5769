// Package robustio holds the file operations Windows makes fragile, done
// as cmd/go's internal/robustio does them: a rename retried while the
// target is briefly in use, a RemoveAll with a fallback. On Unix they are
// the os functions.
package robustio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// RemoveAll is os.RemoveAll, with a fallback on Windows: Go removes each
// file with a POSIX-semantics delete that some file system drivers (and
// Wine) answer with "Invalid function"; then the tree is removed again one
// file at a time with DeleteFile and RemoveDirectory (os.Remove).
func RemoveAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || runtime.GOOS != "windows" {
		return err
	}
	var dirs []string
	werr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return os.Remove(p)
	})
	if errors.Is(werr, fs.ErrNotExist) {
		werr = nil
	}
	for i := len(dirs) - 1; i >= 0 && werr == nil; i-- {
		werr = os.Remove(dirs[i])
	}
	if werr != nil {
		return err // the first error says more
	}
	return nil
}
