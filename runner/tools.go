package runner

import (
	"context"
	"fmt"
	"image"
	"io"
	"slices"
	"strings"

	"github.com/lifeos/lifeos/internal/evalhist"
	"github.com/lifeos/lifeos/steps"
)

// What the command line's tools (score, calibrate, face, comfy inspect,
// history) need from the step types, so that package main talks to the
// runner alone.

// DefaultHistory is the eval history file a scorecard appends to unless
// told otherwise.
const DefaultHistory = steps.DefaultHistory

// CompareOptions reads policy.scorecard (tolerance, promote_grades,
// lower_is_better, promote_requires) as the compare step does.
func CompareOptions(scorecard map[string]any) (evalhist.Options, error) {
	return steps.CompareOptions(scorecard)
}

// WorkflowInput is one value a generation would patch in a workflow.
type WorkflowInput = steps.WorkflowInput

// InspectWorkflow says what comfyui.generate would patch in a workflow
// (API format): each role's nodes and inputs, and notes on what it could
// not decide. nodes names roles' nodes explicitly, as a step's nodes: does.
func InspectWorkflow(name string, data []byte, nodes map[string]string) ([]WorkflowInput, []string, error) {
	return steps.InspectWorkflow(name, data, nodes)
}

// CheckPixels refuses an image whose header declares more pixels than
// lifeos decodes (a decompression bomb), before anything decodes it.
func CheckPixels(cfg image.Config) error { return steps.CheckPixels(cfg) }

// IsImageFile says whether a file name has one of the image formats the
// steps read.
func IsImageFile(name string) bool { return steps.IsImageFile(name) }

// BuiltinScorers are the names of the built-in scorers.
func BuiltinScorers() []string { return steps.BuiltinScorers() }

// ImageScores is one image scored by ScoreImages: its metrics by
// "scorer.metric".
type ImageScores struct {
	Path    string             `json:"path"`
	Metrics map[string]float64 `json:"metrics"`
}

// ScoreRequest is what ScoreImages scores, with what.
type ScoreRequest struct {
	Root  string
	Files []string // images, relative to Root or absolute
	// Scorers are built-in scorer names; none means all of them (face only
	// with a Reference).
	Scorers []string
	// Reference is the folder of the person's photos (relative to Root),
	// for face and skin.
	Reference string
	Policy    *Policy
	Log       io.Writer // each scorer's counts, and its diagnostics
}

// ScoreImages scores images outside any pipeline with the built-in
// scorers, through the workspace's per-item cache: what a score step
// measured is not measured again, and what this measures a step reuses.
func ScoreImages(ctx context.Context, r ScoreRequest) ([]ImageScores, error) {
	builtin := steps.BuiltinScorers()
	names := r.Scorers
	if len(names) == 0 {
		for _, n := range builtin {
			if n != "face" || r.Reference != "" {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if !slices.Contains(builtin, n) {
			return nil, &UsageError{fmt.Errorf("--scorer %s: want one of %s", n, strings.Join(builtin, ", "))}
		}
		if n == "face" && r.Reference == "" {
			return nil, &UsageError{fmt.Errorf("--scorer face needs --reference DIR: photos of the person")}
		}
	}
	items := make([]steps.Item, len(r.Files))
	for i, file := range r.Files {
		var err error
		if items[i], err = steps.DescribeImage(r.Root, file); err != nil {
			return nil, err
		}
	}
	cache, err := ItemCache(r.Root)
	if err != nil {
		return nil, err
	}
	results := make([]ImageScores, len(items))
	for i, file := range r.Files {
		results[i] = ImageScores{Path: file, Metrics: map[string]float64{}}
	}
	for _, n := range names {
		s := &steps.Score{Scorer: n}
		if n == "face" || n == "skin" {
			s.Reference = r.Reference
		}
		if err := s.Validate(); err != nil {
			return nil, &UsageError{err}
		}
		env := &steps.Env{Root: r.Root, Log: r.Log, StepID: n, Cache: cache, Policy: map[string]any{}}
		for _, key := range s.Deps(nil).Policy {
			env.Policy[key], _ = r.Policy.Get(key)
		}
		metrics, scored, err := s.Metrics(ctx, env, items)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		fmt.Fprintf(r.Log, "%s: %d images: %d scored, %d from cache\n", n, len(items), scored, len(items)-scored)
		for i, m := range metrics {
			for k, v := range m {
				if x, ok := v.(float64); ok {
					results[i].Metrics[n+"."+k] = x
				}
			}
		}
	}
	return results, nil
}
