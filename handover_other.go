//go:build !unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
)

// execHelper runs the helper and waits for it. A console's Ctrl-C reaches
// both processes: this one leaves it to the helper.
func execHelper(bin string, args, env []string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = env
	if signalsHandled != nil {
		<-signalsHandled // or the handler, installed later, would undo this
	}
	signal.Ignore(os.Interrupt)
	defer signal.Reset(os.Interrupt)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			return exitError{ee.ExitCode()}
		}
		return fmt.Errorf("run %s: %w", bin, err)
	}
	return nil
}
