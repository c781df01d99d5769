package steps

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// newHTTPClient is the HTTP client of every step that talks to a server
// (health checks, ComfyUI, scorers): retries on connection errors, 429 and
// 5xx with exponential backoff from waitMin (Retry-After wins), the last
// response returned rather than an error when retries run out, and each
// retry noted in the step's log.
func newHTTPClient(log io.Writer, retries int, waitMin, timeout time.Duration) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.Logger = nil
	c.RetryMax = retries
	c.RetryWaitMin, c.RetryWaitMax = waitMin, 30*time.Second
	c.HTTPClient.Timeout = timeout
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, attempt int) {
		if attempt > 0 {
			fmt.Fprintf(log, "%s %s: retry %d\n", r.Method, redactURL(r.URL.String()), attempt)
		}
	}
	return c
}

// redactURL hides credentials in a URL, for messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}
