package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "score",
		Version: 1,
		Summary: "score every item with a scorer; metrics go to item.<step id>.<metric>",
		New:     func() Step { return new(Score) },
	})
}

// Score runs a scorer over the items of its needs and files the metrics
// under the step's id: `item.<step id>.<metric>`. Each (image, scorer,
// settings) is scored once: results are kept in the per-item cache, so a
// batch that grows by ten images scores ten.
//
// Built-in scorers (sharpness, exposure, skin) run in process. External
// ones speak a JSON protocol (see external.go): `command` runs a program
// once per batch of images, `http` posts to a service, and `face` compares
// embeddings from either with those of a reference set.
type Score struct {
	Scorer    string         `yaml:"scorer" doc:"sharpness, exposure, skin, face, command or http"`
	Command   []string       `yaml:"command" doc:"command scorer, or face embedder: the program and its arguments"`
	URL       string         `yaml:"url" doc:"http scorer, or face embedder: the endpoint to POST to"`
	Params    map[string]any `yaml:"params" doc:"passed to an external scorer with every request"`
	Inputs    []string       `yaml:"inputs" doc:"files the external scorer depends on (its code, its model): part of every score's key"`
	Reference string         `yaml:"reference" doc:"face: a directory of reference photos of the person"`
	Face      string         `yaml:"face" doc:"face: largest (default) compares an image's largest face; all compares its best-matching face"`
	Batch     int            `yaml:"batch" doc:"images per external request (default 16)"`
	Items     any            `yaml:"items" doc:"the items to score, e.g. ${{ steps.gen.outputs.items }} (default: the needs' items)"`
}

// imageScorer is one built-in scorer. score gets the decoded image and its
// SHA-256, which identifies it for per-image memos.
type imageScorer struct {
	version int
	metrics []string
	score   func(img image.Image, digest string) map[string]float64
}

var scorers = map[string]imageScorer{
	"sharpness": {1, []string{"sharpness"}, pixelsOnly(scoreSharpness)},
	"exposure":  {1, []string{"mean_luminance", "clipped_fraction"}, pixelsOnly(scoreExposure)},
	"skin":      {2, []string{"texture", "skin_fraction", "face"}, scoreSkinOnFace},
}

// pixelsOnly adapts a scorer that needs nothing but the pixels.
func pixelsOnly(f func(image.Image) map[string]float64) func(image.Image, string) map[string]float64 {
	return func(img image.Image, _ string) map[string]float64 { return f(img) }
}

