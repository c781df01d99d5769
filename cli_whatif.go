package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

func (a *app) whatifCmd() *cobra.Command {
	var f planFlags
	var runID, sweep string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "whatif PIPELINE --set key=value... | --sweep key=FROM:TO:STEP",
		Short: "Replay the last run's recorded scores through an edited policy, executing nothing",
		Long: `Replay a run's recorded results (the last run of PIPELINE, or --run ID)
through the policy with --set edits, executing nothing: each filter's
expression on its recorded items, each scorecard's grades and weights, each
gate on its step's recorded outputs. It prints the images whose verdict
flips, with the clause and values that decide, the counts and grades before
and after. --sweep replays one value after another and prints a table, so a
threshold is chosen by looking. lifeos run --set with the chosen value then
does what whatif said.

  lifeos whatif pipelines/production.yaml --set face.min_similarity=0.6
  lifeos whatif pipelines/production.yaml --sweep face.min_similarity=0.40:0.70:0.05`,
		Args: args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(f.sets) == 0 && sweep == "" {
				return &runner.UsageError{Err: errors.New("whatif needs --set key=value or --sweep key=FROM:TO:STEP: the edit to replay")}
			}
			root, err := a.root()
			if err != nil {
				return err
			}
			file, err := a.arg(argv[0])
			if err != nil {
				return err
			}
			rec, err := a.whatifRun(root, file, runID)
			if err != nil {
				return err
			}
			recorded, err := runner.LoadRecorded(root, rec)
			if err != nil {
				return err
			}
			// The run's own params, so that expressions reading them see
			// what the run saw.
			assigns, err := runner.ParamAssignments(rec.Params)
			if err != nil {
				return err
			}
			base := f
			base.params = append(assigns, f.params...)
			if sweep != "" {
				return a.sweep(recorded, argv[0], &base, sweep, asJSON)
			}
			plan, err := a.load(argv[0], &base)
			if err != nil {
				return err
			}
			res, err := plan.WhatIf(recorded)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, res)
			}
			printWhatIf(a, res, f.sets)
			return nil
		},
	}
	f.register(cmd, false)
	a.completeFlags(cmd)
	cmd.Flags().StringVar(&runID, "run", "", "replay run `ID` (or a unique prefix) instead of the pipeline's last")
	cmd.Flags().StringVar(&sweep, "sweep", "", "replay every value of `key=FROM:TO:STEP` and print a table")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"run", "pipeline", "filters": [{"step", "items", "approved_before", "approved_after", "flips": [{"path", "sha256", "approved", "why"}]}], "scorecards": [...], "gates": [...]} (with --sweep: {"key", "rows": [{"value", "approved", "rejected", "grade", "composite"}]})`)
	return cmd
}

// whatifRun finds the run to replay: id, or the newest run of file.
func (a *app) whatifRun(root, file, id string) (*runner.Record, error) {
	if id != "" {
		return runner.FindRun(root, id)
	}
	runs, err := runner.ListRuns(root)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Pipeline == file {
			return r, nil
		}
	}
	return nil, &runner.UsageError{Err: fmt.Errorf("whatif: no recorded run of %s: run it once (whatif replays its scores)", file)}
}

func printWhatIf(a *app, res *runner.WhatIfResult, sets []string) {
	fmt.Fprintf(a.stdout, "whatif %s (run %s) with %s\n", res.Pipeline, res.Run, strings.Join(sets, ", "))
	for _, fw := range res.Filters {
		by := ""
		if fw.Overridden > 0 {
			by = fmt.Sprintf(" (%d decided by overrides.yaml)", fw.Overridden)
		}
		fmt.Fprintf(a.stdout, "  %-10s %d approved, %d rejected -> %d approved, %d rejected%s\n", fw.Step,
			fw.ApprovedBefore, fw.Items-fw.ApprovedBefore, fw.ApprovedAfter, fw.Items-fw.ApprovedAfter, by)
		for _, fl := range fw.Flips {
			if fl.Approved {
				fmt.Fprintf(a.stdout, "    now approved  %s  (was: %s)\n", fl.Path, fl.Why)
			} else {
				fmt.Fprintf(a.stdout, "    now rejected  %s  %s\n", fl.Path, fl.Why)
			}
		}
	}
	for _, g := range res.Scorecards {
		fmt.Fprintf(a.stdout, "  %-10s grade %s (%.4f) -> %s (%.4f)\n", g.Step, g.GradeBefore, g.CompositeBefore, g.GradeAfter, g.CompositeAfter)
	}
	for _, g := range res.Gates {
		if g.Before != g.After {
			fmt.Fprintf(a.stdout, "  %-10s gate %v -> %v: %s\n", g.Step, g.Before, g.After, g.Explain)
		}
	}
	for _, w := range res.Whens {
		if w.Before != w.After {
			fmt.Fprintf(a.stdout, "  %-10s when %v -> %v (would %s): %s\n", w.Step, w.Before, w.After,
				map[bool]string{true: "run", false: "be skipped"}[w.After], w.Explain)
		}
	}
}

// sweepRow is one value of a sweep.
type sweepRow struct {
	Value     float64 `json:"value"`
	Approved  int     `json:"approved"`
	Rejected  int     `json:"rejected"`
	Grade     string  `json:"grade,omitempty"`
	Composite float64 `json:"composite,omitempty"`
}

func (a *app) sweep(recorded *runner.Recorded, file string, f *planFlags, spec string, asJSON bool) error {
	key, rng, ok := strings.Cut(spec, "=")
	parts := strings.Split(rng, ":")
	bad := &runner.UsageError{Err: fmt.Errorf("--sweep %s: want key.path=FROM:TO:STEP, as face.min_similarity=0.40:0.70:0.05", spec)}
	if !ok || key == "" || len(parts) != 3 {
		return bad
	}
	var nums [3]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return bad
		}
		nums[i] = v
	}
	from, to, step := nums[0], nums[1], nums[2]
	if step <= 0 || to < from || (to-from)/step > 1000 {
		return &runner.UsageError{Err: fmt.Errorf("--sweep %s: want FROM <= TO and a STEP above 0 giving at most 1,000 values", spec)}
	}
	decimals := 0
	if _, frac, ok := strings.Cut(parts[2], "."); ok {
		decimals = len(frac)
	}
	var rows []sweepRow
	for i := 0; ; i++ {
		v := from + float64(i)*step
		if v > to+step/1e6 {
			break
		}
		value := strconv.FormatFloat(v, 'f', decimals, 64)
		g := *f
		g.sets = append(append([]string{}, f.sets...), key+"="+value)
		plan, err := a.load(file, &g)
		if err != nil {
			return err
		}
		res, err := plan.WhatIf(recorded)
		if err != nil {
			return err
		}
		row := sweepRow{Value: v}
		if n := len(res.Filters); n > 0 {
			fw := res.Filters[n-1]
			row.Approved, row.Rejected = fw.ApprovedAfter, fw.Items-fw.ApprovedAfter
		}
		if n := len(res.Scorecards); n > 0 {
			row.Grade, row.Composite = res.Scorecards[n-1].GradeAfter, res.Scorecards[n-1].CompositeAfter
		}
		rows = append(rows, row)
	}
	if asJSON {
		return writeJSON(a.stdout, map[string]any{"key": key, "run": recorded.Run.ID, "rows": rows})
	}
	fmt.Fprintf(a.stdout, "whatif %s (run %s), sweeping %s\n", recorded.Run.Pipeline, recorded.Run.ID, key)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tAPPROVED\tREJECTED\tGRADE\t\n", strings.ToUpper(key))
	for _, r := range rows {
		grade := "-"
		if r.Grade != "" {
			grade = fmt.Sprintf("%s (%.4f)", r.Grade, r.Composite)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", strconv.FormatFloat(r.Value, 'f', decimals, 64), r.Approved, r.Rejected, grade)
	}
	return tw.Flush()
}
