//go:build !unix

package filehash

import "io/fs"

// Inode returns 0: the file system gives no inode here.
func Inode(fs.FileInfo) uint64 { return 0 }
