package temporalrun_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lifeos/lifeos/internal/s3test"
	"github.com/lifeos/lifeos/internal/temporalcli"
	"github.com/lifeos/lifeos/internal/temporalrun"
	"github.com/lifeos/lifeos/runner"
)

// countingClient counts the progress queries made through it.
type countingClient struct {
	client.Client
	progress atomic.Int32
}

func (c *countingClient) QueryWorkflow(ctx context.Context, wid, runID, name string, args ...any) (converter.EncodedValue, error) {
	if name == temporalrun.ProgressQuery {
		c.progress.Add(1)
	}
	return c.Client.QueryWorkflow(ctx, wid, runID, name, args...)
}

// TestWatchAsksWhenSomethingHappens runs a one-step workflow whose step
// takes three seconds on a real dev server: Watch asks for the run's
// progress when its history changes, not on a timer (which asked 13
// times here; each query is answered by a worker, and cost the server
// 12 ms of CPU with the describe that went with it).
func TestWatchAsksWhenSomethingHappens(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal's dev server")
	}
	bin, err := temporalcli.TemporalCLI()
	if err != nil {
		if s3test.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	srv, err := temporalcli.StartDevServer(bin, 0, "", true, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := temporalrun.Dial(ctx, temporalrun.Conn{Address: srv.Address, Namespace: "default"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	wk := worker.New(cl, temporalrun.WorkflowQueue, worker.Options{})
	wk.RegisterWorkflowWithOptions(temporalrun.Run, workflow.RegisterOptions{Name: temporalrun.WorkflowName})
	wk.RegisterActivityWithOptions(func(ctx context.Context, task temporalrun.StepTask) (*runner.Outcome, error) {
		select {
		case <-time.After(3 * time.Second): // a step long enough for a timer to tick
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &runner.Outcome{Status: runner.StatusOK, Summary: "made it"}, nil
	}, activity.RegisterOptions{Name: temporalrun.ActivityName})
	if err := wk.Start(); err != nil {
		t.Fatal(err)
	}
	defer wk.Stop()

	spec := temporalrun.RunSpec{RunID: "20261201-120000-abcdef", Pipeline: "p.yaml", Snapshot: strings.Repeat("ab", 32),
		Steps: []temporalrun.StepSpec{{ID: "slow", Queue: temporalrun.WorkflowQueue}}}
	if _, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: temporalrun.WorkflowID(spec.RunID), TaskQueue: temporalrun.WorkflowQueue}, temporalrun.WorkflowName, spec); err != nil {
		t.Fatal(err)
	}
	cc := &countingClient{Client: cl}
	var out strings.Builder
	res, _, err := temporalrun.Watch(ctx, cc, spec.RunID, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runner.StatusOK || !strings.Contains(out.String(), "ok         slow  made it") {
		t.Fatalf("status %s, printed:\n%s", res.Status, out.String())
	}
	if !strings.Contains(out.String(), "start      slow") {
		t.Errorf("the step's start was not shown:\n%s", out.String())
	}
	// The history changes when the workflow starts, when it schedules
	// and starts the step, and when the step ends: a few queries.
	n := cc.progress.Load()
	t.Logf("%d progress queries", n)
	if n > 4 {
		t.Errorf("%d progress queries during a run of one step, want at most 4", n)
	}
}
