//go:build !linux

package cache

import "os"

// stampOf stats path (links followed).
func stampOf(path string) (size, mtime int64, ino uint64, dir bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, 0, false, err
	}
	return st.Size(), st.ModTime().UnixNano(), Inode(st), st.IsDir(), nil
}
