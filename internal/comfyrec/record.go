package comfyrec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/internal/atomicfile"
)

// Recorder is a proxy to a ComfyUI server that records each exchange in
// a directory.
type Recorder struct {
	dir   string
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	byID    map[string]string // prompt_id -> key
	byImage map[string]string // view key -> prompt key
	ex      map[string]*Exchange
	// Log, when set, gets a line per prompt recorded.
	Log func(format string, args ...any)
}

type ctxKey struct{}

// NewRecorder proxies upstream and records into dir (created if needed;
// what it holds already is kept and added to).
func NewRecorder(upstream, dir string) (*Recorder, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--upstream %q: want the server's http(s) URL", upstream)
	}
	for _, d := range []string{"prompts", "images", "server"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			return nil, err
		}
	}
	ex, err := Load(dir)
	if err != nil {
		return nil, err
	}
	r := &Recorder{dir: dir, byID: map[string]string{}, byImage: map[string]string{}, ex: ex}
	for key, x := range ex {
		for _, v := range entryImages(x.History) {
			r.byImage[v] = key
		}
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: r.capture,
	}
	return r, nil
}

// ServeHTTP forwards a request, reading a POST /prompt's body first to
// know what is submitted. /ws is proxied too (ReverseProxy passes the
// upgrade through): a client learns at once that a prompt is done, then
// reads /history, which is what is recorded.
func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost && req.URL.Path == "/prompt" {
		data, err := readBody(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.ContentLength = int64(len(data))
		var body struct {
			Prompt map[string]any `json:"prompt"`
		}
		if decode(data, &body) == nil && body.Prompt != nil {
			req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, body.Prompt))
		}
	}
	r.proxy.ServeHTTP(w, req)
}

// capture stores what the answer says, and passes it on unchanged.
func (r *Recorder) capture(resp *http.Response) error {
	req := resp.Request
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	path := req.URL.Path
	limit := int64(maxBody)
	if path == "/view" {
		limit = maxImage
	}
	switch {
	case path == "/prompt" && req.Method == http.MethodPost,
		strings.HasPrefix(path, "/history/"),
		path == "/view",
		serverFiles[path] != "" && req.Method == http.MethodGet:
	default:
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if int64(len(data)) > limit {
		return nil // passed on, not recorded: a client refuses it too
	}
	switch {
	case path == "/prompt":
		prompt, _ := req.Context().Value(ctxKey{}).(map[string]any)
		var ok struct {
			PromptID string `json:"prompt_id"`
		}
		if prompt == nil || json.Unmarshal(data, &ok) != nil || ok.PromptID == "" {
			return nil
		}
		key := Key(prompt)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.byID[ok.PromptID] = key
		if r.ex[key] == nil {
			r.ex[key] = &Exchange{Prompt: prompt}
			return r.save(key)
		}
	case strings.HasPrefix(path, "/history/"):
		id := strings.TrimPrefix(path, "/history/")
		var hist map[string]json.RawMessage
		if json.Unmarshal(data, &hist) != nil || hist[id] == nil {
			return nil // not done yet
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		key, ok := r.byID[id]
		if !ok {
			return nil // someone else's prompt
		}
		x := r.ex[key]
		x.History = hist[id]
		for _, v := range entryImages(x.History) {
			r.byImage[v] = key
		}
		if r.Log != nil {
			r.Log("recorded prompt %s (%s)", key[:12], id)
		}
		return r.save(key)
	case path == "/view":
		q := req.URL.Query()
		v := viewKey(q.Get("type"), q.Get("subfolder"), q.Get("filename"))
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		if err := atomicfile.WriteFile(filepath.Join(r.dir, "images", hexSum), data, 0o666); err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		key, ok := r.byImage[v]
		if !ok {
			return nil
		}
		x := r.ex[key]
		if x.Images == nil {
			x.Images = map[string]string{}
		}
		x.Images[v] = hexSum
		return r.save(key)
	default:
		return atomicfile.WriteFile(filepath.Join(r.dir, "server", serverFiles[path]), data, 0o666)
	}
	return nil
}

// save writes an exchange; r.mu is held.
func (r *Recorder) save(key string) error {
	return saveJSON(filepath.Join(r.dir, "prompts", key+".json"), r.ex[key])
}
