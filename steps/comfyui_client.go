package steps

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/lifeos/lifeos/internal/retryhttp"
)

// comfyClient speaks ComfyUI's HTTP API (see comfyui-api.md in the design
// notes): POST /prompt, GET /history/{id} until it is non-empty, GET /view.
type comfyClient struct {
	base     string // without a trailing slash
	shown    string // base with credentials redacted, for messages
	http     *retryablehttp.Client
	clientID string
	log      io.Writer

	mu       sync.Mutex
	inflight map[string]bool // prompts of this run not collected yet
	events   *comfyEvents    // the WebSocket's, when there is one
	maxImage int64           // policy.comfyui.max_image_bytes
	gpu      float64         // seconds the server spent executing this run's prompts

	health health // in its batch's pool
}

// A server's answers are read up to these sizes and refused beyond:
// JSON (prompt, history) and an image. An image cap of 64 MiB is far above
// a 2048x2048 PNG (about 12 MiB) and far below what would hurt.
const (
	maxAnswerBytes = 16 << 20
	maxImageBytes  = 64 << 20
)

var errForeignRedirect = errors.New("redirect to another host refused")

// pollMin and pollMax bound the wait between history polls: quick for a
// fast pod, gentle for a long queue.
const (
	pollMin = 100 * time.Millisecond
	pollMax = 2 * time.Second
)

func newComfyClient(base string, log io.Writer) *comfyClient {
	base = strings.TrimRight(base, "/")
	shown := retryhttp.Redact(base)
	c := retryhttp.New(log, 5, 250*time.Millisecond, 2*time.Minute)
	// A redirect to another host would let the server hand over an image
	// from anywhere: followed only on the same host.
	c.HTTPClient.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if req.URL.Host != via[0].URL.Host {
			return fmt.Errorf("%w (%s)", errForeignRedirect, req.URL.Host)
		}
		return nil
	}
	var id [16]byte
	rand.Read(id[:])
	cc := &comfyClient{base: base, shown: shown, http: c, clientID: hex.EncodeToString(id[:]), log: log, inflight: map[string]bool{}, maxImage: maxImageBytes}
	c.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if errors.Is(err, errForeignRedirect) {
			return false, err // the same answer every time
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if ctx.Err() == nil && cc.attempt(ctx, err, status) {
			return false, errServerOut
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	return cc
}

// doLimit is a request through the retry layer with a cap on the answer's
// size (see readCapped).
func (c *comfyClient) doLimit(ctx context.Context, method, path string, body any, limit int64) (*http.Response, []byte, error) {
	return c.send(ctx, method, path, body, limit, true)
}

// once is one request without the retry layer: a POST /prompt must never
// be repeated by it (see submit).
func (c *comfyClient) once(ctx context.Context, method, path string, body any) (*http.Response, []byte, error) {
	return c.send(ctx, method, path, body, maxAnswerBytes, false)
}

// send makes a request, through the retry layer or not, and reads at most
// limit bytes of the answer (see readCapped).
func (c *comfyClient) send(ctx context.Context, method, path string, body any, limit int64, retry bool) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	if method == http.MethodPost || strings.HasPrefix(path, "/view") || (retry && strings.HasPrefix(path, "/history")) {
		ctx = context.WithValue(ctx, workKey{}, true)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.isOut() {
		return nil, nil, fmt.Errorf("%s: %w", c.shown, errServerOut)
	}
	var resp *http.Response
	if retry {
		var rreq *retryablehttp.Request
		if rreq, err = retryablehttp.FromRequest(req); err == nil {
			resp, err = c.http.Do(rreq)
		}
	} else {
		resp, err = c.http.HTTPClient.Do(req)
		if ctx.Err() == nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			if c.attempt(ctx, err, status) {
				if resp != nil {
					resp.Body.Close()
				}
				return nil, nil, fmt.Errorf("%s: %w", c.shown, errServerOut)
			}
		}
	}
	if err != nil {
		if resp != nil {
			resp.Body.Close() // the retry layer hands the last answer over with its error
		}
		if ctx.Err() != nil {
			return nil, nil, context.Cause(ctx)
		}
		if errors.Is(err, errServerOut) {
			return nil, nil, fmt.Errorf("%s: %w", c.shown, errServerOut)
		}
		if unreachable(err) {
			return nil, nil, &serverUnreachable{fmt.Errorf("%s %s: %w", method, c.shown+path, redactErr(err, c.base, c.shown)), c.shown}
		}
		return nil, nil, fmt.Errorf("%s %s: %w", method, c.shown+path, redactErr(err, c.base, c.shown))
	}
	defer resp.Body.Close()
	data, err := readCapped(resp, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, c.shown+path, err)
	}
	return resp, data, nil
}

