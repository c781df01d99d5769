// Command lifeos runs declarative YAML pipelines of AI image production:
// generation, scoring, gates against a threshold policy, reports, with every
// step result cached by content.
//
// See README.md for a tour; `lifeos help` lists the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/lifeos/lifeos/internal/cpuprofile"
	"github.com/lifeos/lifeos/runner"
)

// Exit codes (the contract of DESIGN.md §2), mapped only here.
const (
	exitOK      = 0
	exitFailed  = 1 // a step failed, a gate blocked, or the run was interrupted
	exitInvalid = 2 // bad usage, bad pipeline, bad policy
)

func main() {
	tuneGC()
	os.Exit(lifeos())
}

// lifeos runs the command line of the process and returns its exit code.
func lifeos() int {
	defer cpuprofile.Start()()
	runner.Warm()
	ctx, signalled, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if s, ok := signalled().(syscall.Signal); ok && code != exitOK {
		// Stopped by a signal, cleanly: the shell convention, 128 + its
		// number (130 for Ctrl-C, 143 for SIGTERM).
		code = 128 + int(s)
	}
	if runner.DebugFlag("maxrss") {
		// What a hostile answer cost in memory, for the scenarios that
		// check it stays bounded.
		fmt.Fprintf(os.Stderr, "lifeos: max RSS %d MiB\n", maxRSS()>>20)
	}
	return code
}

// signalContext is cancelled by Ctrl-C or SIGTERM, so running steps stop
// cleanly: their commands are signalled, their partial outputs removed and
// the run record written. signalled says which signal did it, if one did.
//
// The handler is installed in the background: signal.Notify starts an OS
// thread of its own and waits on it, 0.2-0.5 ms, a fortieth of a no-op run.
// A signal in that first half millisecond, while the command line and the
// pipeline are still being read, ends the process as it would have before
// it started.
func signalContext() (ctx context.Context, signalled func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	var got atomic.Value
	notified := make(chan struct{})
	signalsHandled = notified
	go func() {
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		close(notified)
		select {
		case s := <-ch:
			got.Store(s)
			cancel()
		case <-ctx.Done():
		}
	}()
	signalled = func() os.Signal {
		s, _ := got.Load().(os.Signal)
		return s
	}
	return ctx, signalled, func() { <-signalsHandled; signal.Stop(ch); cancel() }
}

// signalsHandled is closed once signalContext's handler is in place: what
// changes the handling of signals itself waits for it first.
var signalsHandled chan struct{}

// errSilent marks an error whose message has already been printed.
var errSilent = errors.New("already reported")

// exitError carries an exit code chosen by a command (e.g. cache verify).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(ctx, stdout, stderr, args)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(stderr, "lifeos: %v\n", err)
	}
	if runner.IsInvalid(err) { // a bad pipeline, policy or command line
		return exitInvalid
	}
	return exitFailed
}
