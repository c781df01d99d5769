package steps

import (
	"context"
	"os/exec"
	"syscall"
)

// shellCommand runs a shell: script with cmd /S /C, passing the script as
// written: cmd does not parse its command line by the C runtime's rules,
// so Go's quoting of an argument (\" for ") would reach the script.
func shellCommand(ctx context.Context, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "cmd")
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `cmd /S /C "` + script + `"`}
	return cmd
}
