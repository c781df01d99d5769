//go:build !unix

package filehash

import "io/fs"

// Inode returns 0: the file system gives no inode here.
func Inode(fs.FileInfo) uint64 { return 0 }

// Links returns false: the file system does not say how many names a file
// has here.
func Links(fs.FileInfo) (uint64, bool) { return 0, false }
