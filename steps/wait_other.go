//go:build !linux

package steps

import "os/exec"

// runCmd is cmd.Run (wait_linux.go says why it is not on Linux).
func runCmd(cmd *exec.Cmd) error { return cmd.Run() }
