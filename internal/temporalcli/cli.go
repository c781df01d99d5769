// Package temporalcli is the command line of lifeos-temporal, the helper
// that lifeos runs for what needs Temporal: `run --engine temporal`,
// `worker`, `runs watch|cancel` and `temporal dev`. lifeos parses and
// checks its own command line, then hands the rest over (a request in the
// environment for a run, the arguments otherwise).
package temporalcli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/lifeos/lifeos/internal/temporalreq"
	"github.com/lifeos/lifeos/internal/temporalrun"
	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

// Request is what lifeos hands over for a run.
type Request = temporalreq.Request

// RequestEnv carries a Request in the environment.
const RequestEnv = temporalreq.RequestEnv

// Exit codes, as lifeos's.
const (
	exitOK       = 0
	exitFailed   = 1
	exitInvalid  = 2
	exitDetached = 130 // interrupted, the run going on: as Ctrl-C exits
)

// Main runs lifeos-temporal with args and returns its exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: lifeos-temporal submit|worker|watch|cancel|dev ... (lifeos runs it: see lifeos run --engine temporal)")
		return exitInvalid
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var err error
	code := exitOK
	switch args[0] {
	case "submit":
		code, err = submit(ctx, stdin, stdout, stderr)
	case "worker":
		err = workerCmd(ctx, args[1:], stdout, stderr)
	case "watch":
		code, err = watchCmd(ctx, args[1:], stdin, stdout, stderr)
	case "cancel":
		err = cancelCmd(ctx, args[1:], stdout, stderr)
	case "dev":
		err = devCmd(ctx, args[1:], stdout, stderr)
	default:
		err = usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	if err != nil {
		fmt.Fprintln(stderr, "lifeos:", err)
		var ue usageError
		if errors.As(err, &ue) || runner.IsInvalid(err) {
			return exitInvalid
		}
		if code == exitOK {
			code = exitFailed
		}
	}
	return code
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func submit(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	var req Request
	if err := json.Unmarshal([]byte(os.Getenv(RequestEnv)), &req); err != nil {
		return exitInvalid, usageError{fmt.Errorf("submit: no request in %s (lifeos run --engine temporal makes one): %v", RequestEnv, err)}
	}
	os.Unsetenv(RequestEnv) // not for the steps' environment
	opts := runner.Options{PolicyFile: req.Options.PolicyFile, Sets: req.Options.Sets, Params: req.Options.Params, Only: req.Options.Only}
	plan, err := runner.Load(req.Root, req.Pipeline, opts)
	if err != nil {
		return exitInvalid, err
	}
	warn := func(msg string) { fmt.Fprintf(stderr, "lifeos: warning: %s\n", msg) }
	c, err := runner.OpenCache(req.Root, warn)
	if err != nil {
		return exitInvalid, err
	}
	if c == nil || c.Remote() == nil {
		return exitInvalid, usageError{errors.New("--engine temporal needs a shared cache for the files to travel through: set LIFEOS_CACHE=s3://bucket/prefix, or cache.remote in " + runner.WorkspaceFile)}
	}
	defer c.Close()
	conn := temporalrun.ConnFromEnv(req.Conn)
	cl, err := temporalrun.Dial(ctx, conn, stderr)
	if err != nil {
		return exitFailed, err
	}
	defer cl.Close()
	began := time.Now()
	say := stdout
	if req.JSON {
		say = stderr
	}
	spec, err := temporalrun.Submit(ctx, cl, plan, opts, c, req.Heartbeat, req.Chunk, say)
	c.FlushRemote(ctx)
	if err != nil {
		return exitFailed, err
	}
	fmt.Fprintf(say, "run %s: %s on Temporal %s, namespace %s (%d steps)\n", spec.RunID, spec.Pipeline, conn.Address, conn.Namespace, len(spec.Steps))
	if ui := os.Getenv("LIFEOS_TEMPORAL_UI"); ui != "" {
		fmt.Fprintf(say, "  %s/namespaces/%s/workflows/%s\n", strings.TrimSuffix(ui, "/"), conn.Namespace, temporalrun.WorkflowID(spec.RunID))
	}
	if req.Detach {
		fmt.Fprintf(say, "detached: `lifeos runs watch %s` follows it and brings its outputs here; `lifeos runs cancel %s` stops it\n", spec.RunID, spec.RunID)
		return exitOK, nil
	}
	return follow(ctx, cl, spec.RunID, req, began, stdin, stdout, stderr)
}

// follow watches a run to its end and assembles it here: the record, the
// declared outputs (unless NoDownload) and what the steps appended. A
// Ctrl-C asks, on a terminal, whether to cancel the run or to detach.
func follow(ctx context.Context, cl temporalClient, runID string, req Request, began time.Time, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	say := stdout
	if req.JSON {
		say = stderr
	}
	for {
		wctx, cancel := context.WithCancel(ctx)
		interrupted := make(chan os.Signal, 1)
		signal.Notify(interrupted, os.Interrupt)
		go func() {
			select {
			case <-interrupted:
				cancel()
			case <-wctx.Done():
			}
		}()
		res, spec, err := temporalrun.Watch(wctx, cl, runID, say)
		signal.Stop(interrupted)
		stopped := wctx.Err() != nil && ctx.Err() == nil
		cancel()
		if stopped {
			if askCancel(stdin, stderr, runID) {
				if err := temporalrun.Cancel(ctx, cl, runID); err != nil {
					return exitFailed, err
				}
				fmt.Fprintf(stderr, "lifeos: cancelling run %s; what finished is kept\n", runID)
				continue // watch it end, then assemble what finished
			}
			fmt.Fprintf(stderr, "lifeos: detached from run %s, which goes on: `lifeos runs watch %s` follows it, `lifeos runs cancel %s` stops it\n", runID, runID, runID)
			return exitDetached, nil
		}
		if err != nil {
			return exitFailed, err
		}
		return assemble(ctx, res, spec, req, began, stdout, stderr)
	}
}

// askCancel asks on a terminal whether to cancel the run; elsewhere (CI,
// a pipe) the answer is no: detaching loses nothing.
func askCancel(stdin io.Reader, stderr io.Writer, runID string) bool {
	if !runner.IsTerminal(stdin) {
		return false
	}
	fmt.Fprintf(stderr, "\nlifeos: cancel run %s (c), or detach and let it go on (d)? ", runID)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "c")
}

