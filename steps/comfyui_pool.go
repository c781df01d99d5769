package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
)

// serverPool is the set of servers a batch spreads over. A server whose
// requests fail failLimit times in a row (refused, reset, 5xx), after
// the retry layer's own tries, is taken out while another is left: its
// images go to the others instead of each failing after its retries. The
// last server is never taken out, so a batch on one server retries as
// before and fails only when no server is left.
type serverPool struct {
	mu    sync.Mutex
	alive int
	log   io.Writer
}

// failLimit is how many failed requests in a row take a server out.
const failLimit = 4

// errServerOut is returned by every request to a server taken out.
var errServerOut = errors.New("server taken out of the batch")

// health is a client's standing in its pool.
type health struct {
	pool  *serverPool
	fails int // failed requests in a row
	out   bool
	last  error // the last failure
}

// workKey marks a request context whose success shows the server
// working (a prompt posted, a history polled, an image downloaded), as
// opposed to a lookup: a server that answers /queue but fails every
// prompt is still taken out.
type workKey struct{}

// attempt records one request's outcome and reports whether the server
// is out (now or before). Only a working request's success resets the
// count.
func (c *comfyClient) attempt(ctx context.Context, err error, status int) bool {
	p := c.health.pool
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	h := &c.health
	if h.out {
		return true
	}
	if err == nil && status < 500 {
		if ctx.Value(workKey{}) != nil {
			h.fails = 0
		}
		return false
	}
	h.fails++
	h.last = err
	if err == nil {
		h.last = fmt.Errorf("HTTP %d", status)
	}
	if h.fails >= failLimit && p.alive > 1 {
		h.out = true
		p.alive--
		fmt.Fprintf(p.log, "%s: taken out of the batch after %d failed requests in a row (last: %v): its images go to the other servers\n", c.shown, h.fails, h.last)
		return true
	}
	return false
}

// isOut reports whether the server was taken out.
func (c *comfyClient) isOut() bool {
	if c.health.pool == nil {
		return false
	}
	c.health.pool.mu.Lock()
	defer c.health.pool.mu.Unlock()
	return c.health.out
}

// lastFailure is the server's last failed request, if it was taken out.
func (c *comfyClient) lastFailure() error {
	if c.health.pool == nil {
		return nil
	}
	c.health.pool.mu.Lock()
	defer c.health.pool.mu.Unlock()
	if !c.health.out {
		return nil
	}
	return c.health.last
}

// unreachable reports whether err is a server that cannot be reached at
// all (connection refused, no such host, no route), for the hint on where
// to set the address.
func unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}

// unreachableHint says what to check when nothing answers at a URL.
func unreachableHint(raw string) string {
	host := raw
	if u, err := url.Parse(raw); err == nil {
		host = u.Host
	}
	return fmt.Sprintf("hint: nothing answers at %s: is the server up, and is this its address? (The shipped pipelines take ComfyUI's address from COMFYUI_URL or --param server=URL.)", host)
}
