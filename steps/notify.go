package steps

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/lifeos/lifeos/internal/gh"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/webhook"
)

func init() {
	Register(&Type{
		Name:    "notify",
		Version: 1,
		Summary: "post to a chat webhook, or open or update a GitHub issue (found again by a hidden marker)",
		New:     func() Step { return new(Notify) },
	})
}

// Notify tells people: "promote v4: grade B". A webhook message is cached
// like any step, keyed by its text: a re-run with the same text does not
// post it again. A GitHub issue always runs: the issue carrying its key's
// marker is updated, or one is opened, so a re-run never opens a second.
type Notify struct {
	Kind string `yaml:"kind" doc:"webhook: POST {\"text\": ...}; github.issue: open or update an issue"`
	// webhook
	URLEnv string `yaml:"url_env" doc:"webhook: the environment variable holding the webhook URL (a URL is its own credential: never in the pipeline)"`
	Text   string `yaml:"text" doc:"webhook: the message; ${{ }} reads params, policy and steps' outputs"`
	// github.issue
	Repo     string   `yaml:"repo" doc:"github.issue: owner/name"`
	Title    string   `yaml:"title" doc:"github.issue: the title"`
	Body     string   `yaml:"body" doc:"github.issue: the body (Markdown)"`
	BodyFile string   `yaml:"body_file" doc:"github.issue: a workspace file to use as the body (a compare report), after body"`
	Labels   []string `yaml:"labels" doc:"github.issue: labels to set (default [lifeos]); the issue is looked for among those with the first"`
	Key      string   `yaml:"key" doc:"github.issue: what makes it the same issue on a re-run (default: the title); kept in a hidden marker"`
	TokenEnv string   `yaml:"token_env" doc:"github.issue: the environment variable holding the token (default GITHUB_TOKEN)"`
	APIURL   string   `yaml:"api_url" doc:"github.issue: the REST API (default $GITHUB_API_URL, else https://api.github.com/)"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the params.
func (n *Notify) Validate() error {
	switch n.Kind {
	case "webhook":
		switch {
		case !envName.MatchString(n.URLEnv):
			return errors.New("url_env: want the name of an environment variable holding the URL (LIFEOS_WEBHOOK)")
		case n.Text == "":
			return errors.New("text: the message to post")
		}
	case "github.issue":
		if err := gh.CheckRepo(n.Repo); err != nil {
			return fmt.Errorf("repo: %w", err)
		}
		if n.Title == "" {
			return errors.New("title: the issue's title")
		}
		if n.TokenEnv != "" && !envName.MatchString(n.TokenEnv) {
			return errors.New("token_env: want the name of an environment variable holding the token (GITHUB_TOKEN)")
		}
		if n.Key != "" {
			if err := gh.CheckKey(n.Key); err != nil {
				return fmt.Errorf("key: %w", err)
			}
		}
		if n.BodyFile != "" {
			if err := pathglob.CheckRead(n.BodyFile); err != nil {
				return fmt.Errorf("body_file: %w", err)
			}
		}
	default:
		return fmt.Errorf("kind: %q: want webhook or github.issue", n.Kind)
	}
	return nil
}

// Deps: a webhook's message is its key (the URL, a secret, is not). An
// issue is reconciled with GitHub on every run: someone may have edited or
// closed it, and the marker makes running again safe.
func (n *Notify) Deps(map[string]Outputs) Deps {
	if n.Kind == "github.issue" {
		d := Deps{Volatile: true}
		if n.BodyFile != "" {
			d.Reads = []string{n.BodyFile}
		}
		return d
	}
	return Deps{}
}

// Run posts the message, or opens or updates the issue.
func (n *Notify) Run(ctx context.Context, env *Env) (Outputs, error) {
	if n.Kind == "github.issue" {
		return n.issue(ctx, env)
	}
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

func (n *Notify) issue(ctx context.Context, env *Env) (Outputs, error) {
	tokenEnv := n.TokenEnv
	if tokenEnv == "" {
		tokenEnv = "GITHUB_TOKEN"
	}
	token := os.Getenv(tokenEnv)
	if token == "" {
		return nil, fmt.Errorf("$%s is not set: it holds the GitHub token (issues: write)", tokenEnv)
	}
	api := n.APIURL
	if api == "" {
		api = os.Getenv("GITHUB_API_URL")
	}
	body := n.Body
	if n.BodyFile != "" {
		data, err := os.ReadFile(pathglob.Abs(env.Root, n.BodyFile))
		if err != nil {
			return nil, fmt.Errorf("body_file: %w", err)
		}
		if body != "" {
			body = strings.TrimRight(body, "\n") + "\n\n"
		}
		body += string(data)
	}
	labels := n.Labels
	if labels == nil {
		labels = []string{"lifeos"}
	}
	key := n.Key
	if key == "" {
		key = titleKey(n.Title)
	}
	c, err := gh.New(api, token, n.Repo)
	if err != nil {
		return nil, err
	}
	r, err := c.UpsertIssue(ctx, key, n.Title, body, labels)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%s issue #%d", r.Action, r.Number)
	if r.State != "" && r.State != "open" {
		what += " (" + r.State + ")"
	}
	fmt.Fprintf(env.Log, "%s in %s: %s\n%s\n", what, n.Repo, n.Title, r.URL)
	return Outputs{"number": r.Number, "url": r.URL, "action": r.Action, "summary": what + " in " + n.Repo}, nil
}

var notKey = regexp.MustCompile(`[^A-Za-z0-9_.:/+-]+`)

// titleKey makes a marker key of a title.
func titleKey(title string) string {
	k := strings.Trim(notKey.ReplaceAllString(strings.ToLower(title), "-"), "-")
	if len(k) > 100 {
		k = k[:100]
	}
	if k == "" {
		k = "issue"
	}
	return k
}
