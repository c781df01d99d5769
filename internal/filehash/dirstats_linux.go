package filehash

import (
	"io/fs"
	"path"
	"strings"
	"sync"
	"unsafe"

	"github.com/lifeos/lifeos/internal/pathglob"
	"golang.org/x/sys/unix"
)

// DirStats stats files by their slash-separated paths under a root,
// through open descriptors of their folders (fstatat): the kernel resolves
// one name, not the whole path from /, and no absolute path is built per
// file. A no-op run over 1,000 images is 2,000 stats, the largest part of
// its time. Safe for concurrent use.
type DirStats struct {
	root string
	mu   sync.Mutex
	fds  map[string]int
}

// maxDirFDs bounds the descriptors kept open; beyond it, plain stats.
const maxDirFDs = 256

// NewDirStats returns a DirStats for files under root (pathglob.Abs).
func NewDirStats(root string) *DirStats { return &DirStats{root: root, fds: map[string]int{}} }

// Stat returns the stamp of the file rel (links followed).
func (d *DirStats) Stat(rel string) (Stamp, error) {
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
		st, _, err := Stat(pathglob.Abs(d.root, rel))
		return st, err
	}
	var st unix.Stat_t
	for {
		err := fstatat(fd, name, &st)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return Stamp{}, &fs.PathError{Op: "stat", Path: rel, Err: err}
		}
	}
	return Stamp{Size: st.Size, Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, Ino: st.Ino}, nil
}

// fstatat is unix.Fstatat without its copy of name on the heap: the name
// is made NUL-terminated on the stack (a warm manifest of 10,000 images
// is 19,000 stats, and the copies were 3% of its CPU).
func fstatat(dirfd int, name string, st *unix.Stat_t) error {
	var buf [128]byte
	if len(name) >= len(buf) || strings.IndexByte(name, 0) >= 0 {
		return unix.Fstatat(dirfd, name, st, 0)
	}
	copy(buf[:], name)
	_, _, errno := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(st)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Reset closes the descriptors: a folder replaced since (by a step that
// ran) is opened again.
func (d *DirStats) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, fd := range d.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	clear(d.fds)
}
