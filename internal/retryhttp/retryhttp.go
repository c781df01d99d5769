// Package retryhttp is the HTTP client of everything lifeos sends to a
// server (health checks, ComfyUI, scorers, webhooks), on
// hashicorp/go-retryablehttp.
package retryhttp

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// New returns a client that retries connection errors, 429 and 5xx with
// exponential backoff from waitMin (Retry-After wins), returns the last
// response rather than an error when retries run out, and notes each retry
// in log (nil: nowhere, for a URL that is itself a secret).
func New(log io.Writer, retries int, waitMin, timeout time.Duration) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.Logger = nil
	c.RetryMax = retries
	c.RetryWaitMin, c.RetryWaitMax = waitMin, 30*time.Second
	c.HTTPClient.Timeout = timeout
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	if log != nil {
		c.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, attempt int) {
			if attempt > 0 {
				fmt.Fprintf(log, "%s %s: retry %d\n", r.Method, Redact(r.URL.String()), attempt)
			}
		}
	}
	return c
}

// Redact hides credentials in a URL, for messages.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}
