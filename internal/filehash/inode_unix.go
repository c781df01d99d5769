//go:build unix

package filehash

import (
	"io/fs"
	"syscall"
)

// Inode returns the file's inode number: a file replaced by rename keeps its
// size and may keep its mtime, but not its inode.
func Inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
