//go:build !linux

package filehash

import "github.com/lifeos/lifeos/internal/pathglob"

// DirStats stats files by their slash-separated paths under a root (see
// dirstats_linux.go for the fast one).
type DirStats struct{ root string }

// NewDirStats returns a DirStats for files under root (pathglob.Abs).
func NewDirStats(root string) *DirStats { return &DirStats{root: root} }

// Stat returns the stamp of the file rel (links followed).
func (d *DirStats) Stat(rel string) (Stamp, error) {
	st, _, err := Stat(pathglob.Abs(d.root, rel))
	return st, err
}

// Reset closes what Stat opened.
func (d *DirStats) Reset() {}
