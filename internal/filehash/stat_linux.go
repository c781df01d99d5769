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
	for {
		err = syscall.Stat(path, &s)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return Stamp{}, false, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	st, dir = stampOf(&s)
	return st, dir, nil
}

// statOpen is Stat of the file open as f, through its descriptor.
func statOpen(f file, path string) (st Stamp, dir bool, err error) {
	rf, ok := f.(*rawFile)
	if !ok {
		return Stat(path)
	}
	var s syscall.Stat_t
	for {
		err = syscall.Fstat(rf.fd, &s)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return Stamp{}, false, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	st, dir = stampOf(&s)
	return st, dir, nil
}

func stampOf(s *syscall.Stat_t) (Stamp, bool) {
	return Stamp{Size: s.Size, Mtime: int64(s.Mtim.Sec)*1e9 + int64(s.Mtim.Nsec), Ino: s.Ino},
		s.Mode&syscall.S_IFMT == syscall.S_IFDIR
}
