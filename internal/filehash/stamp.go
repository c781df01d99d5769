package filehash

import (
	"strconv"
	"time"

	"github.com/lifeos/lifeos/internal/decnum"
)

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

// AppendText appends the stamp as lifeos's line files keep it, "<size>
// <mtime> <inode> ", before what it stamps (the stat cache, the key state,
// a dataset's record); CutStamp reads it back.
func (s Stamp) AppendText(b []byte) []byte {
	b = strconv.AppendInt(b, s.Size, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.Mtime, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.Ino, 10)
	return append(b, ' ')
}

// CutStamp reads the stamp AppendText wrote at the start of line and
// returns what follows it; ok is false when line does not start with one.
func CutStamp[S ~string | ~[]byte](line S) (s Stamp, rest S, ok bool) {
	var ok1, ok2, ok3 bool
	s.Size, line, ok1 = decnum.CutInt(line)
	s.Mtime, line, ok2 = decnum.CutInt(line)
	s.Ino, line, ok3 = decnum.CutUint(line)
	if !ok1 || !ok2 || !ok3 {
		return Stamp{}, rest, false
	}
	return s, line, true
}
