package steps

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"

	"github.com/lifeos/lifeos/internal/webhook"
)

func init() {
	Register(&Type{
		Name:    "notify",
		Version: 1,
		Summary: "post a message to a chat webhook (Slack, Discord's /slack); sent once per distinct message",
		New:     func() Step { return new(Notify) },
	})
}

// Notify posts a message, e.g. "promote v4: grade B". It is cached like any
// step, keyed by its message: a re-run with the same message does not post
// it again, a changed message (another grade, another version) does.
type Notify struct {
	Kind   string `yaml:"kind" doc:"webhook: POST {\"text\": ...} (GitHub issues are planned)"`
	URLEnv string `yaml:"url_env" doc:"the environment variable holding the webhook URL (a URL is its own credential: never in the pipeline)"`
	Text   string `yaml:"text" doc:"the message; ${{ }} reads params, policy and steps' outputs"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the params.
func (n *Notify) Validate() error {
	switch {
	case n.Kind != "webhook":
		return fmt.Errorf("kind: %q: want webhook", n.Kind)
	case !envName.MatchString(n.URLEnv):
		return errors.New("url_env: want the name of an environment variable holding the URL (LIFEOS_WEBHOOK)")
	case n.Text == "":
		return errors.New("text: the message to post")
	}
	return nil
}

// Deps: the message is the key (the URL, a secret, is not).
func (n *Notify) Deps(map[string]Outputs) Deps { return Deps{} }

// Run posts the message.
func (n *Notify) Run(ctx context.Context, env *Env) (Outputs, error) {
	raw := os.Getenv(n.URLEnv)
	if raw == "" {
		return nil, fmt.Errorf("$%s is not set: it holds the webhook URL", n.URLEnv)
	}
	if err := webhook.Post(ctx, raw, n.Text, nil); err != nil {
		return nil, err
	}
	host := "the webhook"
	if u, err := url.Parse(raw); err == nil {
		host = u.Host
	}
	fmt.Fprintf(env.Log, "posted to %s: %s\n", host, n.Text)
	return Outputs{"sent": true, "summary": "posted to " + host}, nil
}
