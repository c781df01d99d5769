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
	"runtime"
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
// Scorers are registered by name, one file each (score_*.go). The built-in
// ones (sharpness, exposure, skin, face) run in process; external ones
// speak a JSON protocol (see score_external.go): `command` runs a program
// once per batch of images, `http` posts to a service, and `face` may take
// its embeddings from either.
type Score struct {
	Scorer    string         `yaml:"scorer" doc:"sharpness, exposure, skin, face, command or http"`
	Command   []string       `yaml:"command" doc:"command scorer, or face embedder: the program and its arguments"`
	URL       string         `yaml:"url" doc:"http scorer, or face embedder: the endpoint to POST to"`
	Params    map[string]any `yaml:"params" doc:"passed to an external scorer with every request"`
	Inputs    []string       `yaml:"inputs" doc:"files the external scorer depends on (its code, its model): part of every score's key"`
	Reference string         `yaml:"reference" doc:"photos of the person: required by face; skin scores realism against them"`
	Face      string         `yaml:"face" doc:"face: largest (default) compares an image's largest face; all compares its best-matching face"`
	Batch     int            `yaml:"batch" doc:"images per external request (default 16)"`
	Items     any            `yaml:"items" doc:"the items to score, e.g. ${{ steps.gen.outputs.items }} (default: the needs' items)"`
	OnError   string         `yaml:"on_error" doc:"an external scorer's error for one image: reject (default) files it on the image, which a filter then rejects with the reason; fail stops the step"`
}

// ScoreError is the field a scorer files, under its step id, for an image
// it could not score (with on_error: reject): a filter rejects the image
// with it as the reason, before its expression.
const ScoreError = "error"

// A scorer computes metrics for images. Each lives in a file of its own
// (score_<name>.go) and registers itself.
type scorer interface {
	// check validates the step's settings for this scorer.
	check(s *Score) error
	// identity is what, besides the image, decides the metrics: the
	// scorer's version, its settings, the content of the files and the
	// policy values it reads. It is part of every per-image cache key.
	identity(s *Score, env *Env) (string, error)
	// score computes the metrics of items, one map per item.
	score(ctx context.Context, s *Score, env *Env, items []Item) ([]map[string]any, error)
}

// scorerInfo is a registered scorer.
type scorerInfo struct {
	impl scorer
	// builtin scorers need no command, url or service.
	builtin bool
	// policy are the dotted policy paths the scorer reads (Env.Policy).
	policy []string
}

var scorerRegistry = map[string]scorerInfo{}

func registerScorer(name string, info scorerInfo) {
	if _, dup := scorerRegistry[name]; dup {
		panic("steps: scorer " + name + " registered twice")
	}
	scorerRegistry[name] = info
}

func scorerNames() []string { return sortedKeys(scorerRegistry) }

// BuiltinScorers lists the scorers that run in process, sorted, for
// `lifeos score`.
func BuiltinScorers() []string {
	var out []string
	for _, name := range scorerNames() {
		if scorerRegistry[name].builtin {
			out = append(out, name)
		}
	}
	return out
}

// Validate checks the scorer and its params.
func (s *Score) Validate() error {
	info, ok := scorerRegistry[s.Scorer]
	if !ok {
		return fmt.Errorf("unknown scorer %q (scorers: %s)", s.Scorer, strings.Join(scorerNames(), ", "))
	}
	if len(s.Command) > 0 && len(s.URL) > 0 {
		return errors.New("give command or url, not both")
	}
	if s.OnError != "" && s.OnError != "reject" && s.OnError != "fail" {
		return fmt.Errorf("on_error: %q: want reject or fail", s.OnError)
	}
	if s.Reference != "" {
		if err := pathglob.CheckRead(s.Reference); err != nil {
			return err
		}
	}
	for _, in := range s.Inputs {
		if err := pathglob.CheckRead(in); err != nil {
			return fmt.Errorf("inputs: %w", err)
		}
	}
	return info.impl.check(s)
}

