//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/lifeos/lifeos/internal/cpuprofile"
)

// execHelper replaces this process with the helper: Ctrl-C, SIGTERM and
// the exit code are then the helper's own, with no process in between.
func execHelper(bin string, args, env []string) error {
	os.Stdout.Sync()
	cpuprofile.Stop() // the helper writes its own, to the same file
	if err := syscall.Exec(bin, append([]string{bin}, args...), env); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	return nil // not reached
}
