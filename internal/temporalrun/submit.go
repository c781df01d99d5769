package temporalrun

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/lifeos/lifeos/internal/temporalreq"
	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

// Client is a Temporal client.
type Client = client.Client

// Conn says how to reach Temporal.
type Conn = temporalreq.Conn

// ConnFromEnv fills what c leaves empty from LIFEOS_TEMPORAL_ADDRESS (or
// TEMPORAL_ADDRESS), TEMPORAL_NAMESPACE and TEMPORAL_TLS_* as the
// Temporal CLI reads them. An API key comes from TEMPORAL_API_KEY only.
func ConnFromEnv(c Conn) Conn {
	get := func(v *string, names ...string) {
		for _, n := range names {
			if *v == "" {
				*v = os.Getenv(n)
			}
		}
	}
	get(&c.Address, "LIFEOS_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS")
	get(&c.Namespace, "TEMPORAL_NAMESPACE")
	get(&c.CertPath, "TEMPORAL_TLS_CERT")
	get(&c.KeyPath, "TEMPORAL_TLS_KEY")
	get(&c.CAPath, "TEMPORAL_TLS_CA")
	get(&c.ServerName, "TEMPORAL_TLS_SERVER_NAME")
	if c.Address == "" {
		c.Address = "127.0.0.1:7233"
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	return c
}

// Dial connects to Temporal. The SDK's own log goes to logw, warnings
// and errors only.
func Dial(ctx context.Context, c Conn, logw io.Writer) (client.Client, error) {
	opts := client.Options{
		HostPort:  c.Address,
		Namespace: c.Namespace,
		Logger:    tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if c.TLS || c.CertPath != "" || c.CAPath != "" {
		cfg := &tls.Config{ServerName: c.ServerName, MinVersion: tls.VersionTLS12}
		if c.CertPath != "" || c.KeyPath != "" {
			cert, err := tls.LoadX509KeyPair(c.CertPath, c.KeyPath)
			if err != nil {
				return nil, fmt.Errorf("temporal TLS client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		if c.CAPath != "" {
			pem, err := os.ReadFile(c.CAPath)
			if err != nil {
				return nil, fmt.Errorf("temporal TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("temporal TLS CA %s: no certificate in it", c.CAPath)
			}
			cfg.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = cfg
	}
	if key := os.Getenv("TEMPORAL_API_KEY"); key != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("reach Temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}

// WorkflowID is the workflow of a run: its id, so that `lifeos runs watch
// ID` finds it.
func WorkflowID(runID string) string { return "lifeos-" + runID }

// Submit snapshots the workspace into the shared store, starts the run's
// workflow and returns its spec. plan is the run's plan, checked here.
// heartbeat is how long a worker may stay silent (0: 30 s).
// chunk is how many elements of a foreach, or images of a generation, an
// activity carries out (0: DefaultChunk, DefaultShare).
func Submit(ctx context.Context, cl client.Client, plan *runner.Plan, o runner.Options, c *cache.Cache, heartbeat time.Duration, chunk int, say io.Writer) (RunSpec, error) {
	began := time.Now()
	snap, st, err := runner.TakeSnapshot(ctx, plan.Root, c, nil)
	if err != nil {
		return RunSpec{}, err
	}
	fmt.Fprintf(say, "snapshot %s: %d files (%s), %d sent (%s) in %s\n", snap.Short(), st.Files, runner.HumanBytes(st.Bytes),
		st.Sent, runner.HumanBytes(st.SentBytes), time.Since(began).Round(time.Millisecond))
	spec := RunSpec{RunID: runner.NewRunID(), Pipeline: plan.Pipeline.File, Snapshot: snap.String(),
		PolicyFile: o.PolicyFile, Sets: o.Sets, Params: o.Params, Heartbeat: heartbeat, ChunkSize: chunk}
	for _, s := range plan.Order {
		spec.Steps = append(spec.Steps, StepSpec{ID: s.ID, Needs: s.Needs, Queue: s.QueueName(), ContinueOnError: s.ContinueOnError, Foreach: s.Foreach != nil, Gate: s.Gate != nil, Shares: s.Shares()})
	}
	_, err = cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: WorkflowID(spec.RunID), TaskQueue: WorkflowQueue}, WorkflowName, spec)
	if err != nil {
		return spec, fmt.Errorf("start run %s: %w", spec.RunID, err)
	}
	return spec, nil
}

// Watch follows run id until its workflow closes, printing each step as
// it starts and finishes, and returns the final result: the workflow's
// (its outcomes, also when it was cancelled part way).
func Watch(ctx context.Context, cl client.Client, runID string, out io.Writer) (*Result, RunSpec, error) {
	wid := WorkflowID(runID)
	var spec RunSpec
	if err := query(ctx, cl, wid, SpecQuery, &spec); err != nil {
		return nil, spec, err
	}
	width := 0
	for _, s := range spec.Steps {
		width = max(width, len(s.ID))
	}
	started, shown := map[string]bool{}, map[string]bool{}
	show := func(p Progress) {
		for _, s := range spec.Steps {
			if o := p.Outcomes[s.ID]; o != nil && !shown[s.ID] {
				shown[s.ID] = true
				fmt.Fprintf(out, "  %-10s %-*s  %s\n", o.Status, width, s.ID, describe(o))
			}
		}
		for _, id := range p.Running {
			if !started[id] && !shown[id] {
				started[id] = true
				fmt.Fprintf(out, "  %-10s %s\n", "start", id)
			}
		}
	}
	// Its progress is a query a worker answers: asked only when the
	// history grew, which a describe tells, every progressEvery while
	// things happen and less often, up to progressIdle, while they do not.
	// The end is not waited for: a long poll on the history's closing
	// event returns as it happens. (A query and a describe every 250 ms
	// cost Temporal's server 12 ms of CPU each time, 0.7 s of a 17 s run
	// on two cores, and tens of thousands of queries a run of hours;
	// following every event of the history instead read each step's task
	// back, which for a graph of 200 steps cost more.)
	notes := make(chan closeNote, 4)
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go watchClose(wctx, cl, wid, notes)
	every, seen := progressEvery, int64(-1)
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		// A note first: once the workflow has closed, its progress is
		// in its result.
		var n closeNote
		noted := false
		select {
		case n = <-notes:
			noted = true
		default:
			select {
			case <-ctx.Done():
				return nil, spec, ctx.Err()
			case n = <-notes:
				noted = true
			case <-tick.C:
			}
		}
		switch {
		case noted && n.newRun != "":
			// The workflow continued as new (Run), which the Temporal UI
			// shows as a run of its own.
			fmt.Fprintf(out, "  %-10s history full: the workflow continued as new (Temporal run %s)\n", "", n.newRun)
			continue
		case noted && n.err != nil:
			return nil, spec, fmt.Errorf("run %s: %w", runID, n.err)
		case noted:
			res, err := closedResult(ctx, cl, wid, runID, spec)
			if err != nil {
				return nil, spec, err
			}
			show(Progress{Outcomes: res.Outcomes})
			return res, spec, nil
		}
		desc, err := cl.DescribeWorkflow(ctx, wid, "")
		if err != nil {
			return nil, spec, fmt.Errorf("run %s: %w", runID, err)
		}
		if l := desc.RawResponse.GetWorkflowExecutionInfo().GetHistoryLength(); l != seen {
			seen, every = l, progressEvery
			var p Progress
			if query(ctx, cl, wid, ProgressQuery, &p) == nil {
				show(p)
			}
		} else {
			every = min(2*every, progressIdle)
		}
		tick.Reset(every)
	}
}

// Watch looks at a run every progressEvery while its history grows, and
// up to every progressIdle while it does not.
const (
	progressEvery = 250 * time.Millisecond
	progressIdle  = 2 * time.Second
)

// closeNote is what watchClose tells: the workflow continued as new, or
// it closed (err nil) or could not be followed.
type closeNote struct {
	newRun string
	err    error
}

// watchClose long-polls workflow wid for its closing event, through the
// runs it continues as new into, and tells notes of each.
func watchClose(ctx context.Context, cl client.Client, wid string, notes chan<- closeNote) {
	tell := func(n closeNote) {
		select {
		case notes <- n:
		case <-ctx.Done():
		}
	}
	run := ""
	for {
		it := cl.GetWorkflowHistory(ctx, wid, run, true, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
		next := ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				if ctx.Err() == nil {
					tell(closeNote{err: err})
				}
				return
			}
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		if next == "" {
			tell(closeNote{}) // closed
			return
		}
		tell(closeNote{newRun: next})
		run = next
	}
}

// closedResult is the result of the closed workflow wid: its own, or,
// when it was cancelled or failed, what finished as its last progress
// says.
func closedResult(ctx context.Context, cl client.Client, wid, runID string, spec RunSpec) (*Result, error) {
	var res Result
	err := cl.GetWorkflow(ctx, wid, "").Get(ctx, &res)
	if err == nil {
		return &res, nil
	}
	desc, derr := cl.DescribeWorkflow(ctx, wid, "")
	if derr != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	var p Progress
	if qerr := query(ctx, cl, wid, ProgressQuery, &p); qerr != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	st := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus()
	res = Result{Status: runner.StatusCancelled, Outcomes: p.Outcomes}
	if st != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		res.Status = runner.StatusFailed
	}
	if res.Outcomes == nil {
		res.Outcomes = map[string]*runner.Outcome{}
	}
	for _, s := range spec.Steps {
		if res.Outcomes[s.ID] == nil {
			res.Outcomes[s.ID] = &runner.Outcome{Status: runner.StatusCancelled, Reason: "not finished: " + strings.ToLower(st.String())}
		}
	}
	return &res, nil
}

func describe(o *runner.Outcome) string {
	var parts []string
	if o.Summary != "" {
		parts = append(parts, o.Summary)
	}
	if o.Error != "" {
		parts = append(parts, o.Error)
	}
	if o.DurationMS > 0 {
		d := (time.Duration(o.DurationMS * float64(time.Millisecond))).Round(time.Millisecond).String()
		if c, ok := o.Cost(); ok { // as a local run's line says it
			d += fmt.Sprintf(", cost %.2f", c)
		}
		parts = append(parts, d)
	}
	if o.Reason != "" {
		parts = append(parts, "("+o.Reason+")")
	}
	if o.Worker != "" {
		parts = append(parts, "on "+o.Worker)
	}
	return strings.Join(parts, "  ")
}

func query(ctx context.Context, cl client.Client, wid, name string, v any) error {
	resp, err := cl.QueryWorkflow(ctx, wid, "", name)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("no run %s on this Temporal namespace", strings.TrimPrefix(wid, "lifeos-"))
		}
		return err
	}
	return resp.Get(v)
}

// Cancel asks Temporal to cancel run id: its running steps are cancelled
// and no other starts.
func Cancel(ctx context.Context, cl client.Client, runID string) error {
	return cl.CancelWorkflow(ctx, WorkflowID(runID), "")
}