// Deps: the step scores its needs' items and reads the evaluator's files,
// the reference photos and the policy values its scorer uses.
func (s *Score) Deps(map[string]Outputs) Deps {
	r := append([]string{}, s.Inputs...)
	if s.Reference != "" {
		r = append(r, s.Reference)
	}
	return Deps{Items: true, Reads: r, Policy: scorerRegistry[s.Scorer].policy}
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
	metrics, scored, err := s.Metrics(ctx, env, env.Items)
	if err != nil {
		return nil, err
	}
	out := make([]Item, len(env.Items))
	for i, it := range env.Items {
		if out[i], err = it.With(env.StepID, metrics[i]); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(env.Log, "%d items: %d scored, %d from cache\n", len(out), scored, len(out)-scored)
	failed := 0
	for i, m := range metrics {
		if reason, ok := m[ScoreError].(string); ok {
			failed++
			fmt.Fprintf(env.Log, "not scored: %s: %s (a filter rejects it)\n", env.Items[i].Path, reason)
		}
	}
	mean := meanMetrics(out, env.StepID)
	var parts []string
	for _, m := range sortedKeys(mean) {
		parts = append(parts, fmt.Sprintf("%s %.3f", m, mean[m]))
	}
	summary := "mean " + strings.Join(parts, ", ")
	if failed > 0 {
		summary += fmt.Sprintf("; %d not scored", failed)
		env.Incomplete = true
	}
	return Outputs{"items": out, "count": len(out), "mean": mean, "failed": failed, "summary": summary}, nil
}

// Metrics returns the metrics of each item, from env.Cache where it has
// them, and how many were computed: what Run files on the items and what
// `lifeos score` prints.
func (s *Score) Metrics(ctx context.Context, env *Env, items []Item) ([]map[string]any, int, error) {
	sc := scorerRegistry[s.Scorer].impl
	id, err := sc.identity(s, env)
	if err != nil {
		return nil, 0, err
	}
	return perItem(env, "score "+id+" ", "score", items,
		func(todo []Item) ([]map[string]any, error) { return sc.score(ctx, s, env, todo) },
		func(m map[string]any) bool {
			_, failed := m[ScoreError] // an error may pass (a service restarting): never cached
			return !failed
		})
}

// perItem is the per-item cache around a computation: each item's result
// comes from env.Cache under key+its digest where it is there, the rest
// from one call of compute with the missing items, stored back (those keep
// accepts; nil keeps all). It returns the results in item order and how
// many were computed. what names the result in warnings.
func perItem[T any](env *Env, key, what string, items []Item, compute func([]Item) ([]T, error), keep func(T) bool) ([]T, int, error) {
	out := make([]T, len(items))
	var todo []int
	if env.Cache != nil {
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i] = key + it.SHA256
		}
		prefetch(env.Cache, keys)
	}
	for i, it := range items {
		if env.Cache != nil {
			if data, ok := env.Cache.Get(key + it.SHA256); ok && json.Unmarshal(data, &out[i]) == nil {
				continue
			}
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return out, 0, nil
	}
	computed, err := compute(pick(items, todo))
	if err != nil {
		return nil, 0, err
	}
	var keys []string
	var data [][]byte
	for k, i := range todo {
		out[i] = computed[k]
		if env.Cache == nil || keep != nil && !keep(computed[k]) {
			continue
		}
		b, _ := json.Marshal(computed[k])
		keys, data = append(keys, key+items[i].SHA256), append(data, b)
	}
	if len(keys) > 0 {
		if err := env.Cache.PutBatch(keys, data); err != nil {
			fmt.Fprintf(env.Log, "warning: %d %s results not cached: %v\n", len(keys), what, err)
		}
	}
	return out, len(todo), nil
}

// pixelScorer is a built-in scorer that needs only the image's pixels and
// its digest (which identifies it for the shared face search).
type pixelScorer struct {
	version int
	measure func(img image.Image, digest string, env *Env) (map[string]any, error)
}

func (p pixelScorer) check(s *Score) error {
	if len(s.Command) > 0 || s.URL != "" || len(s.Params) > 0 || s.Face != "" {
		return fmt.Errorf("scorer %s takes no command, url, params or face", s.Scorer)
	}
	return nil
}

func (p pixelScorer) identity(s *Score, env *Env) (string, error) {
	return fmt.Sprintf("%s v%d", s.Scorer, p.version), nil
}

// score measures items in parallel.
func (p pixelScorer) score(ctx context.Context, s *Score, env *Env, items []Item) ([]map[string]any, error) {
	out := make([]map[string]any, len(items))
	err := eachImage(ctx, env, items, "images", func(i int, img image.Image) error {
		m, err := p.measure(img, items[i].SHA256, env)
		out[i] = m
		return err
	})
	return out, err
}

func pick(items []Item, idx []int) []Item {
	out := make([]Item, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	return out
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
		f, _ := it.Field(id)
		m, _ := f.(map[string]any)
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

// loadItemImage decodes an item's image (scorers, report thumbnails),
// checking that the file is still the one the item describes: a score
// must never be filed under another image's digest.
func loadItemImage(root string, it Item) (image.Image, error) {
	f, err := os.Open(itemFile(root, it))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The header first: a decompression bomb is refused before it is
	// decoded.
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.Path, err)
	}
	if err := CheckPixels(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", it.Path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
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

// itemFile is the file of an item: its path under root, or the path itself
// when it is absolute (images given to `lifeos score` from anywhere).
func itemFile(root string, it Item) string { return pathglob.Abs(root, it.Path) }
