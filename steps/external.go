package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/lifeos/lifeos/internal/pathglob"
)

// The external scorer protocol. lifeos sends a batch of images as one JSON
// request, to a program's stdin (scorer: command) or as an HTTP POST
// (scorer: http):
//
//	{"params": {...}, "items": [{"path": "/abs/0001.png", "sha256": "…", "width": 1024, "height": 1024}]}
//
// and reads one result per item, in order:
//
//	{"results": [{"metrics": {"realism": 0.82}}, {"error": "no face"}]}
//
// Metric values must be numbers; they are filed under the step's id. A face
// embedder (scorer: face) answers with embeddings instead of metrics, one
// per face found, largest face first:
//
//	{"results": [{"embeddings": [[0.01, …128 numbers]]}, {"embeddings": []}]}

type extItem struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

type extResult struct {
	Metrics    map[string]any `json:"metrics"`
	Embeddings [][]float64    `json:"embeddings"`
	Error      string         `json:"error"`
}

// defaultBatch is how many images go in one external request.
const defaultBatch = 16

// call sends items in batches and returns one result per item.
func (s *Score) call(ctx context.Context, env *Env, items []Item) ([]extResult, error) {
	size := s.Batch
	if size <= 0 {
		size = defaultBatch
	}
	var out []extResult
	for start := 0; start < len(items); start += size {
		batch := items[start:min(start+size, len(items))]
		req := map[string]any{"params": s.Params}
		list := make([]extItem, len(batch))
		for i, it := range batch {
			list[i] = extItem{Path: filepath.Join(env.Root, filepath.FromSlash(it.Path)), SHA256: it.SHA256, Width: it.Width, Height: it.Height}
		}
		req["items"] = list
		body, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		var resp []byte
		if len(s.Command) > 0 {
			resp, err = s.runCommand(ctx, env, body)
		} else {
			resp, err = s.post(ctx, env, body)
		}
		if err != nil {
			return nil, err
		}
		var r struct {
			Results []extResult `json:"results"`
		}
		if err := json.Unmarshal(resp, &r); err != nil {
			return nil, fmt.Errorf("%s: the answer is not {\"results\": [...]}: %w", s.who(), err)
		}
		if len(r.Results) != len(batch) {
			return nil, fmt.Errorf("%s: %d results for %d images", s.who(), len(r.Results), len(batch))
		}
		out = append(out, r.Results...)
		env.progress("images", len(out), len(items))
	}
	return out, nil
}

func (s *Score) who() string {
	if len(s.Command) > 0 {
		return strings.Join(s.Command, " ")
	}
	return s.URL
}

func (s *Score) runCommand(ctx context.Context, env *Env, body []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.Command[0], s.Command[1:]...)
	cmd.Dir = env.Root
	cmd.Stdin = bytes.NewReader(body)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = env.Log
	cmd.WaitDelay = killGrace
	setProcessGroup(cmd)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%s: %w", s.who(), err)
	}
	return stdout.Bytes(), nil
}

func (s *Score) post(ctx context.Context, env *Env, body []byte) ([]byte, error) {
	c := newHTTPClient(env.Log, 4, 250*time.Millisecond, 5*time.Minute)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, s.URL, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("POST %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", s.URL, resp.Status, excerpt(data))
	}
	return data, nil
}

// external scores items with a command or http scorer.
func (s *Score) external(ctx context.Context, env *Env, items []Item) ([]map[string]any, error) {
	results, err := s.call(ctx, env, items)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(items))
	var errs []error
	for i, r := range results {
		if r.Error != "" {
			errs = append(errs, fmt.Errorf("%s: %s", items[i].Path, r.Error))
			continue
		}
		m := map[string]any{}
		for k, v := range r.Metrics {
			f, ok := number(v)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: metric %s is %v, want a number", items[i].Path, k, v))
				continue
			}
			m[k] = f
		}
		out[i] = m
	}
	return out, errors.Join(errs...)
}

// digestFiles returns "path sha256" for every file the patterns match.
func digestFiles(root string, patterns []string) ([]string, error) {
	files, err := pathglob.Files(root, patterns)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		out[i] = f + " " + hex.EncodeToString(sum[:])
	}
	return out, nil
}

// Faces. dlib's recognition model puts two photos of one person within an
// L2 distance of 0.6 of each other; similarity maps a distance d to 0..1
// with 1 / (1 + (d/0.6)^2): 1 for the same embedding, 0.5 at dlib's 0.6
// radius, 0.2 at 1.2. policy.face.min_similarity (0.5) is that radius.
const faceRadius = 0.6

