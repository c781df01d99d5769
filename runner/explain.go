package runner

import (
	"context"
	"fmt"
	"sync"
)

// Decision is what plan says about one step.
type Decision struct {
	Step   string `json:"step"`
	Action string `json:"action"` // run, cached, skipped, blocked, failed
	Reason string `json:"reason,omitempty"`
}

// Explain says, without running anything or writing to the workspace, which
// steps would run (and why: the changed param, file or upstream), which
// would come from the cache and which would be skipped. Steps downstream of
// one that would run are reported as running, since their inputs are not
// known yet.
func (plan *Plan) Explain(ctx context.Context, o RunOptions) ([]Decision, error) {
	e, err := plan.newEngine(o, true)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.o.Stdout, "plan %s (%d steps)\n", plan.Pipeline.File, len(e.nodes))
	var out []Decision
	for _, n := range e.nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		elems := e.start(ctx, n)
		if n.status == "" {
			// Keys are computed in parallel: hashing inputs is the slow part.
			sem := make(chan struct{}, e.o.Jobs)
			var wg sync.WaitGroup
			for _, el := range elems {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					e.probe(ctx, el)
				}()
			}
			wg.Wait()
			e.finish(n)
		}
		action := n.status
		if action == StatusOK {
			action = StatusRun // foreach whose elements are all skipped
		}
		out = append(out, Decision{Step: n.s.ID, Action: action, Reason: n.rec.Reason + n.rec.Error})
	}
	counts := map[string]int{}
	for _, d := range out {
		counts[d.Action]++
	}
	fmt.Fprintf(e.o.Stdout, "%d to run, %d cached, %d skipped\n", counts[StatusRun], counts[StatusCached], counts[StatusSkipped]+counts[StatusBlocked])
	return out, nil
}
