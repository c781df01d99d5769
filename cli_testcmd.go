package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/lifeos/lifeos/runner"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
)

func (a *app) testCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the .txtar scenarios in DIR (default tests/) with lifeos available as a command",
		Long: `Run your own regression scenarios, written like lifeos's own (testscript
.txtar files: a pipeline, the commands to run, what they must print): a known
bad image must stay rejected, a missing thresholds file must fail validation.
Each scenario runs in a fresh directory with its own cache. Prints one line per
scenario and "N passed, M failed"; exits 1 if any failed.`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			dir := "tests"
			if len(argv) == 1 {
				if dir, err = a.arg(argv[0]); err != nil {
					return err
				}
			}
			dir = resolve(root, dir)
			files, _ := filepath.Glob(filepath.Join(dir, "*.txtar"))
			if len(files) == 0 {
				return &runner.UsageError{Err: fmt.Errorf("no .txtar scenarios in %s", dir)}
			}
			sort.Strings(files)
			bin, cleanup, err := lifeosOnPath()
			if err != nil {
				return err
			}
			defer cleanup()
			t := &scenarioT{out: a.stdout}
			func() {
				defer recoverStop()
				testscript.RunT(t, testscript.Params{
					Files:               files,
					RequireExplicitExec: true,
					Setup: func(env *testscript.Env) error {
						env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
						env.Setenv("LIFEOS_CACHE", "")
						env.Setenv("ROOT", root) // the workspace, to copy pipelines and data from
						return nil
					},
				})
			}()
			fmt.Fprintf(a.stdout, "%d passed, %d failed\n", t.passed, t.failed)
			if t.failed > 0 || t.passed == 0 {
				return exitError{exitFailed}
			}
			return nil
		},
	}
}

// lifeosOnPath returns a directory holding this binary under the name
// lifeos, for scenarios' `exec lifeos`.
func lifeosOnPath() (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	name := "lifeos"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if filepath.Base(exe) == name {
		return filepath.Dir(exe), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "lifeos-bin")
	if err != nil {
		return "", nil, err
	}
	if err := os.Symlink(exe, filepath.Join(dir, name)); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// scenarioT runs testscript outside `go test`: scenarios run one after the
// other and each reports a line.
type scenarioT struct {
	out            interface{ Write([]byte) (int, error) }
	log            strings.Builder
	failedNow      bool
	passed, failed int
}

// errStop unwinds a scenario on Fatal/FailNow/Skip, as runtime.Goexit does
// for a testing.T.
var errStop = errors.New("stop scenario")

func recoverStop() {
	if r := recover(); r != nil && r != errStop { //nolint:errorlint // identity of the sentinel
		panic(r)
	}
}

func (t *scenarioT) Skip(args ...any)  { t.Log(args...); panic(errStop) }
func (t *scenarioT) Fatal(args ...any) { t.Log(args...); t.FailNow() }
func (t *scenarioT) Parallel()         {}
func (t *scenarioT) Log(args ...any)   { fmt.Fprintln(&t.log, args...) }
func (t *scenarioT) FailNow()          { t.failedNow = true; panic(errStop) }
func (t *scenarioT) Verbose() bool     { return false }

// Run runs one scenario and prints its line (and its log when it failed).
func (t *scenarioT) Run(name string, f func(testscript.T)) {
	sub := &scenarioT{}
	start := time.Now()
	func() {
		defer recoverStop()
		f(sub)
	}()
	took := time.Since(start).Round(time.Millisecond)
	if sub.failedNow {
		t.failed++
		fmt.Fprintf(t.out, "FAIL  %s (%s)\n", name, took)
		for _, line := range strings.Split(strings.TrimRight(sub.log.String(), "\n"), "\n") {
			fmt.Fprintf(t.out, "      %s\n", line)
		}
		return
	}
	t.passed++
	fmt.Fprintf(t.out, "ok    %s (%s)\n", name, took)
}
