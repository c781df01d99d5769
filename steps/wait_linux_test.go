package steps

import (
	"errors"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// awaitExit returns once the command has ended, and leaves it for Wait
// to reap with its real status.
func TestAwaitExit(t *testing.T) {
	cmd := exec.Command("sh", "-c", "read line; exit 3")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() { done <- awaitExit(cmd.Process.Pid) }()
	in.Write([]byte("go\n")) // until now the command waits for a line
	in.Close()
	if !<-done {
		t.Skip("no pidfd on this kernel: Wait waits instead")
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil || info.Signo == 0 {
		t.Errorf("awaitExit returned before the command ended (waitid: %v)", err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Wait after awaitExit = %v, want exit status 3", err)
	}
}
