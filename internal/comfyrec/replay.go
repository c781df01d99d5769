package comfyrec

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// Replayer answers as the recorded server did, offline.
type Replayer struct {
	dir    string
	ex     map[string]*Exchange
	images map[string]string // view key -> sha256

	mu     sync.Mutex
	byID   map[string]string // prompt_id -> key
	number int
	// Log, when set, gets a line per prompt answered or refused.
	Log func(format string, args ...any)
}

// NewReplayer loads the recording in dir. Prompts recorded without their
// result (the server never finished them) are left out.
func NewReplayer(dir string) (*Replayer, int, error) {
	ex, err := Load(dir)
	if err != nil {
		return nil, 0, err
	}
	r := &Replayer{dir: dir, ex: map[string]*Exchange{}, images: map[string]string{}, byID: map[string]string{}}
	for key, x := range ex {
		if x.History == nil {
			continue
		}
		r.ex[key] = x
		for v, sum := range x.Images {
			r.images[v] = sum
		}
	}
	return r, len(r.ex), nil
}

// ServeHTTP answers the paths lifeos uses. /ws answers 404, as a server
// behind a proxy that does not pass WebSockets: clients poll.
func (r *Replayer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := req.URL.Path
	switch {
	case path == "/prompt" && req.Method == http.MethodPost:
		r.prompt(w, req)
	case strings.HasPrefix(path, "/history/") && req.Method == http.MethodGet:
		id := strings.TrimPrefix(path, "/history/")
		r.mu.Lock()
		key, ok := r.byID[id]
		r.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		writeJSON(w, http.StatusOK, map[string]json.RawMessage{id: r.ex[key].History})
	case path == "/view" && req.Method == http.MethodGet:
		q := req.URL.Query()
		sum, ok := r.images[viewKey(q.Get("type"), q.Get("subfolder"), q.Get("filename"))]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		data, err := os.ReadFile(filepath.Join(r.dir, "images", sum))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", http.DetectContentType(data))
		w.Write(data)
	case path == "/queue" && req.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"queue_running": []any{}, "queue_pending": []any{}})
	case (path == "/queue" || path == "/interrupt") && req.Method == http.MethodPost:
		w.WriteHeader(http.StatusOK)
	case serverFiles[path] != "" && req.Method == http.MethodGet:
		data, err := os.ReadFile(filepath.Join(r.dir, "server", serverFiles[path]))
		if err != nil {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	default:
		http.NotFound(w, req)
	}
}

func (r *Replayer) prompt(w http.ResponseWriter, req *http.Request) {
	data, err := readBody(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var body struct {
		Prompt   map[string]any `json:"prompt"`
		PromptID string         `json:"prompt_id"`
	}
	if err := decode(data, &body); err != nil {
		http.Error(w, "malformed JSON", http.StatusInternalServerError) // as ComfyUI
		return
	}
	if body.Prompt == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"type": "no_prompt",
			"message": "No prompt provided", "details": "No prompt provided", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
		return
	}
	key := Key(body.Prompt)
	if r.ex[key] == nil {
		if r.Log != nil {
			r.Log("refused a prompt not in the recording (%s)", key[:12])
		}
		writeJSON(w, http.StatusBadRequest, refusal(r.ex, body.Prompt))
		return
	}
	id := body.PromptID
	if id == "" {
		id = uuid.NewString()
	}
	r.mu.Lock()
	r.byID[id] = key
	r.number++
	n := r.number
	r.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"prompt_id": id, "number": n, "node_errors": map[string]any{}})
}
