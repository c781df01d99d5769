package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// processAlive reports whether a process with this id is running. A
// process object outlives its process while anyone holds a handle to it,
// so opening one is not enough: its exit code must still be STILL_ACTIVE.
func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	const queryLimitedInformation = 0x1000 // PROCESS_QUERY_LIMITED_INFORMATION
	h, err := syscall.OpenProcess(queryLimitedInformation, false, uint32(pid))
	if err != nil {
		// Another user's process exists and refuses us; a gone one is
		// ERROR_INVALID_PARAMETER.
		return errors.Is(err, syscall.ERROR_ACCESS_DENIED)
	}
	defer syscall.CloseHandle(h)
	var code uint32
	if err := syscall.GetExitCodeProcess(h, &code); err != nil {
		return true // when unsure, keep its files
	}
	const stillActive = 259
	return code == stillActive
}
