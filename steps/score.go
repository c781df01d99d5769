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
type Score struct {
	// Scorer names the metric family.
	Scorer string `yaml:"scorer" doc:"the scorer: sharpness, exposure or skin"`
}

// imageScorer is one built-in scorer.
type imageScorer struct {
	version int
	metrics []string
	score   func(img image.Image) map[string]float64
}

var scorers = map[string]imageScorer{
	"sharpness": {1, []string{"sharpness"}, scoreSharpness},
	"exposure":  {1, []string{"mean_luminance", "clipped_fraction"}, scoreExposure},
	"skin":      {1, []string{"texture", "skin_fraction"}, scoreSkin},
}

func scorerNames() []string {
	names := make([]string, 0, len(scorers))
	for n := range scorers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks the scorer name.
func (s *Score) Validate() error {
	if _, ok := scorers[s.Scorer]; !ok {
		return fmt.Errorf("unknown scorer %q (scorers: %s)", s.Scorer, strings.Join(scorerNames(), ", "))
	}
	return nil
}

// ReadsItems says the step scores its needs' items.
func (s *Score) ReadsItems() bool { return true }

// Run scores every item, in parallel, from the cache where possible.
func (s *Score) Run(ctx context.Context, env *Env) (Outputs, error) {
	if len(env.Items) == 0 {
		return nil, errors.New("no items to score: score needs a step that produces items (images, comfyui.generate)")
	}
	sc := scorers[s.Scorer]
	out := make([]Item, len(env.Items))
	errs := make([]error, len(env.Items))
	var mu sync.Mutex
	fromCache := 0
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, it := range env.Items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			key := fmt.Sprintf("score %s v%d %s", s.Scorer, sc.version, it.SHA256)
			var m map[string]float64
			if env.Cache != nil {
				if data, ok := env.Cache.Get(key); ok && json.Unmarshal(data, &m) == nil {
					mu.Lock()
					fromCache++
					mu.Unlock()
				} else {
					m = nil
				}
			}
			if m == nil {
				img, err := loadItemImage(env.Root, it)
				if err != nil {
					errs[i] = err
					return
				}
				m = sc.score(img)
				if env.Cache != nil {
					data, _ := json.Marshal(m)
					if err := env.Cache.Put(key, data); err != nil {
						fmt.Fprintf(env.Log, "warning: %s: score not cached: %v\n", it.Path, err)
					}
				}
			}
			metrics := make(map[string]any, len(m))
			for k, v := range m {
				metrics[k] = v
			}
			out[i] = it.With(env.StepID, metrics)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Log, "%d items: %d scored, %d from cache\n", len(out), len(out)-fromCache, fromCache)
	mean := meanMetrics(out, env.StepID, sc.metrics)
	var parts []string
	for _, m := range sc.metrics {
		parts = append(parts, fmt.Sprintf("%s %.3f", m, mean[m]))
	}
	return Outputs{"items": out, "count": len(out), "mean": mean, "summary": "mean " + strings.Join(parts, ", ")}, nil
}

// meanMetrics averages each metric over the items, for gates such as
// `outputs.mean.sharpness >= 0.4`.
func meanMetrics(items []Item, id string, metrics []string) map[string]float64 {
	mean := map[string]float64{}
	for _, it := range items {
		m, _ := it.Fields[id].(map[string]any)
		for _, name := range metrics {
			v, _ := m[name].(float64)
			mean[name] += v / float64(len(items))
		}
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
