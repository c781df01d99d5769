// Package comfytest is a stand-in for a ComfyUI server, for tests and for
// `lifeos comfy serve --fake`. It speaks
// the HTTP API as comfyui-api.md describes it, read from ComfyUI's source:
// the 200 and 400 shapes of POST /prompt, a history that stays {} until the
// prompt is done, /view's checks, execution errors in the history, and a
// 500 in plain text for what ComfyUI cannot parse. It counts requests.
package comfytest

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/lifeos/lifeos/internal/lazyre"
)

// Options shape the server's behaviour.
type Options struct {
	// Loras are the LoRA files the server has (value_not_in_list otherwise).
	Loras []string
	// LoraDir, when set, is the folder whose files are the LoRAs, listed
	// on every request (a LoRA copied there is usable at once), in place
	// of Loras.
	LoraDir string
	// Render, when set, makes the image of a finished prompt (instead of a
	// pattern drawn from its text).
	Render func(prompt map[string]any) (image.Image, error)
	// Fail makes the first Fail POST /prompt answer FailStatus (500, 429...).
	Fail, FailStatus int
	// FailQueued makes the first FailQueued prompts that are queued answer
	// 500 anyway, as a proxy or a crash after the queue put would; Truncate
	// makes the next Truncate queued ones answer 200 with half a body.
	FailQueued, Truncate int
	// Pending is how many history polls answer {} before a prompt is done,
	// for a client without a WebSocket; a prompt queued by a client with
	// one runs at once and is announced on it.
	Pending int
	// Hostile is an attack the server makes:
	//   path      history names output files "../../escape.png"
	//   junk      /view sends a valid image followed by 2 GiB of junk
	//   huge      /view sends 2 GiB of junk
	//   bomb      /view sends a PNG whose header says 20000x20000
	//   redirect  /view redirects to another host
	//   other     /history/{id} answers for another prompt
	Hostile string
	// Size is the side of the generated square images (default 64).
	Size int
	// Hold keeps every prompt queued (the first one running) until it is
	// interrupted or deleted, as a busy pod would.
	Hold bool
	// NoWS answers /ws with 404, as an old server or a proxy that does not
	// pass WebSockets: clients must poll.
	NoWS bool
	// DieAfter makes the server drop every connection once it has queued
	// DieAfter prompts, as a pod that crashed or was preempted.
	DieAfter int
	// FailView makes the first FailView GET /view answer 404, as for an
	// image removed from the server's output folder.
	FailView int
	// JPEG serves the images as JPEG, under their .png names, as a
	// misconfigured or hostile server might.
	JPEG bool
	// Log, if set, is called with "METHOD /path" for every request.
	Log func(line string)
	// Queued, if set, is called with every prompt queued, numbered from 1.
	Queued func(n int, prompt map[string]any)
}

// Server is a running stand-in.
type Server struct {
	*httptest.Server
	opts    Options
	handler http.Handler

	mu       sync.Mutex
	prompts  map[string]map[string]any // id -> workflow
	order    []string                  // ids in queue order
	stopped  map[string]bool           // interrupted while running
	ran      map[string]bool           // executed for a WebSocket client
	owner    map[string]string         // prompt id -> client_id
	sockets  map[string]*socket        // client_id -> its WebSocket
	polls    map[string]int
	posts    int // every POST /prompt
	accepted int // those that queued a prompt
	views    int
}

// New starts a server on a local port, as httptest does.
func New(o Options) *Server {
	s := newServer(o)
	s.Server = httptest.NewServer(s.handler)
	return s
}

// Handler makes a server without starting it: its HTTP handler serves the
// API (lifeos comfy serve listens with it). Server.URL is unset.
func Handler(o Options) (*Server, http.Handler) {
	s := newServer(o)
	return s, s.handler
}

