package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/cost"
	"github.com/lifeos/lifeos/runner"
)

func (a *app) costCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cost", Short: "Track GPU time and spending: sessions, and reports of the cost log"}
	var activity string
	var rate float64
	var asJSON bool
	start := &cobra.Command{
		Use:   "start --activity NAME",
		Short: "Open a cost session (one at a time) for time spent outside pipelines",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			if activity == "" {
				return &runner.UsageError{Err: errors.New("cost start needs --activity")}
			}
			if !cmd.Flags().Changed("rate") {
				pol, err := runner.LoadPolicy(root, runner.DefaultPolicyFile, false, nil)
				if err != nil {
					return err
				}
				v, _ := pol.Get("cost.rate_per_hour")
				rate, _ = v.(float64)
			}
			if _, err := cost.Start(root, activity, rate, time.Now()); err != nil {
				var open *cost.SessionOpenError
				if errors.As(err, &open) {
					return &runner.UsageError{Err: fmt.Errorf("%w: lifeos cost stop first", err)}
				}
				return err
			}
			fmt.Fprintf(a.stdout, "started %s at %.2f/h\n", activity, rate)
			return nil
		},
	}
	start.Flags().StringVar(&activity, "activity", "", "what the time is spent on (training, generation, ...)")
	start.Flags().Float64Var(&rate, "rate", 0, "hourly `RATE` (default policy.cost.rate_per_hour)")
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Close the open session and log its cost",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			s, e, err := cost.Stop(root, time.Now())
			if errors.Is(err, cost.ErrNoSession) {
				return &runner.UsageError{Err: fmt.Errorf("%w (lifeos cost start --activity NAME)", err)}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "stopped %s after %s: %.2f\n", s.Activity, time.Duration(e.Seconds*float64(time.Second)).Round(time.Second), e.Cost)
			return nil
		},
	}
	var by, since string
	report := &cobra.Command{
		Use:   "report",
		Short: "Sum the cost log by activity or by day",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			from, err := cost.ParseSince(since, time.Now())
			if err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--since %s: %w", since, err)}
			}
			entries, err := cost.Read(root)
			if err != nil {
				return err
			}
			sum, err := cost.Summarize(entries, by, from)
			if err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--by %s: use activity or day", by)}
			}
			if asJSON {
				return writeJSON(a.stdout, sum)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "%s\tHOURS\tCOST\tENTRIES\t\n", strings.ToUpper(by))
			for _, g := range append(sum.Groups, sum.Total) {
				fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%d\t\n", g.Key, g.Hours, g.Cost, g.Entries)
			}
			return tw.Flush()
		},
	}
	report.Flags().StringVar(&by, "by", "activity", "group by `KEY`: activity or day")
	report.Flags().BoolVar(&asJSON, "json", false, `print {"by", "groups": [{"key", "hours", "cost", "entries"}], "total"} (full precision)`)
	report.Flags().StringVar(&since, "since", "", "only entries from `DATE` (2026-11-01) or a duration ago (7d, 12h)")
	cmd.AddCommand(start, stop, report)
	return cmd
}
