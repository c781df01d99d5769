package runner

import (
	"path"
	"sync"

	"github.com/lifeos/lifeos/internal/pathglob"
	"golang.org/x/sys/unix"
)

// dirStats stats files through open descriptors of their folders
// (fstatat), so that the kernel resolves one name, not the whole path from
// the root: a no-op over 1,000 images is 2,000 stats, the largest part of
// its time. The descriptors are dropped when anything runs for real (a
// step may replace a folder), like the seen stamps.
type dirStats struct {
	root string
	mu   sync.Mutex
	fds  map[string]int
}

// maxDirFDs bounds the descriptors kept open; beyond it, plain stats.
const maxDirFDs = 256

func newDirStats(root string) *dirStats { return &dirStats{root: root, fds: map[string]int{}} }

// stamp is the stamp of the workspace-relative file rel (links followed).
func (d *dirStats) stamp(rel string) (stamp, bool) {
	dir, name := path.Split(rel)
	d.mu.Lock()
	fd, ok := d.fds[dir]
	if !ok && len(d.fds) < maxDirFDs {
		var err error
		fd, err = unix.Open(pathglob.Abs(d.root, dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fd = -1
		}
		d.fds[dir] = fd
		ok = true
	}
	d.mu.Unlock()
	if !ok || fd < 0 {
		return statStamp(d.root, rel)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, 0); err != nil {
		return stamp{}, false
	}
	return stamp{path: rel, size: st.Size, mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, ino: st.Ino}, true
}

// reset closes the descriptors.
func (d *dirStats) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, fd := range d.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	clear(d.fds)
}
