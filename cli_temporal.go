package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/temporalreq"
	"github.com/lifeos/lifeos/runner"
)

// Everything that speaks Temporal lives in the lifeos-temporal helper
// (cmd/lifeos-temporal): linking the Temporal SDK here would add its
// start-up, several milliseconds, to every command. These commands check
// their command line and hand over.

// helperName is the helper's file name.
var helperName = "lifeos-temporal" + map[bool]string{true: ".exe"}[runtime.GOOS == "windows"]

// findHelper looks for lifeos-temporal: $LIFEOS_TEMPORAL_HELPER, beside
// this executable, then on PATH.
func findHelper() (string, error) {
	if p := os.Getenv("LIFEOS_TEMPORAL_HELPER"); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), helperName)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("lifeos-temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("this needs lifeos-temporal, the part of lifeos that speaks Temporal, beside lifeos or on PATH: go build -o \"$(dirname \"$(command -v lifeos)\")/lifeos-temporal\" ./cmd/lifeos-temporal")
}

// handOver runs the helper with args (and extra environment) in this
// process's place: its output, exit code and signals are the command's
// (on Unix it replaces this process; elsewhere this one waits for it).
func (a *app) handOver(args []string, env ...string) error {
	bin, err := findHelper()
	if err != nil {
		return &runner.UsageError{Err: err}
	}
	if a.dir != "" {
		root, err := a.root()
		if err != nil {
			return err
		}
		if err := os.Chdir(root); err != nil {
			return err
		}
	}
	return execHelper(bin, args, append(os.Environ(), env...))
}

// temporalFlags are run's flags for --engine temporal.
type temporalFlags struct {
	engine     string
	conn       temporalreq.Conn
	detach     bool
	noDownload bool
	heartbeat  time.Duration
	chunk      int
}

func (f *temporalFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.engine, "engine", "local", "where steps run: `ENGINE` local, or temporal (on lifeos workers, through Temporal)")
	cmd.Flags().StringVar(&f.conn.Address, "temporal", "", "Temporal's `HOST:PORT` (default $LIFEOS_TEMPORAL_ADDRESS, $TEMPORAL_ADDRESS or 127.0.0.1:7233)")
	cmd.Flags().StringVar(&f.conn.Namespace, "namespace", "", "Temporal `NAMESPACE` (default $TEMPORAL_NAMESPACE or default)")
	cmd.Flags().BoolVar(&f.conn.TLS, "tls", false, "connect to Temporal with TLS")
	cmd.Flags().StringVar(&f.conn.CertPath, "tls-cert-path", "", "client certificate `FILE` for Temporal (mTLS)")
	cmd.Flags().StringVar(&f.conn.KeyPath, "tls-key-path", "", "client key `FILE` for Temporal (mTLS)")
	cmd.Flags().StringVar(&f.conn.CAPath, "tls-ca-path", "", "CA `FILE` of Temporal's certificate")
	cmd.Flags().BoolVar(&f.detach, "detach", false, "with --engine temporal: submit the run and return (lifeos runs watch ID follows it)")
	cmd.Flags().BoolVar(&f.noDownload, "no-download", false, "with --engine temporal: leave the outputs in the shared cache")
	cmd.Flags().DurationVar(&f.heartbeat, "heartbeat", 0, "with --engine temporal: how long a worker may go silent before its step goes to another (default 30s)")
	_ = cmd.Flags().MarkHidden("heartbeat") // for tests of killed workers
	cmd.Flags().IntVar(&f.chunk, "chunk", 0, "with --engine temporal: how many elements of a foreach, or images of a generation, one worker carries out at a time (default 100 and 8)")
}

// submit hands a checked run over to the helper.
func (a *app) submitTemporal(file string, f *planFlags, t *temporalFlags, quiet, verbose, asJSON bool, color string) error {
	root, err := a.root()
	if err != nil {
		return err
	}
	if file, err = a.arg(file); err != nil {
		return err
	}
	o := f.options()
	if o.PolicyFile, err = a.arg(o.PolicyFile); err != nil {
		return err
	}
	req := temporalreq.Request{Root: root, Pipeline: file, Conn: t.conn, Detach: t.detach, NoDownload: t.noDownload,
		Quiet: quiet, Verbose: verbose, JSON: asJSON, Color: color, Heartbeat: t.heartbeat, Chunk: t.chunk,
		Options: temporalreq.Options{PolicyFile: o.PolicyFile, Sets: o.Sets, Params: o.Params, Only: o.Only}}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return a.handOver([]string{"submit"}, temporalreq.RequestEnv+"="+string(b))
}

// passThrough is a command whose arguments the helper parses.
func (a *app) passThrough(use, short, helperCmd string) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, argv []string) error {
			for _, x := range argv {
				if x == "-h" || x == "--help" {
					return a.handOver([]string{helperCmd, "-h"})
				}
			}
			return a.handOver(append([]string{helperCmd}, argv...))
		},
	}
}

func (a *app) workerCmd() *cobra.Command {
	return a.passThrough("worker --queue NAME... [--name N] [--dir D] [--steps N]",
		"Carry out steps of runs submitted with --engine temporal (needs lifeos-temporal)", "worker")
}

func (a *app) temporalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "temporal", Short: "Temporal on one machine, for trying --engine temporal", Args: args(cobra.NoArgs)}
	cmd.AddCommand(a.passThrough("dev [--port 7233] [--db FILE] [--queue NAME]...",
		"Start Temporal's dev server and a worker (needs the temporal CLI and lifeos-temporal)", "dev"))
	return cmd
}
