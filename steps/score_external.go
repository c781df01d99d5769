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
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/retryhttp"
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

func init() {
	registerScorer("command", scorerInfo{impl: externalScorer{}})
	registerScorer("http", scorerInfo{impl: externalScorer{}})
}

// externalScorer is scorer command or http: metrics from a program or a
// service that speaks the protocol above.
type externalScorer struct{}

func (externalScorer) check(s *Score) error {
	switch {
	case s.Scorer == "command" && len(s.Command) == 0:
		return errors.New("scorer command needs command: [program, args...]")
	case s.Scorer == "http" && s.URL == "":
		return errors.New("scorer http needs url: the endpoint to POST to")
	case s.Reference != "" || s.Face != "":
		return fmt.Errorf("scorer %s takes no reference or face", s.Scorer)
	}
	return nil
}

func (externalScorer) identity(s *Score, env *Env) (string, error) {
	files, err := digestFiles(env.Root, s.Inputs)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(map[string]any{"scorer": s.Scorer, "command": s.Command, "url": s.URL, "params": s.Params, "inputs": files})
	return string(b), nil
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
			list[i] = extItem{Path: itemFile(env.Root, it), SHA256: it.SHA256, Width: it.Width, Height: it.Height}
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
	if err := runCmd(cmd); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%s: %w", s.who(), err)
	}
	return stdout.Bytes(), nil
}

func (s *Score) post(ctx context.Context, env *Env, body []byte) ([]byte, error) {
	c := retryhttp.New(env.Log, 4, 250*time.Millisecond, 5*time.Minute)
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

// score scores items with a command or http scorer.
func (externalScorer) score(ctx context.Context, s *Score, env *Env, items []Item) ([]map[string]any, error) {
	results, err := s.call(ctx, env, items)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(items))
	var errs []error
	for i, r := range results {
		if r.Error != "" {
			if s.OnError == "fail" {
				errs = append(errs, fmt.Errorf("%s: %s", items[i].Path, r.Error))
			}
			out[i] = map[string]any{ScoreError: r.Error}
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
		data, err := os.ReadFile(pathglob.Abs(root, f))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		out[i] = f + " " + hex.EncodeToString(sum[:])
	}
	return out, nil
}