// assemble makes the workspace hold the run as a local run would have
// left it: every step carried out elsewhere, restored from the shared
// cache; the record written; history and cost lines replayed.
func assemble(ctx context.Context, res *temporalrun.Result, spec temporalrun.RunSpec, req Request, began time.Time, stdout, stderr io.Writer) (int, error) {
	only := make([]string, len(spec.Steps))
	for i, s := range spec.Steps {
		only[i] = s.ID
	}
	plan, err := runner.Load(req.Root, spec.Pipeline, runner.Options{PolicyFile: spec.PolicyFile, Sets: spec.Sets, Params: spec.Params, Only: only})
	if err != nil {
		return exitInvalid, fmt.Errorf("assemble run %s here: %w", spec.RunID, err)
	}
	progress := stdout
	if req.JSON {
		progress = stderr
	}
	rec, err := plan.Run(ctx, runner.RunOptions{RunID: spec.RunID, Started: began, Elsewhere: res.Outcomes, Quiet: true, NoDownload: req.NoDownload,
		Stdout: progress, Stderr: stderr, Color: req.Color})
	if rec != nil && req.JSON {
		if jerr := rec.WriteJSON(stdout); jerr != nil {
			return exitFailed, jerr
		}
	}
	if err != nil {
		var ue *runner.UsageError
		if errors.As(err, &ue) {
			return exitInvalid, err
		}
		return exitFailed, nil // the run says why; its record too
	}
	return exitOK, nil
}

// temporalClient is the client the commands use.
type temporalClient = temporalrun.Client

func connFlags(fs *flag.FlagSet) *temporalrun.Conn {
	c := &temporalrun.Conn{}
	fs.StringVar(&c.Address, "temporal", "", "Temporal's `HOST:PORT` (default $LIFEOS_TEMPORAL_ADDRESS, $TEMPORAL_ADDRESS or 127.0.0.1:7233)")
	fs.StringVar(&c.Namespace, "namespace", "", "Temporal namespace (default $TEMPORAL_NAMESPACE or default)")
	fs.BoolVar(&c.TLS, "tls", false, "connect with TLS")
	fs.StringVar(&c.CertPath, "tls-cert-path", "", "client certificate (mTLS)")
	fs.StringVar(&c.KeyPath, "tls-key-path", "", "client key (mTLS)")
	fs.StringVar(&c.CAPath, "tls-ca-path", "", "CA of the server's certificate")
	fs.StringVar(&c.ServerName, "tls-server-name", "", "name expected in the server's certificate")
	return c
}

type queues []string

func (q *queues) String() string     { return strings.Join(*q, ",") }
func (q *queues) Set(v string) error { *q = append(*q, v); return nil }

func workerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lifeos worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var qs queues
	fs.Var(&qs, "queue", "poll task queue `NAME` (repeatable; default: default)")
	host, _ := os.Hostname()
	name := fs.String("name", host, "what records say the steps ran on")
	dir := fs.String("dir", "", "where snapshots are materialised and the worker's cache lives (default $LIFEOS_WORKER_DIR or the user cache folder)")
	steps := fs.Int("steps", 1, "carry out up to `N` steps at once")
	jobs := fs.Int("jobs", 0, "run up to `N` elements at once, all steps together (default: CPUs, or --steps when more)")
	conn := connFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if len(qs) == 0 {
		qs = queues{runner.DefaultQueue}
	}
	w, c, err := newWorker(*dir, *name, *jobs, stdout, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	cl, err := temporalrun.Dial(ctx, temporalrun.ConnFromEnv(*conn), stderr)
	if err != nil {
		return err
	}
	defer cl.Close()
	ictx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	err = temporalrun.Serve(ictx, cl, qs, w, *steps)
	c.FlushRemote(context.Background())
	return err
}

