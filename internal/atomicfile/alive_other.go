//go:build !unix && !windows

package atomicfile

import "os"

// processAlive reports whether a process with this id exists, as well as
// os.FindProcess can tell on this system.
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
