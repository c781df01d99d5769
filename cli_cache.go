package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/runner/cache"
)

func (a *app) cacheCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Inspect and trim the content-addressed cache"}
	open := func() (*cache.Cache, error) {
		root, err := a.root()
		if err != nil {
			return nil, err
		}
		dir, err := cache.DefaultDir(root)
		if err != nil {
			return nil, &runner.UsageError{Err: err}
		}
		if dir == "" {
			return nil, &runner.UsageError{Err: fmt.Errorf("the cache is off (LIFEOS_CACHE=off)")}
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
				return &runner.UsageError{Err: fmt.Errorf("--max-age %s: %w", maxAge, err)}
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
