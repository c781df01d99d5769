//go:build unix

package runner

import (
	"os"
	"syscall"
)

// deviceOf returns the device of a folder, to stop FindRoot at a mount.
func deviceOf(dir string) (uint64, bool) {
	st, err := os.Stat(dir)
	if err != nil {
		return 0, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(sys.Dev), true // int32 on some systems
}
