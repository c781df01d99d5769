//go:build !linux

package filehash

import "os"

// Stat returns the stamp of the file at path (links followed) and whether
// it is a folder.
func Stat(path string) (st Stamp, dir bool, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, false, err
	}
	return Stamp{Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Ino: Inode(fi)}, fi.IsDir(), nil
}

// statOpen is Stat of the file open as f: by its path (Linux's takes the
// descriptor).
func statOpen(_ file, path string) (Stamp, bool, error) { return Stat(path) }
