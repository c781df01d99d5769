package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

// scoreFlags are the flags `score` and `calibrate` share.
type scoreFlags struct {
	scorers   []string
	reference string
	policy    string
	sets      []string
}

func (f *scoreFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.scorers, "scorer", nil, "a built-in scorer: sharpness, exposure, skin or face (repeatable; default: all, face only with --reference)")
	cmd.Flags().StringVar(&f.reference, "reference", "", "`DIR` of photos of the person, inside the workspace: face compares with them, skin scores realism against them")
	cmd.Flags().StringVar(&f.policy, "policy", runner.DefaultPolicyFile, "threshold policy `FILE` (the scorers read face.min_detection_score)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a policy value: `key.path=value`")
}

func (a *app) scoreCmd() *cobra.Command {
	var f scoreFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "score [flags] IMAGE|DIR...",
		Short: "Score images with the built-in scorers, as a pipeline would",
		Long: `Score images from the command line with the built-in scorers: every metric
a pipeline's score step would attach, named <scorer>.<metric>, from the same
code and the same per-image cache (an image scored by a run is not scored
again). A directory stands for the images below it.

  lifeos score out/production/images/0001_seed1001.png
  lifeos score --scorer skin --scorer face --reference datasets/reference out/production/images
  lifeos score --json photo.png`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			if argv, err = a.args(argv); err != nil {
				return err
			}
			if err := a.scoreFlagPaths(cmd, &f); err != nil {
				return err
			}
			results, err := a.scoreImages(root, &f, argv)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"images": results})
			}
			for _, r := range results {
				fmt.Fprintln(a.stdout, r.Path)
				for _, name := range slices.Sorted(maps.Keys(r.Metrics)) {
					fmt.Fprintf(a.stdout, "  %-28s %g\n", name, r.Metrics[name])
				}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"images": [{"path", "metrics": {"skin.realism": 0.9, ...}}]}`)
	return cmd
}

// scoreImages runs the chosen built-in scorers over the images named by
// args (files, or directories searched for images) with the workspace's
// cache and policy, and returns every image's metrics as <scorer>.<metric>.
// scoreFlagPaths makes the paths of --reference and --policy relative to
// the workspace root (see arg).
func (a *app) scoreFlagPaths(cmd *cobra.Command, f *scoreFlags) (err error) {
	if f.reference, err = a.flagPath(cmd, "reference", f.reference); err != nil {
		return err
	}
	f.policy, err = a.flagPath(cmd, "policy", f.policy)
	return err
}

func (a *app) scoreImages(root string, f *scoreFlags, args []string) ([]runner.ImageScores, error) {
	reference := ""
	if f.reference != "" {
		rel, err := workspacePath(root, f.reference)
		if err != nil {
			return nil, &runner.UsageError{Err: fmt.Errorf("--reference: %w", err)}
		}
		reference = rel
	}
	pol, err := runner.LoadPolicy(root, f.policy, f.policy != runner.DefaultPolicyFile, f.sets)
	if err != nil {
		return nil, err
	}
	files, err := imageFiles(root, args)
	if err != nil {
		return nil, err
	}
	return runner.ScoreImages(a.ctx, runner.ScoreRequest{Root: root, Files: files, Scorers: f.scorers,
		Reference: reference, Policy: pol, Log: a.stderr})
}

// imageFiles expands args (files, or directories searched for images) to
// image paths: relative to root for those inside it, absolute otherwise.
func imageFiles(root string, args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		abs := arg
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(root, arg)
		}
		st, err := os.Stat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &runner.UsageError{Err: fmt.Errorf("%s: no such image or folder", arg)}
		}
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, displayPath(root, abs))
			continue
		}
		var found []string
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && runner.IsImageFile(p) {
				found = append(found, displayPath(root, p))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no images (png, jpg, jpeg, gif) in it", arg)
		}
		out = append(out, found...)
	}
	return out, nil
}

// displayPath is abs relative to root (slash-separated) when it is inside
// it, else abs.
func displayPath(root, abs string) string {
	if rel, err := filepath.Rel(root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(rel)
	}
	return abs
}

// workspacePath is p (relative to the working directory's workspace root,
// or absolute) as a path relative to root; it must be inside root.
func workspacePath(root, p string) (string, error) {
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(root, p)
	}
	rel := displayPath(root, abs)
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s is outside the workspace %s (give -C to score in another)", p, root)
	}
	return rel, nil
}