// spillAt is how much of an answer of unknown length is held in memory;
// the rest goes to a temporary file while it is counted, so that a hostile
// stream of gigabytes costs disk up to the cap, not memory (io.ReadAll's
// doubling took 175 MiB at a 64 MiB cap).
const spillAt = 1 << 20

// readCapped reads an answer of at most limit bytes: one that says it is
// longer is refused unread, one that says its length is read into a
// buffer of that size, and one that does not is read up to limit+1 bytes,
// past spillAt through a temporary file.
func readCapped(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n > limit {
		return nil, &tooLarge{limit}
	} else if n >= 0 {
		data := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, min(limit+1, spillAt)))
	if err != nil {
		return nil, err
	}
	if int64(len(head)) > limit {
		return nil, &tooLarge{limit}
	}
	if len(head) < spillAt {
		return head, nil // all of it
	}
	f, err := os.CreateTemp("", "lifeos-answer-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(resp.Body, limit+1-int64(len(head))))
	if err != nil {
		return nil, err
	}
	if int64(len(head))+n > limit {
		return nil, &tooLarge{limit}
	}
	data := make([]byte, int64(len(head))+n)
	copy(data, head)
	if _, err := f.ReadAt(data[len(head):], 0); err != nil && err != io.EOF {
		return nil, err
	}
	return data, nil
}

// tooLarge is an answer longer than its cap, refused after limit bytes.
type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("answer larger than %s: refused", sizeString(e.limit))
}

// sizeString shows a byte count in MiB when it is whole ones.
func sizeString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// serverUnreachable is a request the server did not answer at all.
type serverUnreachable struct {
	error
	url string // shown form
}

func (e *serverUnreachable) Unwrap() error { return e.error }

// promptID derives a prompt's id from its cache key, in the canonical
// UUID form ComfyUI requires: the same request has the same id in every
// run, so a prompt an earlier run queued (and did not collect) is found
// on the server instead of being paid for again. (The digest's first 16
// bytes, with version 4 and variant bits set.)
func promptID(key string) string {
	sum := sha256.Sum256([]byte("lifeos prompt_id v1 " + key))
	return uuid.Must(uuid.NewRandomFromReader(bytes.NewReader(sum[:16]))).String()
}

// comfyError is ComfyUI's error object.
type comfyError struct {
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	Details   string         `json:"details"`
	ExtraInfo map[string]any `json:"extra_info"`
}

// submitTries is how many times a prompt is posted before the step gives
// up on the server.
const submitTries = 6

// submit queues a patched workflow under prompt id and returns the id the
// server took, never queueing it twice. When a POST
// fails without a clear answer (a 5xx, a reset, a 200 cut short), the
// prompt may be queued all the same, so before posting again the id is
// looked up in /queue and /history, and only a server that has neither
// gets the prompt again. A 400 is ComfyUI refusing the workflow: reported
// node by node, not retried.
func (c *comfyClient) submit(ctx context.Context, wf workflow, id string) (string, error) {
	body := map[string]any{"prompt": wf, "client_id": c.clientID, "prompt_id": id}
	delay := 250 * time.Millisecond
	var last error
	for try := 1; try <= submitTries; try++ {
		if try > 1 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return "", context.Cause(ctx)
			}
			delay = min(delay*2, 8*time.Second)
			queued, err := c.known(ctx, id)
			if err != nil && ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			if errors.Is(err, errServerOut) {
				return "", err
			}
			if queued {
				fmt.Fprintf(c.log, "%s: prompt %s was queued by the failed try: not posted again\n", c.shown, id)
				return id, nil
			}
			fmt.Fprintf(c.log, "POST %s/prompt: try %d of %d: %v\n", c.shown, try, submitTries, last)
		}
		resp, data, err := c.once(ctx, http.MethodPost, "/prompt", body)
		if err != nil {
			if ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			if errors.Is(err, errServerOut) {
				return "", err
			}
			last = err
			continue
		}
		switch {
		case resp.StatusCode == http.StatusBadRequest:
			return "", validationError(wf, data)
		case resp.StatusCode != http.StatusOK:
			last = fmt.Errorf("POST %s/prompt: %s: %s", c.shown, resp.Status, excerpt(data))
			continue
		}
		var ok struct {
			PromptID   string                     `json:"prompt_id"`
			NodeErrors map[string]json.RawMessage `json:"node_errors"`
		}
		if err := json.Unmarshal(data, &ok); err != nil || ok.PromptID == "" {
			last = fmt.Errorf("POST %s/prompt: unreadable answer: %s", c.shown, excerpt(data))
			continue
		}
		if len(ok.NodeErrors) > 0 {
			fmt.Fprintf(c.log, "%s: prompt %s queued, but some outputs failed validation and will not run: %s\n", c.shown, ok.PromptID, excerpt(data))
		}
		// An older server ignores our id and answers with its own.
		return ok.PromptID, nil
	}
	return "", last
}

