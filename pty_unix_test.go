//go:build unix

package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
)

// cmdPty runs a command on a pseudo-terminal of 100x30, as a person at a
// terminal would, and puts what the terminal showed on stdout. With -when
// REGEXP -touch FILE it creates FILE once the screen has shown REGEXP, so
// a step can wait for the screen without the test sleeping. Each -type
// 'REGEXP=>TEXT' types TEXT (Go escapes: \x03 is Ctrl-C) once the screen
// has shown REGEXP after what was typed before, as a person answering.
func cmdPty(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("pty", flag.ContinueOnError)
	when := fs.String("when", "", "")
	touch := fs.String("touch", "", "")
	var types []string
	fs.Func("type", "", func(v string) error { types = append(types, v); return nil })
	if fs.Parse(args) != nil || fs.NArg() == 0 {
		ts.Fatalf("usage: pty [-when REGEXP -touch FILE] [-type 'REGEXP=>TEXT']... command [args...]")
	}
	type answer struct {
		re   *regexp.Regexp
		text string
	}
	var answers []answer
	for _, t := range types {
		pat, text, ok := strings.Cut(t, "=>")
		unq, err := strconv.Unquote(`"` + text + `"`)
		if !ok || err != nil {
			ts.Fatalf("pty -type %q: want REGEXP=>TEXT", t)
		}
		answers = append(answers, answer{regexp.MustCompile(pat), unq})
	}
	var re *regexp.Regexp
	if *when != "" {
		re = regexp.MustCompile(*when)
	}
	name, err := exec.LookPath(fs.Arg(0))
	ts.Check(err)
	cmd := exec.Command(name, fs.Args()[1:]...)
	cmd.Dir = ts.MkAbs(".")
	for _, kv := range []string{"PATH", "HOME", "TMPDIR", "LIFEOS_CACHE", "LIFEOS_DEBUG", "NO_COLOR", "TERM", "REPO",
		"LIFEOS_TEMPORAL_ADDRESS", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
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
		typedAt int // where the screen was when the last answer was typed
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
			if len(answers) > 0 && answers[0].re.Match(screen.Bytes()[typedAt:]) {
				f.Write([]byte(answers[0].text))
				answers, typedAt = answers[1:], screen.Len()
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
