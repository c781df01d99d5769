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

// Links returns how many names the file has, and true; a file with more
// than one shares its content with each of them.
func Links(st fs.FileInfo) (uint64, bool) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink), true
	}
	return 0, false
}
