package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// comfyEvents follows a server's WebSocket (/ws?clientId=): ComfyUI sends
// the messages of the prompts queued with our client_id there, and
// `executing` with node null once a prompt's history is written. A wait
// then reads /history once, instead of polling it; when the socket is
// missing or lost, waits fall back to polling.
type comfyEvents struct {
	mu      sync.Mutex
	done    map[string]bool          // prompts finished
	waiters map[string]chan struct{} // closed when the prompt finishes or the socket is lost
	lost    bool
}

// wsDialTimeout bounds opening the socket; wsSafetyPoll is how long a
// wait trusts the socket before reading /history anyway (a message lost
// in a proxy must not hang a batch).
const (
	wsDialTimeout = 5 * time.Second
	wsSafetyPoll  = 30 * time.Second
)

// listen opens the server's WebSocket for this client and follows it
// until ctx ends. Without one (an older server, a proxy that refuses the
// upgrade), waits poll /history as before.
func (c *comfyClient) listen(ctx context.Context) {
	u, err := url.Parse(c.base)
	if err != nil {
		return
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path += "/ws"
	u.RawQuery = url.Values{"clientId": {c.clientID}}.Encode()
	dctx, cancel := context.WithTimeout(ctx, wsDialTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: c.http.HTTPClient})
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(c.log, "%s: no WebSocket (%v): polling /history instead\n", c.shown, redactErr(err, c.base, c.shown))
		}
		return
	}
	// Preview frames can be large; they are skipped as they stream.
	conn.SetReadLimit(maxAnswerBytes)
	ev := &comfyEvents{done: map[string]bool{}, waiters: map[string]chan struct{}{}}
	c.mu.Lock()
	c.events = ev
	c.mu.Unlock()
	// ComfyUI registers a socket before it sends its first message
	// (status): once that has come, a prompt queued now is announced here.
	first := make(chan struct{})
	var once sync.Once
	go func() {
		defer once.Do(func() { close(first) })
		defer conn.CloseNow()
		defer ev.lose()
		for {
			typ, r, err := conn.Reader(ctx)
			once.Do(func() { close(first) })
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintf(c.log, "%s: WebSocket lost (%v): polling /history instead\n", c.shown, err)
				}
				return
			}
			if typ != websocket.MessageText {
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
				continue
			}
			var m struct {
				Type string `json:"type"`
				Data struct {
					Node     *string `json:"node"`
					PromptID string  `json:"prompt_id"`
				} `json:"data"`
			}
			if err := json.NewDecoder(r).Decode(&m); err != nil {
				continue // not a message lifeos reads
			}
			switch {
			case m.Type == "executing" && m.Data.Node == nil && m.Data.PromptID != "":
				ev.finish(m.Data.PromptID)
			case m.Type == "execution_start" && m.Data.PromptID != "":
				fmt.Fprintf(c.log, "%s: prompt %s started\n", c.shown, m.Data.PromptID)
			}
		}
	}()
	t := time.NewTimer(wsFirstMessage)
	defer t.Stop()
	select {
	case <-first:
	case <-t.C:
	case <-ctx.Done():
	}
}

// wsFirstMessage bounds the wait for a server's first message; one that
// sends none is still listened to.
const wsFirstMessage = 2 * time.Second

// finish records that a prompt is done and wakes its wait.
func (ev *comfyEvents) finish(id string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.done[id] = true
	if ch, ok := ev.waiters[id]; ok {
		close(ch)
		delete(ev.waiters, id)
	}
}

// lose wakes every wait, to poll from now on.
func (ev *comfyEvents) lose() {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.lost = true
	for id, ch := range ev.waiters {
		close(ch)
		delete(ev.waiters, id)
	}
}

// signal returns a channel closed when prompt id is done (at once if it
// is already), or nil when there is no socket to wait on.
func (c *comfyClient) signal(id string) <-chan struct{} {
	c.mu.Lock()
	ev := c.events
	c.mu.Unlock()
	if ev == nil {
		return nil
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.lost {
		return nil
	}
	ch := make(chan struct{})
	if ev.done[id] {
		close(ch)
		return ch
	}
	if old, ok := ev.waiters[id]; ok {
		return old
	}
	ev.waiters[id] = ch
	return ch
}
