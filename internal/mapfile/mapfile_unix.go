//go:build unix

package mapfile

import (
	"os"
	"syscall"
)

// mmap maps size bytes of f read-only; ok is false when it cannot (a file
// system without mmap), and the caller reads the file instead.
func mmap(f *os.File, size int) ([]byte, bool) {
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	return b, err == nil
}
