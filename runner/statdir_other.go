//go:build !linux

package runner

import (
	"os"
	"path/filepath"
)

// dirStats stats files by path (see statdir_linux.go for the fast one).
type dirStats struct{ root string }

func newDirStats(root string) *dirStats { return &dirStats{root: root} }

// stamp is the stamp of the workspace-relative file rel (links followed).
func (d *dirStats) stamp(rel string) (stamp, bool) {
	info, err := os.Stat(filepath.Join(d.root, filepath.FromSlash(rel)))
	if err != nil {
		return stamp{}, false
	}
	return stampOf(rel, info), true
}

func (d *dirStats) reset() {}
