// Package webhook posts a message to a chat webhook (Slack, Discord, or
// anything that takes a JSON object with a "text" field).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/lifeos/lifeos/internal/retryhttp"
)

// Post sends {"text": text} (Slack's field; Discord takes it too when the
// URL ends in /slack) plus extra fields, retrying connection errors, 429
// and 5xx with backoff. The URL is a secret (a webhook URL is its own
// credential): errors name its host only.
func Post(ctx context.Context, rawURL, text string, extra map[string]any) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook: not an http(s) URL")
	}
	body := map[string]any{}
	for k, v := range extra {
		body[k] = v
	}
	body["text"] = text
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	c := retryhttp.New(nil, 3, 500*time.Millisecond, 20*time.Second) // no retry log: the URL is the secret
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", u.Host, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return fmt.Errorf("webhook %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("webhook %s: %s: %s", u.Host, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
