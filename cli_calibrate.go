package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/roc"
	"github.com/lifeos/lifeos/runner"
)

// policyKeys names, for a metric (<scorer>.<metric>), the policy key that
// gates it in the shipped pipelines and policy: what `calibrate` prints a
// --set line for. Each gate accepts at or beyond the threshold in the
// metric's better direction.
var policyKeys = map[string]struct {
	key    string
	higher bool // the gate accepts values at or above the key (else at or below)
}{
	"face.similarity":            {"face.min_similarity", true},
	"face.distance":              {"face.max_distance", false},
	"face.detection_score":       {"face.min_detection_score", true},
	"skin.realism":               {"skin.min_realism", true},
	"sharpness.sharpness":        {"sharpness.min", true},
	"exposure.face_luminance":    {"exposure.min_face_luminance", true},
	"exposure.shadow_clipped":    {"exposure.max_shadow_clipped", false},
	"exposure.highlight_clipped": {"exposure.max_highlight_clipped", false},
	"exposure.clipped_fraction":  {"exposure.max_clipped_fraction", false},
}

// calibration is one metric in `lifeos calibrate --json`.
type calibration struct {
	Metric string `json:"metric"`
	roc.Result
	AtFAR1 roc.Threshold `json:"at_far_1pct"`
	AtFAR5 roc.Threshold `json:"at_far_5pct"`
	Set    string        `json:"set,omitempty"`
}

func (a *app) calibrateCmd() *cobra.Command {
	var f scoreFlags
	var good, bad, metrics []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "calibrate --good DIR --bad DIR [flags]",
		Short: "Choose thresholds from examples you labelled good and bad, with their error rates",
		Long: `Score the images you labelled by folder (--good: images you would approve,
--bad: images you would reject) with the built-in scorers, and print, per
metric: how well it separates them (ROC AUC: 1 perfectly, 0.5 not at all),
the threshold where false accepts equal false rejects, the thresholds that
let through at most 1% and 5% of the bad images with the share of good ones
they keep, and the --set line for the 5% threshold.

  lifeos calibrate --good labelled/good --bad labelled/plastic --metric skin.realism
  lifeos calibrate --good ok --bad wrong-person --reference datasets/reference --metric face.distance`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(good) == 0 || len(bad) == 0 {
				return &runner.UsageError{Err: fmt.Errorf("calibrate needs --good DIR and --bad DIR")}
			}
			root, err := a.root()
			if err != nil {
				return err
			}
			if good, err = a.args(good); err != nil {
				return err
			}
			if bad, err = a.args(bad); err != nil {
				return err
			}
			if err := a.scoreFlagPaths(cmd, &f); err != nil {
				return err
			}
			// Only the scorers of the metrics asked for.
			if len(f.scorers) == 0 && len(metrics) > 0 {
				seen := map[string]bool{}
				for _, m := range metrics {
					if sc, _, ok := strings.Cut(m, "."); ok && !seen[sc] {
						seen[sc] = true
						f.scorers = append(f.scorers, sc)
					}
				}
			}
			g, err := a.scoreImages(root, &f, good)
			if err != nil {
				return err
			}
			b, err := a.scoreImages(root, &f, bad)
			if err != nil {
				return err
			}
			cals, err := calibrate(g, b, metrics)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"good": len(g), "bad": len(b), "metrics": cals})
			}
			fmt.Fprintf(a.stdout, "%d good, %d bad images\n\n", len(g), len(b))
			fmt.Fprintf(a.stdout, "%-28s %6s  %-24s %-26s %-26s %s\n", "METRIC", "AUC", "EQUAL ERROR", "AT 1% FALSE ACCEPT", "AT 5% FALSE ACCEPT", "SET")
			for _, c := range cals {
				op := ">="
				if !c.HigherIsBetter {
					op = "<="
				}
				at := func(t roc.Threshold) string {
					if t.TAR == 0 {
						return "none keeps any"
					}
					return fmt.Sprintf("%s %-8.4g keeps %3.0f%%", op, t.Value, 100*t.TAR)
				}
				fmt.Fprintf(a.stdout, "%-28s %6.3f  %s %-8.4g (%4.1f%%)  %-26s %-26s %s\n", c.Metric, c.AUC, op, c.EERAt.Value, 100*c.EER, at(c.AtFAR1), at(c.AtFAR5), c.Set)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVar(&good, "good", nil, "`DIR` (or image) of examples to approve (repeatable)")
	cmd.Flags().StringArrayVar(&bad, "bad", nil, "`DIR` (or image) of examples to reject (repeatable)")
	cmd.Flags().StringArrayVar(&metrics, "metric", nil, "calibrate only `SCORER.METRIC` (repeatable; default: every metric both sets have)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {good, bad, metrics: [{metric, auc, eer, eer_at, at_far_1pct, at_far_5pct, set}]}")
	return cmd
}

// calibrate analyses each metric that every good and bad image has (or
// the ones asked for). A metric's direction is the one in which the good
// images score better.
func calibrate(good, bad []runner.ImageScores, want []string) ([]calibration, error) {
	names := want
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(good[0].Metrics))
	}
	var out []calibration
	for _, name := range names {
		g, okG := values(good, name)
		b, okB := values(bad, name)
		if !okG || !okB {
			if len(want) > 0 {
				return nil, &runner.UsageError{Err: fmt.Errorf("--metric %s: not every image has it (metrics: %s)", name, strings.Join(slices.Sorted(maps.Keys(good[0].Metrics)), ", "))}
			}
			continue // a face metric of an image without a face
		}
		r := roc.Analyze(g, b, true)
		if r.AUC < 0.5 {
			r = roc.Analyze(g, b, false)
		}
		c := calibration{Metric: name, Result: r, AtFAR1: r.AtFAR(g, b, 0.01), AtFAR5: r.AtFAR(g, b, 0.05)}
		// A gate works one way: no --set line when the examples say the
		// metric works the other way round.
		if k, ok := policyKeys[name]; ok && k.higher == r.HigherIsBetter {
			c.Set = fmt.Sprintf("--set %s=%.4g", k.key, c.AtFAR5.Value)
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AUC > out[j].AUC })
	return out, nil
}

// values is the metric of every image, and whether each had it.
func values(imgs []runner.ImageScores, name string) ([]float64, bool) {
	out := make([]float64, 0, len(imgs))
	for _, im := range imgs {
		v, ok := im.Metrics[name]
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}