func newServer(o Options) *Server {
	if o.Size == 0 {
		o.Size = 64
	}
	s := &Server{opts: o, prompts: map[string]map[string]any{}, stopped: map[string]bool{}, ran: map[string]bool{},
		owner: map[string]string{}, sockets: map[string]*socket{}, polls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /prompt", s.postPrompt)
	mux.HandleFunc("GET /history/{id}", s.history)
	mux.HandleFunc("GET /queue", s.queue)
	mux.HandleFunc("POST /queue", s.deleteQueued)
	mux.HandleFunc("POST /interrupt", s.interrupt)
	mux.HandleFunc("GET /view", s.view)
	mux.HandleFunc("GET /ws", s.ws)
	mux.HandleFunc("GET /models/loras", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, s.Loras())
	})
	mux.HandleFunc("GET /object_info", s.objectInfo)
	mux.HandleFunc("GET /object_info/{class}", s.objectInfo)
	mux.HandleFunc("GET /system_stats", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"system": {"comfyui_version": "0.3.40"}, "devices": [{"name": "cuda:0", "vram_free": 24000000000}]}`)
	})
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.Log != nil {
			o.Log(r.Method + " " + r.URL.Path)
		}
		s.mu.Lock()
		dead := o.DieAfter > 0 && s.accepted >= o.DieAfter
		if dead {
			for id, so := range s.sockets {
				so.conn.CloseNow()
				delete(s.sockets, id)
			}
		}
		s.mu.Unlock()
		if dead {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		mux.ServeHTTP(w, r)
	})
	return s
}

// Loras are the LoRA names the server has.
func (s *Server) Loras() []string {
	if s.opts.LoraDir == "" {
		return s.opts.Loras
	}
	names := []string{}
	filepath.WalkDir(s.opts.LoraDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if rel, err := filepath.Rel(s.opts.LoraDir, p); err == nil {
				names = append(names, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	slices.Sort(names)
	return names
}

// objectInfo answers /object_info[/{class}] for the node types the
// server has, with the LoRA combo filled in: enough for a client to check
// that a LoRA is installed before it submits. An unknown class is {}.
func (s *Server) objectInfo(w http.ResponseWriter, r *http.Request) {
	info := map[string]any{}
	for _, class := range known {
		if c := r.PathValue("class"); c != "" && c != class {
			continue
		}
		required := map[string]any{}
		if strings.HasPrefix(class, "LoraLoader") {
			required["lora_name"] = []any{s.Loras(), map[string]any{}}
		}
		info[class] = map[string]any{"input": map[string]any{"required": required}, "name": class, "display_name": class,
			"output_node": class == "SaveImage" || class == "PreviewImage", "category": "stand-in"}
	}
	writeJSON(w, 200, info)
}

// Counts returns the POST /prompt requests, the prompts queued, and the
// /view requests so far.
func (s *Server) Counts() (posts, accepted, views int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts, s.accepted, s.views
}

func internalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, "500 Internal Server Error\n\nServer got itself in trouble")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var uuidRe = lazyre.New(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// known are the node types the stand-in has: those of the SD1.5, SDXL
// (base and refiner) and Flux examples; any other is a missing_node_type.
var known = []string{"CheckpointLoaderSimple", "LoraLoader", "LoraLoaderModelOnly", "CLIPTextEncode", "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner",
	"KSampler", "KSamplerAdvanced", "EmptyLatentImage", "VAEDecode", "SaveImage", "PreviewImage",
	"UNETLoader", "DualCLIPLoader", "VAELoader", "SamplerCustomAdvanced", "KSamplerSelect", "BasicScheduler", "BasicGuider", "CFGGuider",
	"RandomNoise", "FluxGuidance", "EmptySD3LatentImage", "ModelSamplingFlux", "ConditioningZeroOut"}

func (s *Server) postPrompt(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.posts++
	n := s.posts
	s.mu.Unlock()
	if n <= s.opts.Fail {
		if s.opts.FailStatus == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		internalError(w)
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		internalError(w) // ComfyUI's handler does not catch it either
		return
	}
	raw, ok := body["prompt"]
	if !ok {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
		return
	}
	var prompt map[string]any
	if err := json.Unmarshal(raw, &prompt); err != nil {
		internalError(w)
		return
	}
	nodeErrors := map[string]any{}
	hasOutput := false
	for id, v := range prompt {
		node, ok := v.(map[string]any)
		if !ok {
			internalError(w) // e.g. a UI-format workflow: 'class_type' in <int>
			return
		}
		class, _ := node["class_type"].(string)
		if !slices.Contains(known, class) {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "missing_node_type",
				"message": fmt.Sprintf("Node '%s' not found. The custom node may not be installed.", class), "details": "Node ID '#" + id + "'",
				"extra_info": map[string]any{"node_id": id, "class_type": class}}, "node_errors": map[string]any{}})
			return
		}
		hasOutput = hasOutput || class == "SaveImage" || class == "PreviewImage"
		inputs, _ := node["inputs"].(map[string]any)
		if strings.HasPrefix(class, "LoraLoader") {
			name, _ := inputs["lora_name"].(string)
			if loras := s.Loras(); !slices.Contains(loras, name) {
				nodeErrors[id] = map[string]any{"errors": []any{map[string]any{
					"type": "value_not_in_list", "message": "Value not in list",
					"details":    fmt.Sprintf("lora_name: '%s' not in %s", name, pyList(loras)),
					"extra_info": map[string]any{"input_name": "lora_name", "input_config": []any{loras}, "received_value": name},
				}}, "dependent_outputs": []string{"9"}, "class_type": class}
			}
		}
	}
	if !hasOutput {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
		return
	}
	if len(nodeErrors) > 0 {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": map[string]any{}}, "node_errors": nodeErrors})
		return
	}
	var id string
	if raw, ok := body["prompt_id"]; ok { // honoured, as by recent ComfyUI
		json.Unmarshal(raw, &id)
		if !uuidRe().MatchString(id) {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "invalid_prompt_id", "message": "prompt_id must be a valid UUID", "details": "", "extra_info": map[string]any{}}, "node_errors": map[string]any{}})
			return
		}
	}
	if id == "" {
		id = uuid.NewString()
	}
	// A prompt_id seen before is queued again, as ComfyUI does: a second
	// execution, logged as such.
	s.mu.Lock()
	if s.opts.DieAfter > 0 && s.accepted >= s.opts.DieAfter {
		// Dead already: decided under the lock, so that two prompts posted
		// at once cannot both slip in.
		s.mu.Unlock()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	s.prompts[id] = prompt
	s.order = append(s.order, id)
	s.accepted++
	number := s.accepted
	var client string
	json.Unmarshal(body["client_id"], &client)
	s.owner[id] = client
	so := s.sockets[client]
	s.mu.Unlock()
	if so != nil && !s.opts.Hold {
		go s.execute(so, id)
	}
	if s.opts.Log != nil {
		s.opts.Log("QUEUED")
	}
	if s.opts.Queued != nil {
		s.opts.Queued(number, prompt)
	}
	switch {
	case number <= s.opts.FailQueued:
		internalError(w)
		return
	case number <= s.opts.FailQueued+s.opts.Truncate:
		b, _ := json.Marshal(map[string]any{"prompt_id": id, "number": number, "node_errors": map[string]any{}})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b[:len(b)/2])
		return
	}
	writeJSON(w, 200, map[string]any{"prompt_id": id, "number": number, "node_errors": map[string]any{}})
}

// done says whether a prompt has finished (been polled Pending times) or
// was interrupted. Callers hold s.mu.
func (s *Server) done(id string) bool {
	if s.stopped[id] || s.ran[id] {
		return true
	}
	return !s.opts.Hold && s.polls[id] > s.opts.Pending
}

// running is the prompt the server works on: the first one queued that is
// not done. Callers hold s.mu.
func (s *Server) running() string {
	for _, id := range s.order {
		if s.prompts[id] != nil && !s.done(id) {
			return id
		}
	}
	return ""
}

// queue lists the prompts not done yet in ComfyUI's item shape [number,
// prompt_id, prompt, extra_data, outputs_to_execute]: the first running,
// the others pending.
func (s *Server) queue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	running, pending := []any{}, []any{}
	run := s.running()
	for n, id := range s.order {
		p := s.prompts[id]
		if p == nil || s.done(id) {
			continue
		}
		item := []any{n, id, p, map[string]any{}, []string{"9"}}
		if id == run {
			running = append(running, item)
		} else {
			pending = append(pending, item)
		}
	}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"queue_running": running, "queue_pending": pending})
}

// deleteQueued is POST /queue {"delete": [ids]}: pending prompts only, as
// ComfyUI does; each deletion is logged as "DELETED".
func (s *Server) deleteQueued(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Delete []string `json:"delete"`
		Clear  bool     `json:"clear"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	run := s.running()
	var deleted int
	for _, id := range body.Delete {
		if s.prompts[id] != nil && id != run && !s.done(id) {
			delete(s.prompts, id)
			deleted++
		}
	}
	s.mu.Unlock()
	for i := 0; i < deleted && s.opts.Log != nil; i++ {
		s.opts.Log("DELETED")
	}
	w.WriteHeader(http.StatusOK)
}

