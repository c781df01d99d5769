package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "exec",
		Version: 1,
		Summary: "run a command (argv list, or a shell script with shell:), with declared inputs and outputs",
		New:     func() Step { return new(Exec) },
		Streams: true,
	})
}

// Exec runs a command: the escape hatch every other step type is measured
// against.
type Exec struct {
	// Argv is the command and its arguments, run without a shell.
	Argv []string `yaml:"run" doc:"command and arguments, run without a shell"`
	// Shell is a script run with sh -c (cmd /C on Windows), instead of run.
	Shell string `yaml:"shell" doc:"script run with sh -c, instead of run"`
	// Inputs are globs of the files the command reads; their contents are
	// part of the cache key. Absent: the command always runs and is never
	// cached (its inputs are unknown). Empty list: it depends on its params
	// alone.
	Inputs *[]string `yaml:"inputs" doc:"globs of files the command reads (hashed into the cache key); omit to always run"`
	// Outputs are the files and directories the command writes.
	Outputs []string `yaml:"outputs" doc:"files or directories the command writes (cached and restored)"`
	// Env adds environment variables. The rest of the environment is
	// inherited and is not part of the cache key.
	Env map[string]string `yaml:"env" doc:"extra environment variables (part of the cache key)"`
	// Dir is the working directory, relative to the workspace root.
	Dir string `yaml:"dir" doc:"working directory, relative to the workspace root"`
	// OutputsFile is a JSON object file the command writes, whose fields
	// become the step's outputs; "-" reads the object from stdout (its
	// last line that is one, or all of it).
	OutputsFile string `yaml:"outputs_file" doc:"JSON object file whose fields become steps.<id>.outputs; - for stdout"`
}

// killGrace is how long a cancelled command has between SIGTERM and SIGKILL.
const killGrace = 5 * time.Second

// Validate checks that exactly one of run and shell is given and that paths
// stay inside the workspace.
func (e *Exec) Validate() error {
	switch {
	case len(e.Argv) == 0 && e.Shell == "":
		return errors.New("exec needs run: [argv...] or shell: script")
	case len(e.Argv) > 0 && e.Shell != "":
		return errors.New("exec takes run or shell, not both")
	case len(e.Argv) > 0 && e.Argv[0] == "":
		return errors.New("run: empty command name")
	}
	for _, o := range e.Outputs {
		if err := pathglob.Check(o); err != nil {
			return fmt.Errorf("outputs: %w", err)
		}
	}
	if e.Inputs != nil {
		for _, in := range *e.Inputs {
			if err := pathglob.CheckRead(in); err != nil {
				return fmt.Errorf("inputs: %w", err)
			}
		}
	}
	if e.Dir != "" {
		if err := pathglob.Check(e.Dir); err != nil {
			return fmt.Errorf("dir: %w", err)
		}
	}
	if e.OutputsFile != "" && e.OutputsFile != "-" {
		if err := pathglob.Check(e.OutputsFile); err != nil {
			return fmt.Errorf("outputs_file: %w", err)
		}
	}
	return nil
}

// Deps reads the inputs globs and writes the declared outputs; a command
// whose inputs are undeclared is volatile.
func (e *Exec) Deps(map[string]Outputs) Deps {
	d := Deps{Volatile: e.Inputs == nil, Writes: e.Outputs}
	if e.Inputs != nil {
		d.Reads = *e.Inputs
	}
	return d
}

