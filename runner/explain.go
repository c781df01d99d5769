package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/internal/pathglob"
)

// Decision is what plan says about one step.
type Decision struct {
	Step   string `json:"step"`
	Action string `json:"action"` // run, cached, skipped, blocked, failed
	// UpToDate: cached, with its outputs already on disk (nothing to
	// restore).
	UpToDate bool   `json:"up_to_date,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Outside lists what the step reads outside the workspace (absolute
	// or ../ paths): keyed by content like the rest, but worth knowing.
	Outside []string `json:"reads_outside,omitempty"`
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
		d := Decision{Step: n.s.ID, Action: action, UpToDate: n.rec.UpToDate, Reason: n.rec.Reason + n.rec.Error, Outside: outsideReads(n)}
		if len(d.Outside) > 0 {
			e.con.print(fmt.Sprintf("  %-10s %-*s  reads outside the workspace: %s (keyed by content)", "note", e.idWidth, n.s.ID, strings.Join(d.Outside, ", ")))
		}
		out = append(out, d)
	}
	counts := map[string]int{}
	for _, d := range out {
		if d.UpToDate {
			counts[labelUpToDate]++
		} else {
			counts[d.Action]++
		}
	}
	fmt.Fprintf(e.o.Stdout, "%d to run, %d up to date, %d cached, %d skipped\n", counts[StatusRun], counts[labelUpToDate], counts[StatusCached], counts[StatusSkipped]+counts[StatusBlocked])
	return out, nil
}

// outsideReads are the read patterns of n's elements that are outside the
// workspace, first three and a count.
func outsideReads(n *node) []string {
	seen := map[string]bool{}
	var out []string
	for _, el := range n.elems {
		for _, r := range el.deps.Reads {
			if pathglob.Outside(r) && !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("%d more", len(out)-3))
	}
	return out
}
