package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

// costSession is an open stretch of manually tracked GPU time.
type costSession struct {
	Activity string    `json:"activity"`
	Rate     float64   `json:"rate_per_hour"`
	Started  time.Time `json:"started"`
}

func sessionFile(root string) string { return filepath.Join(root, ".lifeos", "cost-session.json") }

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
			name := sessionFile(root)
			if old, err := readSession(name); err == nil {
				return &runner.UsageError{Err: fmt.Errorf("a session for %s is open since %s: lifeos cost stop first", old.Activity, old.Started.Local().Format(time.DateTime))}
			}
			os.MkdirAll(filepath.Dir(name), 0o777)
			// O_EXCL: of two concurrent starts, one wins.
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
			if err != nil {
				return fmt.Errorf("cost session: %w", err)
			}
			s := costSession{Activity: activity, Rate: rate, Started: time.Now().UTC()}
			err = json.NewEncoder(f).Encode(s)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(name)
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
			s, err := readSession(sessionFile(root))
			if err != nil {
				return &runner.UsageError{Err: errors.New("no cost session is open (lifeos cost start --activity NAME)")}
			}
			e := runner.CostEntry{Time: time.Now().UTC(), Activity: s.Activity, Seconds: time.Since(s.Started).Seconds(), Rate: s.Rate}
			if err := runner.AppendCost(root, e); err != nil {
				return err
			}
			if err := os.Remove(sessionFile(root)); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "stopped %s after %s: %.2f\n", s.Activity, time.Duration(e.Seconds*float64(time.Second)).Round(time.Second), e.Seconds/3600*e.Rate)
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
			if by != "activity" && by != "day" {
				return &runner.UsageError{Err: fmt.Errorf("--by %s: use activity or day", by)}
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return &runner.UsageError{Err: fmt.Errorf("--since %s: %w", since, err)}
			}
			entries, err := runner.ReadCosts(root)
			if err != nil {
				return err
			}
			type sum struct {
				secs, cost float64
				n          int
			}
			groups := map[string]*sum{}
			var total sum
			for _, e := range entries {
				if e.Time.Before(from) {
					continue
				}
				key := e.Activity
				if by == "day" {
					key = e.Time.Local().Format(time.DateOnly)
				}
				g := groups[key]
				if g == nil {
					g = &sum{}
					groups[key] = g
				}
				g.secs, g.cost, g.n = g.secs+e.Seconds, g.cost+e.Cost, g.n+1
				total.secs, total.cost, total.n = total.secs+e.Seconds, total.cost+e.Cost, total.n+1
			}
			keys := make([]string, 0, len(groups))
			for k := range groups {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if asJSON {
				type row struct {
					Key     string  `json:"key"`
					Hours   float64 `json:"hours"`
					Cost    float64 `json:"cost"`
					Entries int     `json:"entries"`
				}
				rows := make([]row, 0, len(keys))
				for _, k := range keys {
					g := groups[k]
					rows = append(rows, row{k, g.secs / 3600, g.cost, g.n})
				}
				return writeJSON(a.stdout, map[string]any{"by": by, "groups": rows,
					"total": row{"total", total.secs / 3600, total.cost, total.n}})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "%s\tHOURS\tCOST\tENTRIES\t\n", strings.ToUpper(by))
			for _, k := range keys {
				g := groups[k]
				fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%d\t\n", k, g.secs/3600, g.cost, g.n)
			}
			fmt.Fprintf(tw, "total\t%.2f\t%.2f\t%d\t\n", total.secs/3600, total.cost, total.n)
			return tw.Flush()
		},
	}
	report.Flags().StringVar(&by, "by", "activity", "group by `KEY`: activity or day")
	report.Flags().BoolVar(&asJSON, "json", false, `print {"by", "groups": [{"key", "hours", "cost", "entries"}], "total"} (full precision)`)
	report.Flags().StringVar(&since, "since", "", "only entries from `DATE` (2026-11-01) or a duration ago (7d, 12h)")
	cmd.AddCommand(start, stop, report)
	return cmd
}

func readSession(name string) (costSession, error) {
	var s costSession
	data, err := os.ReadFile(name)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// parseSince reads a date or an age (7d, 12h); "" is the beginning.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil {
			return time.Time{}, errors.New("want a date (2026-11-01) or an age (7d, 12h)")
		}
		return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, errors.New("want a date (2026-11-01) or an age (7d, 12h)")
	}
	return now.Add(-d), nil
}