// newWorker opens the worker's cache (the shared store behind it) and
// folder.
func newWorker(dir, name string, jobs int, stdout, stderr io.Writer) (*temporalrun.Worker, *cache.Cache, error) {
	if dir == "" {
		dir = os.Getenv("LIFEOS_WORKER_DIR")
	}
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("no folder for the worker: give --dir: %w", err)}
		}
		dir = filepath.Join(base, "lifeos", "worker")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	url, err := runner.RemoteCache(dir)
	if err != nil {
		return nil, nil, err
	}
	if url == "" {
		return nil, nil, usageError{errors.New("a worker needs the shared cache its runs use: set LIFEOS_CACHE=s3://bucket/prefix")}
	}
	c, err := runner.OpenCacheAt(filepath.Join(dir, "cache"), url, func(msg string) { fmt.Fprintf(stderr, "lifeos: warning: %s\n", msg) })
	if err != nil {
		return nil, nil, err
	}
	return &temporalrun.Worker{Cache: c, Dir: filepath.Join(dir, "runs"), Name: name, Jobs: jobs, Log: stdout}, c, nil
}

func watchCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("lifeos runs watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("C", ".", "the workspace the run was submitted from")
	noDownload := fs.Bool("no-download", false, "do not bring the run's outputs here")
	asJSON := fs.Bool("json", false, "print the run record as JSON")
	conn := connFlags(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return exitInvalid, usageError{errors.New("usage: lifeos runs watch RUN_ID")}
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		return exitInvalid, err
	}
	cl, err := temporalrun.Dial(ctx, temporalrun.ConnFromEnv(*conn), stderr)
	if err != nil {
		return exitFailed, err
	}
	defer cl.Close()
	runID := strings.TrimPrefix(fs.Arg(0), "lifeos-")
	began := time.Now()
	if d, err := cl.DescribeWorkflow(ctx, temporalrun.WorkflowID(runID), ""); err == nil {
		began = d.RawResponse.GetWorkflowExecutionInfo().GetStartTime().AsTime()
	}
	return follow(ctx, cl, runID, Request{Root: abs, NoDownload: *noDownload, JSON: *asJSON, Color: "auto"}, began, stdin, stdout, stderr)
}

func cancelCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lifeos runs cancel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := connFlags(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return usageError{errors.New("usage: lifeos runs cancel RUN_ID")}
	}
	cl, err := temporalrun.Dial(ctx, temporalrun.ConnFromEnv(*conn), stderr)
	if err != nil {
		return err
	}
	defer cl.Close()
	runID := strings.TrimPrefix(fs.Arg(0), "lifeos-")
	if err := temporalrun.Cancel(ctx, cl, runID); err != nil {
		return fmt.Errorf("cancel run %s: %w", runID, err)
	}
	fmt.Fprintf(stdout, "cancelling run %s: its running steps stop, no other starts\n", runID)
	return nil
}

// devCmd starts Temporal's development server (the Temporal CLI's
// start-dev, tuned for short latencies) and a worker polling queues,
// until Ctrl-C: one machine playing every part.
func devCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lifeos temporal dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 7233, "the server's gRPC `PORT` (the web UI listens on PORT+1000)")
	db := fs.String("db", "", "keep the server's state in `FILE` (default: in memory)")
	var qs queues
	fs.Var(&qs, "queue", "the worker polls task queue `NAME` (repeatable; default: default and gpu)")
	dir := fs.String("dir", "", "the worker's folder (see lifeos worker --dir)")
	headless := fs.Bool("headless", false, "no web UI")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if len(qs) == 0 {
		qs = queues{runner.DefaultQueue, "gpu"}
	}
	bin, err := TemporalCLI()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	srv, err := StartDevServer(bin, *port, *db, *headless, stderr)
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintf(stdout, "Temporal dev server on %s", addr)
	if !*headless {
		fmt.Fprintf(stdout, ", web UI http://127.0.0.1:%d", *port+1000)
	}
	fmt.Fprintf(stdout, "\nin another shell: LIFEOS_TEMPORAL_ADDRESS=%s lifeos run --engine temporal PIPELINE\n", addr)
	w, c, err := newWorker(*dir, "dev", 0, stdout, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	cl, err := temporalrun.Dial(ctx, temporalrun.Conn{Address: addr, Namespace: "default"}, stderr)
	if err != nil {
		return err
	}
	defer cl.Close()
	ictx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	err = temporalrun.Serve(ictx, cl, qs, w, runtime.NumCPU())
	c.FlushRemote(context.Background())
	return err
}

// TemporalCLI finds the temporal command: $LIFEOS_TEMPORAL_CLI, on PATH,
// or where .ci/run builds it (.tools/bin).
func TemporalCLI() (string, error) {
	if p := os.Getenv("LIFEOS_TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			p := filepath.Join(d, ".tools", "bin", "temporal")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("the temporal command (Temporal CLI) was not found: go install github.com/temporalio/cli/cmd/temporal@v1.5.1, or set LIFEOS_TEMPORAL_CLI")
}
