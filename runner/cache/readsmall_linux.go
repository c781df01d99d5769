package cache

import (
	"io/fs"
	"syscall"
	"time"
)

// readSmall reads up to len(buf) bytes of a small file and its mtime with
// plain system calls: os.Open registers every file with the runtime's poller
// (fcntl, epoll_ctl), which doubles the cost of the thousands of entry reads
// a cached foreach makes.
func readSmall(name string, buf []byte) (n int, mtime time.Time, err error) {
	fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return 0, time.Time{}, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, time.Time{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	// Read one byte more than the size, so a file that grew is noticed, but
	// do not ask for the EOF with a second call.
	want := min(len(buf), int(st.Size)+1)
	for n < want {
		m, err := syscall.Read(fd, buf[n:want])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, time.Time{}, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)), nil
}