func similarity(d float64) float64 { return round4(1 / (1 + (d/faceRadius)*(d/faceRadius))) }

// referenceImages lists the reference photos.
func (s *Score) referenceImages(root string) ([]Item, error) {
	files, err := pathglob.Files(root, []string{s.Reference})
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	var refs []Item
	for _, f := range files {
		if !imageExts[strings.ToLower(path.Ext(f))] {
			continue
		}
		it, err := describeImage(root, f)
		if err != nil {
			return nil, err
		}
		refs = append(refs, it)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("reference %s holds no images", s.Reference)
	}
	return refs, nil
}

func (s *Score) referenceDigest(root string) (string, error) {
	refs, err := s.referenceImages(root)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, r := range refs {
		io.WriteString(h, r.SHA256+"\n")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// embed returns the face embeddings of each image, from the cache (keyed by
// image content and embedder) where possible, and how many it computed.
func (s *Score) embed(ctx context.Context, env *Env, items []Item) ([][][]float64, int, error) {
	id, err := s.identity(env.Root)
	if err != nil {
		return nil, 0, err
	}
	out := make([][][]float64, len(items))
	var todo []int
	for i, it := range items {
		if env.Cache != nil {
			if data, ok := env.Cache.Get("embed " + id + " " + it.SHA256); ok && json.Unmarshal(data, &out[i]) == nil {
				continue
			}
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return out, len(todo), nil
	}
	var results []extResult
	if s.builtinEmbedder() {
		results, err = embedBuiltin(ctx, env, pick(items, todo))
	} else {
		results, err = s.call(ctx, env, pick(items, todo))
	}
	if err != nil {
		return nil, 0, err
	}
	for k, i := range todo {
		if results[k].Error != "" {
			return nil, 0, fmt.Errorf("%s: %s", items[i].Path, results[k].Error)
		}
		out[i] = results[k].Embeddings
		if env.Cache != nil {
			data, _ := json.Marshal(out[i])
			env.Cache.Put("embed "+id+" "+items[i].SHA256, data)
		}
	}
	return out, len(todo), nil
}

// faces gives each item faces (found), and for an image with a face its
// distance to the nearest reference face, its distance to the mean
// reference face, and the similarity of the nearest.
func (s *Score) faces(ctx context.Context, env *Env, items []Item) ([]map[string]any, error) {
	refs, err := s.referenceImages(env.Root)
	if err != nil {
		return nil, err
	}
	refEmb, embedded, err := s.embed(ctx, env, refs)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	fmt.Fprintf(env.Log, "reference %s: %d photo(s), %d embedded now\n", s.Reference, len(refs), embedded)
	var refFaces [][]float64
	for i, e := range refEmb {
		if len(e) == 0 {
			fmt.Fprintf(env.Log, "warning: no face in reference %s\n", refs[i].Path)
			continue
		}
		refFaces = append(refFaces, e[0])
	}
	if len(refFaces) == 0 {
		return nil, fmt.Errorf("no face found in the reference photos of %s", s.Reference)
	}
	mean := make([]float64, len(refFaces[0]))
	for _, f := range refFaces {
		if len(f) != len(mean) {
			return nil, errors.New("reference embeddings differ in length")
		}
		for k, v := range f {
			mean[k] += v / float64(len(refFaces))
		}
	}
	embs, _, err := s.embed(ctx, env, items)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(items))
	for i, e := range embs {
		m := map[string]any{"faces": float64(len(e))}
		compared := e
		if s.Face != "all" && len(e) > 1 {
			compared = e[:1] // the largest
		}
		nearest, nearestMean := math.Inf(1), math.Inf(1)
		for _, f := range compared {
			if len(f) != len(mean) {
				return nil, fmt.Errorf("%s: embedding of length %d, the reference's are %d", items[i].Path, len(f), len(mean))
			}
			for _, r := range refFaces {
				nearest = math.Min(nearest, l2(f, r))
			}
			nearestMean = math.Min(nearestMean, l2(f, mean))
		}
		if len(compared) > 0 {
			m["distance"] = round4(nearest)
			m["distance_mean"] = round4(nearestMean)
			m["similarity"] = similarity(nearest)
		}
		out[i] = m
	}
	return out, nil
}

func l2(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}
