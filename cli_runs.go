package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

func (a *app) runsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and show run records (.lifeos/runs)",
		Args:  args(cobra.NoArgs),
	}
	var limit int
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			runs, err := runner.ListRuns(root)
			if err != nil {
				return err
			}
			if limit > 0 && len(runs) > limit {
				runs = runs[:limit]
			}
			if listJSON {
				type run struct {
					ID         string         `json:"id"`
					Pipeline   string         `json:"pipeline"`
					Status     string         `json:"status"`
					Started    time.Time      `json:"started"`
					DurationMS float64        `json:"duration_ms"`
					Cost       float64        `json:"cost"`
					Steps      map[string]int `json:"steps"` // by status
				}
				out := make([]run, 0, len(runs))
				for _, r := range runs {
					counts := map[string]int{}
					for _, s := range r.Steps {
						counts[s.Status]++
					}
					out = append(out, run{r.ID, r.Pipeline, r.Status, r.Started, r.DurationMS, r.Cost, counts})
				}
				return writeJSON(a.stdout, out)
			}
			if len(runs) == 0 {
				fmt.Fprintln(a.stdout, "no runs yet")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATUS\tSTEPS\tDURATION")
			for i, r := range runs {
				if limit > 0 && i >= limit {
					break
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Status, stepCounts(r), time.Duration(r.DurationMS*float64(time.Millisecond)).Round(time.Millisecond))
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVarP(&limit, "limit", "n", 20, "show at most `N` runs (0: all)")
	list.Flags().BoolVar(&listJSON, "json", false, `print [{"id", "pipeline", "status", "started", "duration_ms", "cost", "steps": {status: count}}], newest first`)
	var asJSON bool
	var outputsOf string
	show := &cobra.Command{
		ValidArgsFunction: a.completeRuns,
		Use:               "show RUN_ID",
		Short:             "Show one run (an id, a unique prefix of one, or last)",
		Args:              args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			r, err := runner.FindRun(root, argv[0])
			if err != nil {
				return err
			}
			if outputsOf != "" {
				outputs, _, err := runner.StepDetail(root, r, outputsOf)
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, outputs)
			}
			if asJSON {
				return writeJSON(a.stdout, r)
			}
			fmt.Fprintf(a.stdout, "run %s: %s %s\n", r.ID, r.Pipeline, r.Status)
			fmt.Fprintf(a.stdout, "started %s, took %s\n", r.Started.Format(time.RFC3339), time.Duration(r.DurationMS*float64(time.Millisecond)).Round(time.Millisecond))
			fmt.Fprintf(a.stdout, "pipeline sha256 %s\npolicy   sha256 %s\n", r.PipelineDigest, r.PolicyDigest)
			if r.Cost > 0 {
				fmt.Fprintf(a.stdout, "cost %.2f\n", r.Cost)
			}
			if r.Error != "" {
				fmt.Fprintf(a.stdout, "error: %s\n", r.Error)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tSTATUS\tDURATION\tDETAIL")
			for _, s := range r.Steps {
				var parts []string
				for _, p := range []string{s.Reason, s.Error} {
					if p != "" {
						parts = append(parts, p)
					}
				}
				if s.Cost != nil {
					parts = append(parts, fmt.Sprintf("cost %.2f (%s, %.0f s at %.2f/h)", s.Cost.Cost, s.Cost.Activity, s.Cost.Seconds, s.Cost.Rate))
				}
				if s.When != nil && !s.When.Value {
					parts = append(parts, "when false: "+s.When.Expr)
				}
				if s.Gate != nil {
					parts = append(parts, fmt.Sprintf("gate %v: %s", s.Gate.Value, s.Gate.Expr))
				}
				if s.Log != "" {
					parts = append(parts, "log: "+s.Log)
				}
				if s.Failed != "" {
					parts = append(parts, "outputs moved to "+s.Failed)
				}
				if s.OutputsObject != "" {
					parts = append(parts, "all outputs: --outputs "+s.ID)
				}
				detail := strings.Join(parts, "; ")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Status, time.Duration(s.DurationMS*float64(time.Millisecond)).Round(time.Millisecond), detail)
			}
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	show.Flags().StringVar(&outputsOf, "outputs", "", "print the complete outputs of `STEP` as JSON (large ones are kept in the cache, not in the record)")
	cmd.AddCommand(list, show,
		a.passThrough("watch RUN_ID [--no-download] [--json]", "Follow a run on Temporal to its end and bring its outputs here (needs lifeos-temporal)", "watch"),
		a.passThrough("cancel RUN_ID", "Cancel a run on Temporal: its running steps stop, no other starts", "cancel"))
	cmd.RunE = list.RunE
	return cmd
}

func stepCounts(r *runner.Record) string {
	counts := map[string]int{}
	for _, s := range r.Steps {
		counts[s.Status]++
	}
	var parts []string
	for _, st := range []string{runner.StatusOK, runner.StatusCached, runner.StatusSkipped, runner.StatusBlocked, runner.StatusFailed, runner.StatusCancelled} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	return strings.Join(parts, ", ")
}
