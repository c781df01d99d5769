//go:build !unix

package atomicfile

import "os"

// processAlive reports whether a process with this id exists: on Windows,
// finding a process opens a handle to it, which fails when it is gone.
func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
