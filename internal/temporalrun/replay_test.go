package temporalrun

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories of real runs (exported
// with `temporal workflow show -o json`): the demo, and the demo blocked
// by its scorecard's gate. A change to the workflow that would issue other
// commands for the same history (a swapped order, a new activity) fails
// here, before it breaks the runs in flight; it then needs a new workflow
// name or workflow.GetVersion, and new histories.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.history.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("histories: %v %v", files, err)
	}
	for _, f := range files {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