// interrupt is POST /interrupt: with a prompt_id, only when that prompt is
// the running one; logged as "INTERRUPTED".
func (s *Server) interrupt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PromptID string `json:"prompt_id"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	run := s.running()
	hit := run != "" && (body.PromptID == "" || body.PromptID == run)
	var so *socket
	if hit {
		s.stopped[run] = true
		so = s.sockets[s.owner[run]]
	}
	s.mu.Unlock()
	if so != nil {
		so.send("execution_interrupted", map[string]any{"prompt_id": run, "node_id": "3", "node_type": "KSampler", "executed": []string{}})
		so.send("executing", map[string]any{"node": nil, "prompt_id": run})
	}
	if hit && s.opts.Log != nil {
		s.opts.Log("INTERRUPTED")
	}
	w.WriteHeader(http.StatusOK)
}

func pyList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// history is {} until the prompt has been polled Pending times.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	prompt, ok := s.prompts[id]
	if ok {
		s.polls[id]++
	}
	finished, stopped := ok && s.done(id), s.stopped[id]
	s.mu.Unlock()
	if !finished {
		writeJSON(w, 200, map[string]any{})
		return
	}
	text := promptText(prompt)
	status := map[string]any{"status_str": "success", "completed": true, "messages": []any{
		[]any{"execution_start", map[string]any{"prompt_id": id, "timestamp": 1}},
		[]any{"execution_success", map[string]any{"prompt_id": id, "timestamp": 2}}}}
	outputs := map[string]any{}
	if stopped {
		status = map[string]any{"status_str": "error", "completed": false, "messages": []any{
			[]any{"execution_start", map[string]any{"prompt_id": id, "timestamp": 1}},
			[]any{"execution_interrupted", map[string]any{"prompt_id": id, "node_id": "3", "node_type": "KSampler", "executed": []string{}, "timestamp": 2}}}}
	} else if strings.Contains(text, "EXPLODE") {
		status = map[string]any{"status_str": "error", "completed": false, "messages": []any{
			[]any{"execution_start", map[string]any{"prompt_id": id, "timestamp": 1}},
			[]any{"execution_error", map[string]any{"prompt_id": id, "node_id": "3", "node_type": "KSampler",
				"exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB", "exception_type": "torch.OutOfMemoryError"}}}}
	} else {
		name := "ComfyUI_" + id[:8] + "_.png"
		if s.opts.Hostile == "path" {
			name = "../../escape.png"
		}
		for nid, v := range prompt {
			if v.(map[string]any)["class_type"] == "SaveImage" {
				outputs[nid] = map[string]any{"images": []any{map[string]any{"filename": name, "subfolder": "", "type": "output"}}}
			}
		}
	}
	if s.opts.Hostile == "other" {
		id = "00000000-0000-4000-8000-000000000000"
	}
	writeJSON(w, 200, map[string]any{id: map[string]any{"prompt": []any{1, id, prompt, map[string]any{}, []string{"9"}},
		"outputs": outputs, "status": status, "meta": map[string]any{}}})
}

// promptText concatenates the texts, seeds and LoRAs of every node: what
// the generated image depends on.
func promptText(prompt map[string]any) string {
	var parts []string
	for _, v := range prompt {
		n := v.(map[string]any)
		in, _ := n["inputs"].(map[string]any)
		for _, k := range []string{"text", "text_g", "t5xxl", "seed", "noise_seed"} {
			if v, ok := in[k]; ok {
				parts = append(parts, fmt.Sprint(v))
			}
		}
		if _, ok := in["lora_name"]; ok {
			parts = append(parts, fmt.Sprint(in["lora_name"], in["strength_model"]))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "|")
}

// view serves the image of a finished prompt, after ComfyUI's checks.
func (s *Server) view(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, sub, typ := q.Get("filename"), q.Get("subfolder"), q.Get("type")
	if typ != "" && typ != "output" && typ != "input" && typ != "temp" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if strings.Contains(sub, "..") {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	s.mu.Lock()
	s.views++
	lost := s.views <= s.opts.FailView
	var prompt map[string]any
	for id, p := range s.prompts {
		if name == "ComfyUI_"+id[:8]+"_.png" {
			prompt = p
		}
	}
	s.mu.Unlock()
	if prompt == nil || lost {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Disposition", `filename="`+name+`"`)
	switch s.opts.Hostile {
	case "junk":
		png.Encode(w, render(promptText(prompt), s.opts.Size))
		io.Copy(w, io.LimitReader(junk{}, 2<<30))
		return
	case "huge":
		io.Copy(w, io.LimitReader(junk{}, 2<<30))
		return
	case "bomb":
		w.Write(bombPNG())
		return
	case "redirect":
		http.Redirect(w, r, "http://images.example.invalid/"+name, http.StatusFound)
		return
	}
	img := render(promptText(prompt), s.opts.Size)
	if s.opts.Render != nil {
		var err error
		if img, err = s.opts.Render(prompt); err != nil {
			internalError(w)
			return
		}
	}
	if s.opts.JPEG {
		jpeg.Encode(w, img, nil)
		return
	}
	png.Encode(w, img)
}

// render draws a deterministic picture of the prompt: the same request
// gives the same bytes, another request other bytes.
func render(text string, size int) image.Image {
	sum := sha256.Sum256([]byte(text))
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			k := sum[(x*7+y*13)%32]
			img.SetNRGBA(x, y, color.NRGBA{sum[0] ^ k, sum[1] ^ byte(x*3), sum[2] ^ byte(y*5), 255})
		}
	}
	return img
}

// socket is a client's WebSocket; writes are serialised.
type socket struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (so *socket) send(typ string, data map[string]any) {
	b, _ := json.Marshal(map[string]any{"type": typ, "data": data})
	so.mu.Lock()
	defer so.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	so.conn.Write(ctx, websocket.MessageText, b)
}

// ws is GET /ws?clientId=: the messages of that client's prompts, as
// ComfyUI sends them (status first; a binary preview frame, which
// clients must skip; executing with node null once the history is
// written).
func (s *Server) ws(w http.ResponseWriter, r *http.Request) {
	if s.opts.NoWS {
		http.NotFound(w, r)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	client := r.URL.Query().Get("clientId")
	so := &socket{conn: conn}
	s.mu.Lock()
	s.sockets[client] = so
	s.mu.Unlock()
	so.send("status", map[string]any{"status": map[string]any{"exec_info": map[string]any{"queue_remaining": 0}}, "sid": client})
	// Read until the client goes (ComfyUI ignores what clients send).
	for {
		if _, _, err := conn.Read(r.Context()); err != nil {
			break
		}
	}
	s.mu.Lock()
	if s.sockets[client] == so {
		delete(s.sockets, client)
	}
	s.mu.Unlock()
}

// execute runs a prompt for a WebSocket client: start, a preview frame,
// sampler progress, the saved image, then done.
func (s *Server) execute(so *socket, id string) {
	so.send("execution_start", map[string]any{"prompt_id": id, "timestamp": 1})
	so.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	so.conn.Write(ctx, websocket.MessageBinary, []byte{0, 0, 0, 1, 0, 0, 0, 2, 0x89, 'P', 'N', 'G'})
	cancel()
	so.mu.Unlock()
	for step := 1; step <= 3; step++ {
		so.send("progress", map[string]any{"value": step, "max": 3, "prompt_id": id, "node": "3"})
	}
	s.mu.Lock()
	s.ran[id] = true
	s.mu.Unlock()
	so.send("executing", map[string]any{"node": nil, "prompt_id": id})
}

// junk is an endless stream of bytes, made as it is read.
type junk struct{}

func (junk) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return len(p), nil
}

// bombPNG is a PNG whose header claims 20000x20000 pixels (1.6 GB once
// decoded) with one small, valid compressed row of data: what a client
// must refuse from the header, before decoding.
func bombPNG() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 20000)
	binary.BigEndian.PutUint32(ihdr[4:], 20000)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 1+20000*4))
	zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}
