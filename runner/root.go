package runner

import (
	"os"
	"path/filepath"
)

// FindRoot returns the workspace root for a command started in dir, as
// git finds a repository: the nearest folder upward that holds .lifeos/
// (a workspace that has run) or the default policy file (one that lifeos
// init made), not looking above a repository's top (a folder with .git)
// or across a filesystem boundary, nor into a folder listed in
// $LIFEOS_CEILING_DIRECTORIES (as GIT_CEILING_DIRECTORIES: absolute paths
// separated by the OS's list separator). It is dir when no folder
// qualifies.
func FindRoot(dir string) string {
	dev, hasDev := deviceOf(dir)
	ceilings := map[string]bool{}
	for _, c := range filepath.SplitList(os.Getenv("LIFEOS_CEILING_DIRECTORIES")) {
		if filepath.IsAbs(c) {
			ceilings[filepath.Clean(c)] = true
		}
	}
	for d := dir; ; {
		if isWorkspace(d) {
			return d
		}
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(d)
		if parent == d || ceilings[parent] {
			return dir
		}
		if pd, ok := deviceOf(parent); hasDev && ok && pd != dev {
			return dir
		}
		d = parent
	}
}

func isWorkspace(d string) bool {
	if st, err := os.Stat(filepath.Join(d, ".lifeos")); err == nil && st.IsDir() {
		return true
	}
	st, err := os.Stat(filepath.Join(d, filepath.FromSlash(DefaultPolicyFile)))
	return err == nil && st.Mode().IsRegular()
}
