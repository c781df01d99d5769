package filehash

import (
	"io/fs"
	"syscall"
)

// Stat returns the stamp of the file at path (links followed) and whether
// it is a folder. Through syscall.Stat: os.Stat builds a FileInfo (and its
// name) that a stamp does not need.
func Stat(path string) (st Stamp, dir bool, err error) {
	var s syscall.Stat_t
	return stampBy(&s, "stat", path, func() error { return syscall.Stat(path, &s) })
}

// statOpen is Stat of the file open as f (open's, a *rawFile on Unix),
// through its descriptor.
func statOpen(f file, path string) (st Stamp, dir bool, err error) {
	rf := f.(*rawFile)
	var s syscall.Stat_t
	return stampBy(&s, "fstat", path, func() error { return syscall.Fstat(rf.fd, &s) })
}

// stampBy calls stat, which fills in s, until it is not interrupted, and
// returns the stamp of what it found.
func stampBy(s *syscall.Stat_t, op, path string, stat func() error) (Stamp, bool, error) {
	err := stat()
	for err == syscall.EINTR {
		err = stat()
	}
	if err != nil {
		return Stamp{}, false, &fs.PathError{Op: op, Path: path, Err: err}
	}
	return Stamp{Size: s.Size, Mtime: int64(s.Mtim.Sec)*1e9 + int64(s.Mtim.Nsec), Ino: s.Ino},
		s.Mode&syscall.S_IFMT == syscall.S_IFDIR, nil
}
