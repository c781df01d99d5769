//go:build !windows

package steps

import (
	"context"
	"os/exec"
)

// shellCommand runs a shell: script with sh -c.
func shellCommand(ctx context.Context, script string) *exec.Cmd {
	return exec.CommandContext(ctx, "sh", "-c", script)
}
