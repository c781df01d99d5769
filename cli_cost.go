package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/cost"
	"github.com/lifeos/lifeos/internal/webhook"
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
		Short: "Sum the cost log by activity, day or generation server",
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
				return &runner.UsageError{Err: fmt.Errorf("--by %s: use activity, day or server", by)}
			}
			if asJSON {
				return writeJSON(a.stdout, sum)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "%s\tHOURS\tGPU HOURS\tCOST\tENTRIES\t\n", strings.ToUpper(by))
			for _, g := range append(sum.Groups, sum.Total) {
				fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%d\t\n", g.Key, g.Hours, g.GPUHours, g.Cost, g.Entries)
			}
			return tw.Flush()
		},
	}
	report.Flags().StringVar(&by, "by", "activity", "group by `KEY`: activity, day or server (the generation servers' GPU hours)")
	report.Flags().BoolVar(&asJSON, "json", false, `print {"by", "groups": [{"key", "hours", "gpu_hours", "cost", "entries"}], "total"} (full precision)`)
	report.Flags().StringVar(&since, "since", "", "only entries from `DATE` (2026-11-01) or a duration ago (7d, 12h)")
	var sets []string
	var notify string
	var checkJSON bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Fail when an open session's pod sits idle, or today's spend is over the budget",
		Long: `Check for the two ways GPU money leaks: an open cost session with no lifeos
run started or ended for longer than policy.cost.max_idle (default 30m), and
today's spend (the cost log) plus the open session's accrued cost over
policy.cost.daily_budget (0: no limit). Prints one line per problem and exits
1; --notify URL also posts them to a chat webhook ({"text": ...}: Slack,
Discord's /slack endpoint). Meant for cron:

  */10 * * * * cd ~/studio && lifeos cost check --notify "$LIFEOS_WEBHOOK"`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			pol, err := runner.LoadPolicy(root, runner.DefaultPolicyFile, false, sets)
			if err != nil {
				return err
			}
			lim, err := costLimits(pol)
			if err != nil {
				return err
			}
			var lastRun time.Time
			if runs, err := runner.ListRuns(root); err == nil && len(runs) > 0 {
				lastRun = runs[0].Started
				if runs[0].Finished.After(lastRun) {
					lastRun = runs[0].Finished
				}
			}
			st, err := cost.Check(root, lim, lastRun, time.Now())
			if err != nil {
				return err
			}
			if checkJSON {
				err = writeJSON(a.stdout, st)
			} else {
				for _, f := range st.Findings {
					fmt.Fprintf(a.stdout, "%s: %s\n", strings.ToUpper(f.Kind), f.Message)
				}
				if len(st.Findings) == 0 {
					fmt.Fprintln(a.stdout, costOK(st, lim))
				}
			}
			if err != nil || len(st.Findings) == 0 {
				return err
			}
			if notify != "" {
				lines := make([]string, len(st.Findings))
				for i, f := range st.Findings {
					lines[i] = f.Message
				}
				if err := webhook.Post(a.ctx, notify, "lifeos cost check in "+filepath.Base(root)+": "+strings.Join(lines, "; "), nil); err != nil {
					fmt.Fprintf(a.stderr, "lifeos: %v\n", err)
				}
			}
			return exitError{exitFailed}
		},
	}
	check.Flags().StringArrayVar(&sets, "set", nil, "override a policy value: `key.path=value` (cost.max_idle=2h, cost.daily_budget=20)")
	check.Flags().StringVar(&notify, "notify", "", "also post what is wrong to this chat webhook `URL` (a secret: pass it from the environment)")
	check.Flags().BoolVar(&checkJSON, "json", false, `print {"session", "accrued", "spent_today", "last_activity", "findings": [{"kind", "message"}]}`)
	cmd.AddCommand(start, stop, report, check)
	return cmd
}

// costLimits reads policy.cost.max_idle (a duration: 30m, 2h) and
// policy.cost.daily_budget.
func costLimits(pol *runner.Policy) (cost.Limits, error) {
	var lim cost.Limits
	if v, ok := pol.Get("cost.max_idle"); ok {
		s, isStr := v.(string)
		d, err := time.ParseDuration(s)
		if !isStr || err != nil || d < 0 {
			return lim, &runner.UsageError{Err: fmt.Errorf("policy cost.max_idle: want a duration such as 30m or 2h, got %v", v)}
		}
		lim.MaxIdle = d
	}
	switch v, _ := pol.Get("cost.daily_budget"); b := v.(type) {
	case float64:
		lim.DailyBudget = b
	case int:
		lim.DailyBudget = float64(b)
	}
	return lim, nil
}

// costOK is cost check's line when nothing is wrong.
func costOK(st cost.Status, lim cost.Limits) string {
	s := fmt.Sprintf("ok: today's spend %.2f", st.SpentToday)
	if lim.DailyBudget > 0 {
		s += fmt.Sprintf(" of %.2f", lim.DailyBudget)
	}
	if st.Session != nil {
		s += fmt.Sprintf("; the %s session is open (%.2f so far)", st.Session.Activity, st.Accrued)
	} else {
		s += "; no session open"
	}
	return s
}
