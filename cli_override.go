package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/overrides"
	"github.com/lifeos/lifeos/runner"
)

func (a *app) overrideCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "override",
		Short: "Approve or reject images by hand, whatever their scores: decisions that survive re-runs",
		Long: `Record human decisions in overrides.yaml at the workspace root (commit it):
each names an image by its content (SHA-256), with the path it had, the
decision, a reason, who (git config user.name, else $USER) and when. Every
filter applies them before its expression, so threshold edits and re-runs
keep them; the report marks them ("override: reason") and lifeos whatif
counts them. Changing the file re-runs the filters, not the scoring.

  lifeos override approve out/production/images/0007_seed1007.png --reason "hands fine at full size"
  lifeos override list
  lifeos override rm out/production/images/0007_seed1007.png`,
	}
	var reason string
	decide := func(decision string) *cobra.Command {
		c := &cobra.Command{
			Use:   decision + " IMAGE... --reason TEXT",
			Short: strings.ToUpper(decision[:1]) + decision[1:] + " images whatever their scores",
			Args:  args(cobra.MinimumNArgs(1)),
			RunE: func(cmd *cobra.Command, argv []string) error {
				if strings.TrimSpace(reason) == "" {
					return &runner.UsageError{Err: errors.New("override " + decision + " needs --reason: say why, for whoever reviews overrides.yaml")}
				}
				root, list, err := a.overrides()
				if err != nil {
					return err
				}
				by, at := whoAmI(), time.Now().UTC().Format(time.RFC3339)
				for _, img := range argv {
					p, err := a.arg(img) // workspace-relative, or absolute outside it
					if err != nil {
						return err
					}
					sum, err := filehash.Hex(resolve(root, p))
					if err != nil {
						return fmt.Errorf("override: %w", err)
					}
					o := overrides.Override{SHA256: sum, Path: filepath.ToSlash(p), Decision: decision, Reason: reason, By: by, At: at}
					replaced := false
					for i := range list {
						if list[i].SHA256 == sum {
							list[i], replaced = o, true
						}
					}
					if !replaced {
						list = append(list, o)
					}
					fmt.Fprintf(a.stdout, "%s %s (%s): %s\n", decision, o.Path, sum[:12], reason)
				}
				return overrides.Write(root, list)
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why (required): it is recorded and shown in reports")
		return c
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the overrides",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, l, err := a.overrides()
			if err != nil {
				return err
			}
			if asJSON {
				if l == nil {
					l = []overrides.Override{}
				}
				return writeJSON(a.stdout, l)
			}
			if len(l) == 0 {
				fmt.Fprintln(a.stdout, "no overrides (lifeos override approve|reject IMAGE --reason TEXT makes one)")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DECISION\tIMAGE\tSHA256\tBY\tAT\tREASON")
			for _, o := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Decision, o.Path, o.SHA256[:12], o.By, o.At, o.Reason)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, `print [{"sha256", "path", "decision", "reason", "by", "at"}]`)
	rm := &cobra.Command{
		Use:   "rm IMAGE|SHA256...",
		Short: "Remove overrides: by image file, recorded path or SHA-256 prefix",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, l, err := a.overrides()
			if err != nil {
				return err
			}
			for _, q := range argv {
				sum, p := "", ""
				if p, err = a.arg(q); err == nil {
					p = filepath.ToSlash(p)
					sum, _ = filehash.Hex(resolve(root, p)) // "" when the image is gone
				}
				n := len(l)
				kept := l[:0]
				for _, o := range l {
					if o.SHA256 == sum || o.Path == p || len(q) >= 6 && strings.HasPrefix(o.SHA256, q) {
						fmt.Fprintf(a.stdout, "removed %s %s (%s)\n", o.Decision, o.Path, o.SHA256[:12])
						continue
					}
					kept = append(kept, o)
				}
				if l = kept; len(l) == n {
					return &runner.UsageError{Err: fmt.Errorf("override rm: no override matches %s", q)}
				}
			}
			return overrides.Write(root, l)
		},
	}
	cmd.AddCommand(decide("approve"), decide("reject"), list, rm)
	return cmd
}

// overrides reads the workspace's overrides.
func (a *app) overrides() (root string, list []overrides.Override, err error) {
	if root, err = a.root(); err != nil {
		return "", nil, err
	}
	list, err = overrides.Read(root)
	return root, list, err
}

// whoAmI names the person deciding: git's user.name, else $USER.
func whoAmI() string {
	if out, err := exec.Command("git", "config", "user.name").Output(); err == nil {
		if name := strings.TrimSpace(string(out)); name != "" {
			return name
		}
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return os.Getenv("USERNAME") // Windows
}
