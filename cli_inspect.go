package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Inspect the threshold policy"}
	var file string
	var sets []string
	var origin bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the merged policy: built-in defaults < policy file < --set",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			required := file != ""
			if file == "" {
				file = runner.DefaultPolicyFile
			}
			p, err := runner.LoadPolicy(root, file, required, sets)
			if err != nil {
				return err
			}
			out, err := p.YAML(origin)
			if err != nil {
				return err
			}
			if origin {
				src := "built-in defaults only (no " + file + ")"
				if p.File != "" {
					src = p.File
				}
				fmt.Fprintf(a.stdout, "# policy: %s\n", src)
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	show.Flags().StringVar(&file, "policy", "", "policy `FILE` (default "+runner.DefaultPolicyFile+", if present)")
	show.Flags().StringArrayVar(&sets, "set", nil, "override a value: `key.path=value`")
	show.Flags().BoolVar(&origin, "origin", false, "say where each value came from (default, file:line, --set)")
	cmd.AddCommand(show)
	return cmd
}

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
	cmd.AddCommand(list, show)
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

func (a *app) cacheCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Inspect and trim the content-addressed cache"}
	open := func() (*cache.Cache, error) {
		root, err := a.root()
		if err != nil {
			return nil, err
		}
		dir, err := cache.DefaultDir(root)
		if err != nil {
			return nil, &usageError{err}
		}
		if dir == "" {
			return nil, &usageError{fmt.Errorf("the cache is off (LIFEOS_CACHE=off)")}
		}
		return cache.Open(dir)
	}
	var statsJSON bool
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Count entries and objects and their size",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := open()
			if err != nil {
				return err
			}
			s, err := c.Stats()
			if err != nil {
				return err
			}
			if statsJSON {
				out := map[string]any{"dir": c.Dir(), "entries": s.Entries, "packs": s.Packs, "packed_entries": s.Packed,
					"objects": s.Objects, "bytes": s.ObjectBytes}
				if s.Entries > 0 {
					out["least_recently_used"], out["most_recently_used"] = s.Oldest, s.Newest
				}
				return writeJSON(a.stdout, out)
			}
			packed := ""
			if s.Packs > 0 {
				packed = fmt.Sprintf(" (%d in %d packs)", s.Packed, s.Packs)
			}
			fmt.Fprintf(a.stdout, "cache:   %s\nentries: %d%s\nobjects: %d (%s)\n", c.Dir(), s.Entries, packed, s.Objects, humanBytes(s.ObjectBytes))
			if s.Entries > 0 {
				fmt.Fprintf(a.stdout, "least recently used: %s\nmost recently used:  %s\n", s.Oldest.Format(time.RFC3339), s.Newest.Format(time.RFC3339))
			}
			return nil
		},
	}
	stats.Flags().BoolVar(&statsJSON, "json", false, `print {"dir", "entries", "packs", "packed_entries", "objects", "bytes", "least_recently_used", "most_recently_used"}`)
	var maxAge string
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove entries unused for longer than --max-age and objects nothing refers to",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			age, err := parseAge(maxAge)
			if err != nil {
				return &usageError{fmt.Errorf("--max-age %s: %w", maxAge, err)}
			}
			c, err := open()
			if err != nil {
				return err
			}
			r, err := c.Trim(age)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %d entries, %d packs and %d objects (%s)\n", r.Entries, r.Packs, r.Objects, humanBytes(r.Bytes))
			return nil
		},
	}
	gc.Flags().StringVar(&maxAge, "max-age", "30d", "keep what was used within `AGE` (30d, 12h, 0 for everything unused now)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every object and check every entry; remove what is damaged",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := open()
			if err != nil {
				return err
			}
			checked, problems, err := c.Verify()
			if err != nil {
				return err
			}
			root, _ := a.root()
			for _, p := range problems {
				rel, rerr := filepath.Rel(root, p.Path)
				if rerr != nil {
					rel = p.Path
				}
				fmt.Fprintf(a.stdout, "removed %s: %s\n", rel, p.Reason)
			}
			fmt.Fprintf(a.stdout, "checked %d files, %d damaged\n", checked, len(problems))
			if len(problems) > 0 {
				return exitError{exitFailed}
			}
			return nil
		},
	}
	cmd.AddCommand(stats, gc, verify)
	return cmd
}

// parseAge accepts Go durations plus a d (days) suffix.
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		if _, err := fmt.Sscan(d, &n); err != nil || n < 0 {
			return 0, fmt.Errorf("expected a number of days such as 30d")
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *app) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the pipeline format (for editor completion)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeJSON(a.stdout, runner.Schema())
		},
	}
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the lifeos version",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(a.stdout, "lifeos "+longVersion())
			return nil
		},
	}
}

// longVersion says which lifeos this is, from the build: the release
// version (or the module's, or "dev"), the VCS revision and whether the
// tree had changes, and the Go toolchain and platform.
func longVersion() string {
	v := version
	var parts []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		var rev, when, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = ", modified"
				}
			}
		}
		if rev != "" {
			parts = append(parts, fmt.Sprintf("commit %.12s %s%s", rev, when, dirty))
		}
	}
	parts = append(parts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return v + " (" + strings.Join(parts, "; ") + ")"
}