// known says whether the server has the prompt: queued, running or done.
func (c *comfyClient) known(ctx context.Context, id string) (bool, error) {
	ids, err := c.queued(ctx)
	if err == nil && ids[id] {
		return true, nil
	}
	e, err := c.history(ctx, id, false)
	return e != nil, err
}

// queued returns the ids of the prompts the server has pending or
// running, asked once (no retry layer: a caller that retries asks again).
func (c *comfyClient) queued(ctx context.Context) (map[string]bool, error) {
	resp, data, err := c.once(ctx, http.MethodGet, "/queue", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/queue: %s", c.shown, resp.Status)
	}
	var q struct {
		Running []json.RawMessage `json:"queue_running"`
		Pending []json.RawMessage `json:"queue_pending"`
	}
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, fmt.Errorf("GET %s/queue: %w", c.shown, err)
	}
	ids := map[string]bool{}
	for _, item := range append(q.Running, q.Pending...) {
		var fields []json.RawMessage
		var pid string
		if json.Unmarshal(item, &fields) == nil && len(fields) > 1 && json.Unmarshal(fields[1], &pid) == nil {
			ids[pid] = true
		}
	}
	return ids, nil
}

// validationError turns ComfyUI's 400 into one line per failing input:
// `LoraLoader #12: value_not_in_list: lora_name "x.safetensors"`.
func validationError(wf workflow, data []byte) error {
	var body struct {
		Error      comfyError `json:"error"`
		NodeErrors map[string]struct {
			Errors    []comfyError `json:"errors"`
			ClassType string       `json:"class_type"`
		} `json:"node_errors"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return &workflowRefused{fmt.Errorf("ComfyUI refused the workflow: %s", excerpt(data))}
	}
	var lines []string
	ids := make([]string, 0, len(body.NodeErrors))
	for id := range body.NodeErrors {
		ids = append(ids, id)
	}
	sortIDs(ids)
	for _, id := range ids {
		ne := body.NodeErrors[id]
		for _, e := range ne.Errors {
			what := e.Details
			if name, ok := e.ExtraInfo["input_name"].(string); ok {
				what = name
				if v, ok := e.ExtraInfo["received_value"]; ok {
					b, _ := json.Marshal(v)
					what += " " + string(b)
				}
			}
			lines = append(lines, fmt.Sprintf("%s #%s: %s: %s", ne.ClassType, id, e.Type, what))
		}
	}
	msg := body.Error.Message
	if body.Error.Details != "" {
		msg += ": " + body.Error.Details
	}
	if len(lines) == 0 {
		return &workflowRefused{fmt.Errorf("ComfyUI refused the workflow (%s): %s", body.Error.Type, msg)}
	}
	return &workflowRefused{fmt.Errorf("ComfyUI refused the workflow: %s", strings.Join(lines, "; "))}
}

// workflowRefused is a 400 from POST /prompt: the workflow itself is wrong
// for this server (a node type it lacks, a LoRA it does not have), so every
// other image of the batch would be refused the same way.
type workflowRefused struct{ error }

func (e *workflowRefused) Unwrap() error { return e.error }

// outputImage is one image of a history entry, as /view wants it back.
type outputImage struct {
	Filename  string `json:"filename"`
	Subfolder string `json:"subfolder"`
	Type      string `json:"type"`
}

// histEntry is a prompt's /history entry.
type histEntry struct {
	Outputs map[string]struct {
		Images []outputImage `json:"images"`
	} `json:"outputs"`
	Status struct {
		StatusStr string              `json:"status_str"`
		Messages  [][]json.RawMessage `json:"messages"`
	} `json:"status"`
}

// history reads /history/{id}: nil while the prompt is not done (ComfyUI
// answers {} for "not yet" and for ids it does not know).
func (c *comfyClient) history(ctx context.Context, id string, retry bool) (*histEntry, error) {
	resp, data, err := c.send(ctx, http.MethodGet, "/history/"+url.PathEscape(id), nil, maxAnswerBytes, retry)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/history/%s: %s", c.shown, id, resp.Status)
	}
	var hist map[string]*histEntry
	if err := json.Unmarshal(data, &hist); err != nil {
		return nil, fmt.Errorf("GET %s/history/%s: %w", c.shown, id, err)
	}
	for other := range hist {
		if other != id {
			return nil, fmt.Errorf("GET %s/history/%s answered for another prompt (%s): refused", c.shown, id, other)
		}
	}
	return hist[id], nil
}

// wait waits for a prompt to be done (its history entry non-empty) and
// returns its output images; a prompt that failed reports ComfyUI's
// exception message. With the server's WebSocket, the history is read
// when the socket says the prompt is done (and at least every
// wsSafetyPoll); without it, polled with a growing delay. check says
// whether to look at once (a prompt that may be done already).
func (c *comfyClient) wait(ctx context.Context, id string, check bool) ([]outputImage, error) {
	delay := pollMin
	for {
		if check {
			entry, err := c.history(ctx, id, true)
			if err != nil {
				return nil, err
			}
			if entry != nil {
				c.mu.Lock()
				c.gpu += entry.execSeconds()
				c.mu.Unlock()
				return entry.images(id, c.shown)
			}
		}
		check = true
		if ch := c.signal(id); ch != nil {
			t := time.NewTimer(wsSafetyPoll)
			select {
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, context.Cause(ctx)
			}
			t.Stop()
			continue
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		delay = min(delay*3/2, pollMax)
	}
}

// execSeconds is how long the server executed the prompt: from its
// execution_start message to its last (success, error, interruption), by
// the server's own millisecond timestamps; 0 when they are missing.
func (e *histEntry) execSeconds() float64 {
	var start, end float64
	for _, m := range e.Status.Messages {
		if len(m) != 2 {
			continue
		}
		var kind string
		var d struct {
			Timestamp float64 `json:"timestamp"`
		}
		json.Unmarshal(m[0], &kind)
		json.Unmarshal(m[1], &d)
		switch kind {
		case "execution_start":
			start = d.Timestamp
		case "execution_success", "execution_error", "execution_interrupted":
			end = d.Timestamp
		}
	}
	if start <= 0 || end < start {
		return 0
	}
	return (end - start) / 1000
}

// gpuSeconds is the execution time of the prompts collected so far.
func (c *comfyClient) gpuSeconds() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gpu
}

// images returns a finished entry's output images, or its failure.
func (e *histEntry) images(id, server string) ([]outputImage, error) {
	if e.Status.StatusStr != "success" {
		return nil, fmt.Errorf("prompt %s failed on %s: %s", id, server, executionError(e.Status.Messages))
	}
	nodes := make([]string, 0, len(e.Outputs))
	for n := range e.Outputs {
		nodes = append(nodes, n)
	}
	sortIDs(nodes)
	var images []outputImage
	for _, n := range nodes {
		for _, im := range e.Outputs[n].Images {
			if im.Type == "output" || im.Type == "" {
				images = append(images, im)
			}
		}
	}
	return images, nil
}

// executionError finds the execution_error (or interruption) message.
func executionError(msgs [][]json.RawMessage) string {
	for _, m := range msgs {
		if len(m) != 2 {
			continue
		}
		var kind string
		json.Unmarshal(m[0], &kind)
		var d struct {
			NodeID           string `json:"node_id"`
			NodeType         string `json:"node_type"`
			ExceptionMessage string `json:"exception_message"`
		}
		json.Unmarshal(m[1], &d)
		switch kind {
		case "execution_error":
			return fmt.Sprintf("%s #%s: %s", d.NodeType, d.NodeID, strings.TrimSpace(d.ExceptionMessage))
		case "execution_interrupted":
			return "interrupted on the server"
		}
	}
	return "status error without an execution_error message"
}

// view downloads an output image with exactly the history's values. The
// server's file name only ever goes back to the server: it never names a
// local path.
func (c *comfyClient) view(ctx context.Context, im outputImage) ([]byte, error) {
	q := url.Values{"filename": {im.Filename}, "subfolder": {im.Subfolder}, "type": {im.Type}}
	limit := c.maxImage
	resp, data, err := c.doLimit(ctx, http.MethodGet, "/view?"+q.Encode(), nil, limit)
	var big *tooLarge
	if errors.As(err, &big) {
		return nil, fmt.Errorf("image %q from %s: larger than policy.comfyui.max_image_bytes (%s): refused", im.Filename, c.shown, sizeString(limit))
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/view %q: %s", c.shown, im.Filename, resp.Status)
	}
	return data, nil
}

// decodeSize checks that data is one whole image of a sane size and
// returns its size and format: the header first (at most maxImagePixels, so a
// decompression bomb is refused before it is decoded), then the full
// decode, and for a PNG nothing after its end (data smuggled behind a
// valid image would be cached and approved with it).
func decodeSize(data []byte) (w, h int, format string, err error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, "", err
	}
	if err := CheckPixels(cfg); err != nil {
		return 0, 0, "", err
	}
	// A header is not an image: make sure the whole file decodes.
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		return 0, 0, "", err
	}
	if format == "png" {
		if end := pngEnd(data); end < len(data) {
			return 0, 0, "", fmt.Errorf("%d bytes after the end of the PNG: refused", len(data)-end)
		}
	}
	return cfg.Width, cfg.Height, format, nil
}

// pngEnd is the offset just past a PNG's IEND chunk (len(data) when the
// chunks do not add up: the decoder has judged the file already).
func pngEnd(data []byte) int {
	for off := 8; off+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off:]))
		next := off + 12 + n
		if n < 0 || next > len(data) {
			break
		}
		if string(data[off+4:off+8]) == "IEND" {
			return next
		}
		off = next
	}
	return len(data)
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// submitAs submits a prompt under *id and sets *id to the id the server
// took (an older server ignores ours). The prompt is tracked from before
// the POST: a Ctrl-C during it may leave it queued.
func (c *comfyClient) submitAs(ctx context.Context, wf workflow, id *string) error {
	c.track(*id, true)
	got, err := c.submit(ctx, wf, *id)
	if err != nil {
		if ctx.Err() == nil {
			c.track(*id, false)
		}
		return err
	}
	if got != *id {
		c.track(*id, false)
		c.track(got, true)
	}
	*id = got
	return nil
}

// collect waits for a prompt and downloads its image: one image per
// prompt, the first output (a batch_size above 1 would make several;
// lifeos expects one image per prompt and seed), checked to be one whole
// image of a sane size.
func (c *comfyClient) collect(ctx context.Context, id string, check bool) (data []byte, format string, w, h int, err error) {
	images, err := c.wait(ctx, id, check)
	if err != nil {
		return nil, "", 0, 0, err
	}
	if len(images) == 0 {
		return nil, "", 0, 0, fmt.Errorf("prompt %s finished without an output image", id)
	}
	if data, err = c.view(ctx, images[0]); err != nil {
		return nil, "", 0, 0, err
	}
	if w, h, format, err = decodeSize(data); err != nil {
		return nil, "", 0, 0, fmt.Errorf("image %s from %s does not decode: %w", images[0].Filename, c.shown, err)
	}
	return data, format, w, h, nil
}

// track records that prompt id is this run's and not collected yet (on),
// or no longer (off).
func (c *comfyClient) track(id string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.inflight[id] = true
	} else {
		delete(c.inflight, id)
	}
}

// cancelInflight stops what this run left on the server: its pending
// prompts are deleted from the queue and the running one interrupted
// (ComfyUI interrupts with a prompt_id only when that prompt is the one
// running, so nobody else's work is touched). It runs after a Ctrl-C, a
// refused workflow or a timed-out image: nobody would collect those
// images, and the GPU would make them anyway.
func (c *comfyClient) cancelInflight(ctx context.Context) error {
	c.mu.Lock()
	ids := make([]string, 0, len(c.inflight))
	for id := range c.inflight {
		ids = append(ids, id)
	}
	c.inflight = map[string]bool{}
	c.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	var errs []error
	if resp, data, err := c.once(ctx, http.MethodPost, "/queue", map[string]any{"delete": ids}); err != nil {
		errs = append(errs, err)
	} else if resp.StatusCode != http.StatusOK {
		errs = append(errs, fmt.Errorf("POST %s/queue: %s: %s", c.shown, resp.Status, excerpt(data)))
	}
	for _, id := range ids {
		if resp, data, err := c.once(ctx, http.MethodPost, "/interrupt", map[string]any{"prompt_id": id}); err != nil {
			errs = append(errs, err)
		} else if resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("POST %s/interrupt: %s: %s", c.shown, resp.Status, excerpt(data)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cancelling %d prompt(s) of this run on %s: %w", len(ids), c.shown, err)
	}
	fmt.Fprintf(c.log, "%s: cancelled %d prompt(s) of this run not collected: deleted from the queue, or interrupted if running\n", c.shown, len(ids))
	return nil
}
