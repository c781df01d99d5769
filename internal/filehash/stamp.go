package filehash

import "time"

// A Stamp is a file's identity as stat shows it, what make and git's index
// compare instead of content: its size, its modification time in Unix
// nanoseconds and its inode (0 where the file system has none).
type Stamp struct {
	Size, Mtime int64
	Ino         uint64
}

// RacyWindow: a file modified this recently before it was stat'ed may be
// modified again within the file system's timestamp granularity without its
// stamp changing, so a stamp that recent is not trusted later (git's
// "racily clean" rule).
const RacyWindow = 2 * time.Second

// Racy reports whether a stamp taken at now is too recent to trust: see
// RacyWindow.
func (s Stamp) Racy(now time.Time) bool { return now.UnixNano()-s.Mtime <= int64(RacyWindow) }
