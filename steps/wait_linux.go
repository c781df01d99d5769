package steps

import (
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// runCmd is cmd.Run, except that the command's end is awaited in the
// network poller, through a pidfd, before cmd.Wait reaps it. Wait alone
// blocks a thread in waitid, and the runtime's monitor keeps taking that
// thread's processor back and polling every 20 µs while it does: in a
// foreach of short commands on a slow 2-core VM, that cost lifeos 0.7 ms
// of CPU per command (docs/performance.md#waiting-for-commands).
func runCmd(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	awaitExit(cmd.Process.Pid)
	return cmd.Wait()
}

// awaitExit returns once process pid has ended, leaving it to be reaped,
// and reports whether it waited in the poller. Without pidfds (Linux
// before 5.10) it returns false at once, and Wait does the waiting.
func awaitExit(pid int) bool {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: in the poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	polled := true
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		// WNOWAIT: the child stays a zombie for Wait to reap.
		if err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
			polled = false
			return true // Wait will say what is wrong
		}
		return info.Signo != 0 // zero while the process runs
	})
	return polled && err == nil
}
