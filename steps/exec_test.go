package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestExecValidate(t *testing.T) {
	empty := []string{}
	for _, tc := range []struct {
		e   Exec
		err string
	}{
		{Exec{Argv: []string{"true"}}, ""},
		{Exec{Shell: "true", Inputs: &empty}, ""},
		{Exec{}, "exec needs run"},
		{Exec{Argv: []string{"a"}, Shell: "b"}, "not both"},
		{Exec{Argv: []string{""}}, "empty command name"},
		{Exec{Argv: []string{"a"}, Outputs: []string{"../escape"}}, "outside the workspace"},
		{Exec{Argv: []string{"a"}, Outputs: []string{"/abs"}}, "is absolute"},
		{Exec{Argv: []string{"a"}, Inputs: &[]string{"[bad"}}, "not a valid glob"},
	} {
		err := tc.e.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: err = %v, want %q", tc.e, err, tc.err)
		}
	}
}

// logBuffer is an Env.Log as the engine gives it: safe for concurrent
// writes (a command's stdout and stderr are copied by two goroutines).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// shell picks a test's script: sh's on Unix, cmd's on Windows (where a
// shell: step runs cmd /C).
func shell(unix, windows string) string {
	if runtime.GOOS == "windows" {
		return windows
	}
	return unix
}

func TestExecRun(t *testing.T) {
	root := testdir.New(t)
	var log logBuffer
	e := &Exec{Shell: shell(`echo to-log; echo '{"n": 2}' > out.json`, `echo to-log& echo {"n": 2}> out.json`), OutputsFile: "out.json"}
	out, err := e.Run(context.Background(), &Env{Root: root, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if out["n"] != 2.0 || !strings.Contains(log.String(), "to-log") {
		t.Errorf("outputs %v, log %q", out, log.String())
	}
	// A stale outputs file from an earlier run is not taken for this run's.
	e = &Exec{Shell: "exit 0", OutputsFile: "out.json"}
	if _, err := e.Run(context.Background(), &Env{Root: root, Log: &log}); err == nil {
		t.Error("stale outputs_file accepted")
	}
	if _, err := os.Stat(filepath.Join(root, "out.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale outputs_file not removed: %v", err)
	}
	// Not a JSON object.
	e = &Exec{Shell: "echo [1]", OutputsFile: "-"}
	if _, err := e.Run(context.Background(), &Env{Root: root, Log: &log}); err == nil || !strings.Contains(err.Error(), "want a JSON object") {
		t.Errorf("err = %v", err)
	}
	// Cancellation returns the context's cause.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("stop now"))
	e = &Exec{Shell: shell("sleep 10", "ping -n 11 127.0.0.1")}
	if _, err := e.Run(ctx, &Env{Root: root, Log: &log}); err == nil || err.Error() != "stop now" {
		t.Errorf("cancelled run err = %v", err)
	}
}

// readFromLog is a log that reads for itself, as the engine's does.
type readFromLog struct {
	bytes.Buffer
	readFrom bool
}

func (l *readFromLog) ReadFrom(r io.Reader) (int64, error) {
	l.readFrom = true
	return l.Buffer.ReadFrom(r)
}

// Output kept for outputs_file "-" still reaches the log through the
// log's own ReadFrom, all of it, and all of it is kept.
func TestTeeLogReadsThroughTheLog(t *testing.T) {
	out := strings.Repeat("a line of output\n", 10000)
	for _, log := range []io.Writer{&readFromLog{}, &strings.Builder{}} {
		var keep tailBuffer
		n, err := io.Copy(teeLog{log, &keep}, iotest.HalfReader(strings.NewReader(out)))
		if err != nil || n != int64(len(out)) || log.(fmt.Stringer).String() != out || string(keep.b) != out {
			t.Errorf("%T: copied %d of %d bytes, %v; log and copy equal the output: %v, %v", log, n, len(out), err,
				log.(fmt.Stringer).String() == out, string(keep.b) == out)
		}
		if l, ok := log.(*readFromLog); ok && !l.readFrom {
			t.Error("the log's ReadFrom was not used")
		}
	}
}
