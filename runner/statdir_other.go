//go:build !linux

package runner

// dirStats stats files by path (see statdir_linux.go for the fast one).
type dirStats struct{ root string }

func newDirStats(root string) *dirStats { return &dirStats{root: root} }

// stamp is the stamp of the workspace-relative file rel (links followed).
func (d *dirStats) stamp(rel string) (stamp, bool) { return statStamp(d.root, rel) }

func (d *dirStats) reset() {}
