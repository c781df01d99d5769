package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/lifeos/lifeos/internal/retryhttp"
)

func init() {
	Register(&Type{
		Name:    "http.health",
		Version: 1,
		Summary: "GET a URL with retries and backoff; status and JSON body become outputs (never cached)",
		New:     func() Step { return new(Health) },
	})
}

// Health checks an HTTP endpoint, typically a GPU pod's ComfyUI
// (/system_stats), so that a gate can test it before anything costly runs:
// `steps.health.outputs.body.devices[0].vram_free > 8e9`.
type Health struct {
	URL          string        `yaml:"url" doc:"the URL to GET"`
	ExpectStatus int           `yaml:"expect_status" doc:"the status that means healthy (default 200)"`
	Timeout      time.Duration `yaml:"timeout" doc:"per request (default 10s)"`
	Retries      *int          `yaml:"retries" doc:"retries on connection errors, 429 and 5xx (default 3)"`
	Backoff      time.Duration `yaml:"backoff" doc:"first wait between tries, doubled each time (default 500ms); Retry-After wins"`
	BearerEnv    string        `yaml:"bearer_env" doc:"name of an environment variable whose value is sent as a bearer token"`
}

// maxHealthBody bounds what is read of a response.
const maxHealthBody = 1 << 20

// Validate checks the URL.
func (h *Health) Validate() error {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http or https URL", h.URL)
	}
	if h.Retries != nil && *h.Retries < 0 {
		return errors.New("retries must not be negative")
	}
	return nil
}

// Deps: volatile, as a health check's whole point is that it is current.
func (h *Health) Deps(map[string]Outputs) Deps { return Deps{Volatile: true} }

// Run performs the check.
func (h *Health) Run(ctx context.Context, env *Env) (Outputs, error) {
	shown := retryhttp.Redact(h.URL)
	retries, wait, timeout := 3, 500*time.Millisecond, 10*time.Second
	if h.Retries != nil {
		retries = *h.Retries
	}
	if h.Backoff > 0 {
		wait = h.Backoff
	}
	if h.Timeout > 0 {
		timeout = h.Timeout
	}
	c := retryhttp.New(env.Log, retries, wait, timeout)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, err
	}
	if h.BearerEnv != "" {
		token := os.Getenv(h.BearerEnv)
		if token == "" {
			return nil, fmt.Errorf("bearer_env: %s is not set", h.BearerEnv)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		err = fmt.Errorf("GET %s: %w", shown, redactErr(err, h.URL, shown))
		if unreachable(err) || unreachable(errors.Unwrap(err)) {
			err = fmt.Errorf("%w\n%s", err, unreachableHint(h.URL))
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", shown, err)
	}
	want := h.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	fmt.Fprintf(env.Log, "GET %s: %s\n", shown, resp.Status)
	if resp.StatusCode != want {
		excerpt := strings.TrimSpace(string(data))
		if len(excerpt) > 200 {
			excerpt = excerpt[:200] + "..."
		}
		return nil, fmt.Errorf("GET %s: status %d, want %d: %s", shown, resp.StatusCode, want, excerpt)
	}
	var body any = string(data)
	var parsed any
	if json.Unmarshal(data, &parsed) == nil {
		body = parsed
	}
	return Outputs{"status": resp.StatusCode, "body": body, "summary": resp.Status}, nil
}

// redactErr keeps credentials in a URL out of error messages.
func redactErr(err error, raw, shown string) error {
	if raw == shown {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, shown))
}