// Run runs the command, its output going to env.Log.
func (e *Exec) Run(ctx context.Context, env *Env) (Outputs, error) {
	var cmd *exec.Cmd
	if e.Shell != "" {
		cmd = shellCommand(ctx, e.Shell)
	} else {
		cmd = exec.CommandContext(ctx, e.Argv[0], e.Argv[1:]...)
	}
	name := cmd.Args[0] // "sh", "cmd" or the command, for messages
	cmd.Dir = filepath.Join(env.Root, e.Dir)
	cmd.Env = append(os.Environ(), "LIFEOS_ROOT="+env.Root)
	keys := make([]string, 0, len(e.Env))
	for k := range e.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+e.Env[k])
	}
	var stdout tailBuffer
	cmd.Stdout = env.Log
	cmd.Stderr = env.Log
	if e.OutputsFile == "-" {
		// Kept in the log too: the outputs are the last JSON line, and what
		// the command printed before it is its log. (Two goroutines then
		// copy stdout and stderr: Env.Log is safe for that.)
		cmd.Stdout = teeLog{env.Log, &stdout}
	}
	cmd.WaitDelay = killGrace
	setProcessGroup(cmd)
	if e.OutputsFile != "" && e.OutputsFile != "-" {
		// A stale file from an earlier run must not pass for this run's.
		if err := os.Remove(filepath.Join(env.Root, e.OutputsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	err := runCmd(cmd)
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, o := range e.Outputs {
		if _, err := os.Stat(filepath.Join(env.Root, o)); err != nil {
			return nil, fmt.Errorf("declared output %s was not created", o)
		}
	}
	switch e.OutputsFile {
	case "":
		return Outputs{}, nil
	case "-":
		return stdoutOutputs(&stdout)
	default:
		f, err := os.Open(filepath.Join(env.Root, e.OutputsFile))
		if err != nil {
			return nil, fmt.Errorf("outputs_file: %w", err)
		}
		defer f.Close()
		return decodeOutputs(e.OutputsFile, f)
	}
}

// teeLog writes to a step's log and keeps a copy. It reads a command's
// output for itself through the log's ReadFrom when the log has one: the
// engine's log sees the output as one stream that way, and redacts a
// secret split across two reads, which io.MultiWriter's chunks would
// hide from it.
type teeLog struct {
	log, keep io.Writer
}

func (t teeLog) Write(p []byte) (int, error) {
	if _, err := t.log.Write(p); err != nil {
		return 0, err
	}
	return t.keep.Write(p)
}

func (t teeLog) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := t.log.(io.ReaderFrom); ok {
		return rf.ReadFrom(io.TeeReader(r, t.keep))
	}
	// Hidden, or io.Copy would call this method again.
	return io.Copy(struct{ io.Writer }{t}, struct{ io.Reader }{r})
}

// tailBuffer keeps what is written to it, or its last stdoutKeep bytes
// when more was written: a command may print a lot before its outputs.
type tailBuffer struct {
	b         []byte
	truncated bool
}

const stdoutKeep = 4 << 20

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*stdoutKeep {
		t.b = append(t.b[:0], t.b[len(t.b)-stdoutKeep:]...)
		t.truncated = true
	}
	return len(p), nil
}

// stdoutOutputs reads outputs_file "-": all of stdout when it is one JSON
// object (it may span lines), else its last line that is one, so that a
// command may log before it prints its outputs.
func stdoutOutputs(t *tailBuffer) (Outputs, error) {
	if !t.truncated {
		var out Outputs
		if json.Unmarshal(t.b, &out) == nil && out != nil {
			return out, nil
		}
	}
	lines := bytes.Split(bytes.TrimRight(t.b, "\r\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var out Outputs
		if json.Unmarshal(line, &out) == nil {
			return out, nil
		}
	}
	last := ""
	if len(lines) > 0 {
		last = string(bytes.TrimSpace(lines[len(lines)-1]))
		if len(last) > 80 {
			last = last[:77] + "..."
		}
	}
	return nil, fmt.Errorf("outputs from stdout: want a JSON object, on the last line or as all of stdout; the last line is %q", last)
}

func decodeOutputs(name string, r io.Reader) (Outputs, error) {
	var out Outputs
	dec := json.NewDecoder(r)
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("outputs from %s: want a JSON object: %w", name, err)
	}
	if out == nil {
		return nil, fmt.Errorf("outputs from %s: want a JSON object, got null", name)
	}
	return out, nil
}
