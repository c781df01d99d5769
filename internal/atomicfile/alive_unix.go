//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// processAlive reports whether a process with this id exists. A recycled
// id only keeps a leftover a little longer.
func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
