package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/s3store"
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
	// openRemote opens the cache with the shared store named by --remote
	// (the workspace's, for a bare --remote or none) behind it, and checks
	// the store can be reached.
	openRemote := func(url string) (*cache.Cache, error) {
		root, err := a.root()
		if err != nil {
			return nil, err
		}
		if url == "" || url == configuredRemote {
			if url, err = runner.RemoteCache(root); err != nil {
				return nil, err
			}
		}
		if url == "" {
			return nil, &runner.UsageError{Err: fmt.Errorf("no shared cache: set LIFEOS_CACHE=s3://bucket/prefix, or cache.remote in %s, or give --remote=s3://bucket/prefix", runner.WorkspaceFile)}
		}
		s, err := s3store.Open(url)
		if err != nil {
			return nil, &runner.UsageError{Err: err}
		}
		if err := s.Check(a.ctx); err != nil {
			return nil, err
		}
		s.Warn = func(msg string) { fmt.Fprintf(a.stderr, "lifeos: warning: %s\n", msg) }
		c, err := open()
		if err != nil {
			return nil, err
		}
		c.SetRemote(s, s.Warn)
		return c, nil
	}
	remoteFlag := func(cmd *cobra.Command, url *string, what string) {
		cmd.Flags().StringVar(url, "remote", "", what+" the shared store `s3://bucket/prefix` (a bare --remote: the workspace's, from LIFEOS_CACHE or "+runner.WorkspaceFile+")")
		cmd.Flags().Lookup("remote").NoOptDefVal = configuredRemote
	}
	var statsJSON bool
	var statsRemote string
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
			var remote map[string]any
			if statsRemote != "" {
				rc, err := openRemote(statsRemote)
				if err != nil {
					return err
				}
				defer rc.FlushRemote(a.ctx)
				entries, entryBytes, objects, objectBytes, err := rc.RemoteUsage(a.ctx)
				if err != nil {
					return err
				}
				remote = map[string]any{"url": rc.Remote().String(), "entries": entries, "entry_bytes": entryBytes, "objects": objects, "bytes": objectBytes}
			}
			if statsJSON {
				out := map[string]any{"dir": c.Dir(), "entries": s.Entries, "packs": s.Packs, "packed_entries": s.Packed,
					"objects": s.Objects, "bytes": s.ObjectBytes}
				if s.Entries > 0 {
					out["least_recently_used"], out["most_recently_used"] = s.Oldest, s.Newest
				}
				if remote != nil {
					out["remote"] = remote
				}
				return writeJSON(a.stdout, out)
			}
			packed := ""
			if s.Packs > 0 {
				packed = fmt.Sprintf(" (%d in %d packs)", s.Packed, s.Packs)
			}
			fmt.Fprintf(a.stdout, "cache:   %s\nentries: %d%s\nobjects: %d (%s)\n", c.Dir(), s.Entries, packed, s.Objects, runner.HumanBytes(s.ObjectBytes))
			if s.Entries > 0 {
				fmt.Fprintf(a.stdout, "least recently used: %s\nmost recently used:  %s\n", s.Oldest.Format(time.RFC3339), s.Newest.Format(time.RFC3339))
			}
			if remote != nil {
				fmt.Fprintf(a.stdout, "\nshared:  %s\nentries: %d (%s)\nobjects: %d (%s)\n", remote["url"], remote["entries"],
					runner.HumanBytes(remote["entry_bytes"].(int64)), remote["objects"], runner.HumanBytes(remote["bytes"].(int64)))
			}
			return nil
		},
	}
	stats.Flags().BoolVar(&statsJSON, "json", false, `print {"dir", "entries", "packs", "packed_entries", "objects", "bytes", "least_recently_used", "most_recently_used", "remote"}`)
	remoteFlag(stats, &statsRemote, "also count what is in")
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
			fmt.Fprintf(a.stdout, "removed %d entries, %d packs and %d objects (%s)\n", r.Entries, r.Packs, r.Objects, runner.HumanBytes(r.Bytes))
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
	sync := func(use, short, verb, flagWhat string, move func(*cache.Cache) (cache.RemoteStats, error)) *cobra.Command {
		var url string
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  args(cobra.NoArgs),
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := openRemote(url)
				if err != nil {
					return err
				}
				defer c.Close()
				st, err := move(c)
				c.FlushRemote(a.ctx)
				n, bytes := st.Uploaded, st.UploadedBytes
				if verb == "fetched" {
					n, bytes = st.Fetched, st.FetchedBytes
				}
				prep := "to"
				if verb == "fetched" {
					prep = "from"
				}
				fmt.Fprintf(a.stdout, "%s %d entries and objects (%s) %s %s\n", verb, n, runner.HumanBytes(bytes), prep, c.Remote())
				if st.Damaged > 0 {
					fmt.Fprintf(a.stdout, "skipped %d damaged (a miss wherever they are read)\n", st.Damaged)
				}
				if err == nil && st.Failed > 0 {
					err = st.FirstError
				}
				return err
			},
		}
		remoteFlag(cmd, &url, flagWhat)
		return cmd
	}
	push := sync("push", "Upload to the shared cache what it lacks of this workspace's", "uploaded", "upload to", func(c *cache.Cache) (cache.RemoteStats, error) { return c.Push(a.ctx) })
	pull := sync("pull", "Copy from the shared cache what this workspace's lacks (to work offline)", "fetched", "fetch from", func(c *cache.Cache) (cache.RemoteStats, error) { return c.Pull(a.ctx) })
	cmd.AddCommand(stats, gc, verify, push, pull)
	return cmd
}

// configuredRemote is what a bare --remote stands for.
const configuredRemote = "workspace"

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
