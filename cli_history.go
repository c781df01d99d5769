package main

import (
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/internal/evalhist"
	"github.com/lifeos/lifeos/runner"
)

func (a *app) readHistory(cmd *cobra.Command, file string) ([]evalhist.Record, error) {
	root, err := a.root()
	if err != nil {
		return nil, err
	}
	if file, err = a.flagPath(cmd, "history", file); err != nil {
		return nil, err
	}
	recs, skipped, err := evalhist.Read(resolve(root, file))
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(recs) == 0 {
		return nil, &runner.UsageError{Err: fmt.Errorf("%s: %w", file, evalhist.ErrEmpty)}
	}
	if err != nil {
		return nil, err
	}
	if skipped > 0 {
		fmt.Fprintf(a.stderr, "lifeos: %s: skipped %d unreadable line(s)\n", file, skipped)
	}
	return recs, nil
}

func (a *app) historyCmd() *cobra.Command {
	var file string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the evaluations scorecards recorded, newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			recs, err := a.readHistory(cmd, file)
			if asJSON && errors.Is(err, evalhist.ErrEmpty) {
				return writeJSON(a.stdout, []evalhist.Record{})
			}
			if errors.Is(err, evalhist.ErrEmpty) {
				// Nothing yet is an answer, not a failure.
				fmt.Fprintf(a.stdout, "no evaluations yet in %s: a scorecard step appends one per run (pipelines/cycle.yaml has one)\n", file)
				return nil
			}
			if err != nil {
				return err
			}
			if asJSON {
				newest := make([]evalhist.Record, 0, len(recs))
				for i := len(recs) - 1; i >= 0 && (limit <= 0 || len(newest) < limit); i-- {
					newest = append(newest, recs[i])
				}
				return writeJSON(a.stdout, newest)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DATE\tRUN\tLABEL\tGRADE\tCOMPOSITE\tAPPROVED\tIMAGES")
			for i, n := len(recs)-1, 0; i >= 0 && (limit <= 0 || n < limit); i, n = i-1, n+1 {
				r := recs[i]
				approved := "–"
				if r.ApprovedRate != nil {
					approved = fmt.Sprintf("%.0f%%", *r.ApprovedRate*100)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.4f\t%s\t%d\n", r.Timestamp, r.RunID, r.Label, r.Grade, r.Composite, approved, r.Count)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&file, "history", runner.DefaultHistory, "eval history `FILE`")
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most `N` evaluations (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the evaluations as a JSON array, newest first, as the history file holds them")
	return cmd
}

func (a *app) compareCmd() *cobra.Command {
	var file, v1, v2, output, policyFile string
	var sets []string
	cmd := &cobra.Command{
		Use:   "compare --v1 X --v2 Y",
		Short: "Compare two evaluations side by side and recommend whether to promote the second",
		Long: `Compare two evaluations of the eval history: X and Y are run ids, labels or
substrings that match one evaluation only. Every metric's mean gets a delta
and a verdict (improved, regressed, or unchanged within
policy.scorecard.tolerance); v2 is recommended for promotion when its grade
is in policy.scorecard.promote_grades and its composite did not regress.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v1 == "" || v2 == "" {
				return &runner.UsageError{Err: errors.New("compare needs --v1 and --v2")}
			}
			recs, err := a.readHistory(cmd, file)
			if err != nil {
				return err
			}
			r1, err := evalhist.Find(recs, v1)
			if err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--v1: %w", err)}
			}
			r2, err := evalhist.Find(recs, v2)
			if err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--v2: %w", err)}
			}
			root, _ := a.root()
			if policyFile, err = a.arg(policyFile); err != nil {
				return err
			}
			if output, err = a.arg(output); err != nil {
				return err
			}
			required := policyFile != ""
			if policyFile == "" {
				policyFile = runner.DefaultPolicyFile
			}
			pol, err := runner.LoadPolicy(root, policyFile, required, sets)
			if err != nil {
				return err
			}
			opts, err := compareOptions(pol.Map())
			if err != nil {
				return &runner.UsageError{Err: err}
			}
			c := evalhist.Compare(r1, r2, opts)
			md := c.Markdown()
			if output != "" {
				if err := atomicfile.WriteFile(resolve(root, output), []byte(md), 0o666); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: %s (%s)\n", output, c.Recommendation, c.Reason)
				return nil
			}
			_, err = fmt.Fprint(a.stdout, md)
			return err
		},
	}
	cmd.Flags().StringVar(&file, "history", runner.DefaultHistory, "eval history `FILE`")
	cmd.Flags().StringVar(&v1, "v1", "", "the baseline: run id, label or unique substring")
	cmd.Flags().StringVar(&v2, "v2", "", "the candidate: run id, label or unique substring")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the Markdown report to `FILE`")
	cmd.Flags().StringVar(&policyFile, "policy", "", "threshold policy `FILE`")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a policy value: `key.path=value`")
	return cmd
}

// compareOptions reads the comparison settings from a policy.
func compareOptions(policy map[string]any) (evalhist.Options, error) {
	sc, _ := policy["scorecard"].(map[string]any)
	return runner.CompareOptions(sc)
}
