//go:build unix

package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"sync"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
)

// cmdPty runs a command on a pseudo-terminal of 100x30, as a person at a
// terminal would, and puts what the terminal showed on stdout. With -when
// REGEXP -touch FILE it creates FILE once the screen has shown REGEXP, so
// a step can wait for the screen without the test sleeping.
func cmdPty(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("pty", flag.ContinueOnError)
	when := fs.String("when", "", "")
	touch := fs.String("touch", "", "")
	if fs.Parse(args) != nil || fs.NArg() == 0 {
		ts.Fatalf("usage: pty [-when REGEXP -touch FILE] command [args...]")
	}
	var re *regexp.Regexp
	if *when != "" {
		re = regexp.MustCompile(*when)
	}
	name, err := exec.LookPath(fs.Arg(0))
	ts.Check(err)
	cmd := exec.Command(name, fs.Args()[1:]...)
	cmd.Dir = ts.MkAbs(".")
	for _, kv := range []string{"PATH", "HOME", "TMPDIR", "LIFEOS_CACHE", "LIFEOS_DEBUG", "NO_COLOR", "TERM", "REPO"} {
		cmd.Env = append(cmd.Env, kv+"="+ts.Getenv(kv))
	}
	if ts.Getenv("TERM") == "" {
		cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 100, Rows: 30})
	ts.Check(err)
	var (
		mu      sync.Mutex
		screen  bytes.Buffer
		touched bool
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			if re != nil && !touched && re.Match(screen.Bytes()) {
				touched = true
				os.WriteFile(ts.MkAbs(*touch), nil, 0o666)
			}
			mu.Unlock()
			if err != nil { // EIO on Linux once the command has exited
				return
			}
		}
	}()
	werr := cmd.Wait()
	<-done
	f.Close()
	ts.Stdout().Write(screen.Bytes())
	var ee *exec.ExitError
	switch {
	case werr == nil && neg:
		ts.Fatalf("unexpected success")
	case errors.As(werr, &ee) && !neg:
		ts.Fatalf("exit status %d", ee.ExitCode())
	case werr != nil && !errors.As(werr, &ee):
		ts.Fatalf("%v", werr)
	}
}