func scorerNames() []string {
	names := []string{"command", "face", "http"}
	for n := range scorers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks the scorer and its params.
func (s *Score) Validate() error {
	external := s.Command != nil || s.URL != ""
	switch s.Scorer {
	case "command":
		if len(s.Command) == 0 {
			return errors.New("scorer command needs command: [program, args...]")
		}
	case "http":
		if s.URL == "" {
			return errors.New("scorer http needs url: the endpoint to POST to")
		}
	case "face":
		if s.Reference == "" {
			return errors.New("scorer face needs reference: a directory of photos of the person")
		}
		if s.Face != "" && s.Face != "largest" && s.Face != "all" {
			return fmt.Errorf("face: %q: want largest or all", s.Face)
		}
		if err := pathglob.Check(s.Reference); err != nil {
			return err
		}
	default:
		if _, ok := scorers[s.Scorer]; !ok {
			return fmt.Errorf("unknown scorer %q (scorers: %s)", s.Scorer, strings.Join(scorerNames(), ", "))
		}
		if external || s.Reference != "" || len(s.Params) > 0 || s.Face != "" {
			return fmt.Errorf("scorer %s takes no command, url, params, reference or face", s.Scorer)
		}
	}
	if len(s.Command) > 0 && len(s.URL) > 0 {
		return errors.New("give command or url, not both")
	}
	for _, in := range s.Inputs {
		if err := pathglob.Check(in); err != nil {
			return fmt.Errorf("inputs: %w", err)
		}
	}
	return nil
}

// Deps: the step scores its needs' items and reads the evaluator's files
// and the reference photos.
func (s *Score) Deps(map[string]Outputs) Deps {
	r := append([]string{}, s.Inputs...)
	if s.Reference != "" {
		r = append(r, s.Reference)
	}
	return Deps{Items: true, Reads: r}
}

// identity is what, besides the image, decides a score: the scorer, its
// version or settings, and the content of the files it depends on.
func (s *Score) identity(root string) (string, error) {
	if sc, ok := scorers[s.Scorer]; ok {
		return fmt.Sprintf("%s v%d", s.Scorer, sc.version), nil
	}
	files, err := digestFiles(root, s.Inputs)
	if err != nil {
		return "", err
	}
	ident := map[string]any{"scorer": s.Scorer, "command": s.Command, "url": s.URL, "params": s.Params, "inputs": files}
	if s.builtinEmbedder() {
		ident["embedder"] = builtinEmbedderID
	}
	b, _ := json.Marshal(ident)
	return string(b), nil
}

// Run scores every item, from the cache where possible.
func (s *Score) Run(ctx context.Context, env *Env) (Outputs, error) {
	if s.Items != nil {
		items, err := ItemsFrom(s.Items)
		if err != nil {
			return nil, err
		}
		env.Items = items
	}
	if len(env.Items) == 0 {
		return nil, errors.New("no items to score: score needs a step that produces items (images, comfyui.generate)")
	}
	id, err := s.identity(env.Root)
	if err != nil {
		return nil, err
	}
	if s.Scorer == "face" {
		ref, err := s.referenceDigest(env.Root)
		if err != nil {
			return nil, err
		}
		id += " reference " + ref
	}
	results := make([]map[string]any, len(env.Items))
	var todo []int
	for i, it := range env.Items {
		if env.Cache != nil {
			if data, ok := env.Cache.Get("score " + id + " " + it.SHA256); ok && json.Unmarshal(data, &results[i]) == nil {
				continue
			}
		}
		todo = append(todo, i)
	}
	var computed []map[string]any
	switch s.Scorer {
	case "command", "http":
		computed, err = s.external(ctx, env, pick(env.Items, todo))
	case "face":
		computed, err = s.faces(ctx, env, pick(env.Items, todo))
	default:
		computed, err = s.builtin(ctx, env, pick(env.Items, todo))
	}
	if err != nil {
		return nil, err
	}
	for k, i := range todo {
		results[i] = computed[k]
		if env.Cache != nil {
			data, _ := json.Marshal(computed[k])
			if err := env.Cache.Put("score "+id+" "+env.Items[i].SHA256, data); err != nil {
				fmt.Fprintf(env.Log, "warning: %s: score not cached: %v\n", env.Items[i].Path, err)
			}
		}
	}
	out := make([]Item, len(env.Items))
	for i, it := range env.Items {
		out[i] = it.With(env.StepID, results[i])
	}
	fmt.Fprintf(env.Log, "%d items: %d scored, %d from cache\n", len(out), len(todo), len(out)-len(todo))
	mean := meanMetrics(out, env.StepID)
	var parts []string
	for _, m := range sortedKeys(mean) {
		parts = append(parts, fmt.Sprintf("%s %.3f", m, mean[m]))
	}
	return Outputs{"items": out, "count": len(out), "mean": mean, "summary": "mean " + strings.Join(parts, ", ")}, nil
}

func pick(items []Item, idx []int) []Item {
	out := make([]Item, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	return out
}

// builtin scores items in parallel with an in-process scorer.
func (s *Score) builtin(ctx context.Context, env *Env, items []Item) ([]map[string]any, error) {
	sc := scorers[s.Scorer]
	out := make([]map[string]any, len(items))
	err := eachImage(ctx, env, items, "images", func(i int, img image.Image) error {
		m := map[string]any{}
		for k, v := range sc.score(img, items[i].SHA256) {
			m[k] = v
		}
		out[i] = m
		return nil
	})
	return out, err
}

// eachImage decodes every item's image (checking its digest) and calls fn
// with it, up to one image per CPU at a time, reporting progress in unit.
// It stops starting images once ctx is cancelled.
func eachImage(ctx context.Context, env *Env, items []Item, unit string, fn func(i int, img image.Image) error) error {
	errs := make([]error, len(items))
	var done atomic.Int64
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, it := range items {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			img, err := loadItemImage(env.Root, it)
			if err == nil {
				err = fn(i, img)
			}
			errs[i] = err
			env.progress(unit, int(done.Add(1)), len(items))
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// meanMetrics averages each numeric metric over the items that have it,
// for gates such as `outputs.mean.sharpness >= 0.4`.
func meanMetrics(items []Item, id string) map[string]float64 {
	sum, n := map[string]float64{}, map[string]int{}
	for _, it := range items {
		m, _ := it.Fields[id].(map[string]any)
		for name, v := range m {
			if f, ok := number(v); ok {
				sum[name] += f
				n[name]++
			}
		}
	}
	mean := map[string]float64{}
	for name, total := range sum {
		mean[name] = round4(total / float64(n[name]))
	}
	return mean
}

// loadItemImage decodes an item's image, checking that the file is still
// the one the item describes: a score must never be filed under another
// image's digest.
func loadItemImage(root string, it Item) (image.Image, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(it.Path)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	img, _, err := image.Decode(io.TeeReader(f, h))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.Path, err)
	}
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("%s: %w", it.Path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != it.SHA256 {
		return nil, fmt.Errorf("%s changed since it was listed (sha256 differs)", it.Path)
	}
	return img, nil
}
