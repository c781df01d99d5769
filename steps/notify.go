package steps

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/lifeos/lifeos/internal/gh"
	"github.com/lifeos/lifeos/internal/lazyre"
	"github.com/lifeos/lifeos/internal/pathglob"
	"github.com/lifeos/lifeos/internal/webhook"
)

func init() {
	Register(&Type{
		Name:    "notify",
		Version: 1,
		Summary: "post to a chat webhook, or open or update a GitHub issue or pull request (found again by a hidden marker)",
		New:     func() Step { return new(Notify) },
	})
}

// Notify tells people: "promote v4: grade B". A webhook message is cached
// like any step, keyed by its text: a re-run with the same text does not
// post it again. A GitHub issue or pull request always runs: the one
// carrying its key's marker (for a pull request, its branch's) is updated,
// or one is opened, so a re-run never opens a second.
type Notify struct {
	Kind string `yaml:"kind" doc:"webhook: POST {\"text\": ...}; github.issue: open or update an issue; github.pr: commit files to a branch and open or update its pull request"`
	// webhook
	URLEnv string `yaml:"url_env" doc:"webhook: the environment variable holding the webhook URL (a URL is its own credential: never in the pipeline)"`
	Text   string `yaml:"text" doc:"webhook: the message; ${{ }} reads params, policy and steps' outputs"`
	// github.issue, github.pr
	Repo     string   `yaml:"repo" doc:"github: owner/name"`
	Title    string   `yaml:"title" doc:"github: the title"`
	Body     string   `yaml:"body" doc:"github: the body (Markdown)"`
	BodyFile string   `yaml:"body_file" doc:"github: a workspace file to use as the body (a compare report), after body"`
	Labels   []string `yaml:"labels" doc:"github.issue: labels to set (default [lifeos]); the issue is looked for among those with the first"`
	Key      string   `yaml:"key" doc:"github: what makes it the same issue or pull request on a re-run (default: the title); kept in a hidden marker"`
	TokenEnv string   `yaml:"token_env" doc:"github: the environment variable holding the token (default GITHUB_TOKEN)"`
	APIURL   string   `yaml:"api_url" doc:"github: the REST API (default $GITHUB_API_URL, else https://api.github.com/)"`
	// github.pr
	Files  map[string]string `yaml:"files" doc:"github.pr: repository path: the workspace file whose content it gets on the branch"`
	Branch string            `yaml:"branch" doc:"github.pr: the branch to commit to (default lifeos/<key>)"`
	Base   string            `yaml:"base" doc:"github.pr: the branch to merge into (default: the repository's default branch)"`
}

var envName = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the params.
func (n *Notify) Validate() error {
	switch n.Kind {
	case "webhook":
		switch {
		case !envName().MatchString(n.URLEnv):
			return errors.New("url_env: want the name of an environment variable holding the URL (LIFEOS_WEBHOOK)")
		case n.Text == "":
			return errors.New("text: the message to post")
		}
	case "github.issue", "github.pr":
		if err := gh.CheckRepo(n.Repo); err != nil {
			return fmt.Errorf("repo: %w", err)
		}
		if n.Title == "" {
			return errors.New("title: the issue's or pull request's title")
		}
		if n.TokenEnv != "" && !envName().MatchString(n.TokenEnv) {
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
		if n.Kind == "github.issue" {
			if len(n.Files) > 0 || n.Branch != "" || n.Base != "" {
				return errors.New("files, branch and base are for kind github.pr")
			}
			break
		}
		if len(n.Files) == 0 {
			return errors.New("files: what the pull request changes, {repository path: workspace file}")
		}
		for to, from := range n.Files {
			if err := pathglob.Check(to); err != nil {
				return fmt.Errorf("files: %s: want a path inside the repository", to)
			}
			if err := pathglob.CheckRead(from); err != nil {
				return fmt.Errorf("files: %s: %w", to, err)
			}
		}
	default:
		return fmt.Errorf("kind: %q: want webhook, github.issue or github.pr", n.Kind)
	}
	return nil
}

// Deps: a webhook's message is its key (the URL, a secret, is not). An
// issue is reconciled with GitHub on every run: someone may have edited or
// closed it, and the marker makes running again safe.
func (n *Notify) Deps(map[string]Outputs) Deps {
	if n.Kind == "webhook" {
		return Deps{}
	}
	d := Deps{Volatile: true}
	if n.BodyFile != "" {
		d.Reads = append(d.Reads, n.BodyFile)
	}
	for _, from := range n.Files {
		d.Reads = append(d.Reads, from)
	}
	sort.Strings(d.Reads)
	return d
}

// Run posts the message, or opens or updates the issue.
func (n *Notify) Run(ctx context.Context, env *Env) (Outputs, error) {
	if n.Kind != "webhook" {
		return n.github(ctx, env)
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

func (n *Notify) github(ctx context.Context, env *Env) (Outputs, error) {
	tokenEnv := n.TokenEnv
	if tokenEnv == "" {
		tokenEnv = "GITHUB_TOKEN"
	}
	token := os.Getenv(tokenEnv)
	if token == "" {
		return nil, fmt.Errorf("$%s is not set: it holds the GitHub token (issues, contents and pull requests: write)", tokenEnv)
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
	key := n.Key
	if key == "" {
		key = titleKey(n.Title)
	}
	c, err := gh.New(api, token, n.Repo)
	if err != nil {
		return nil, err
	}
	var r gh.Result
	what := "issue"
	if n.Kind == "github.pr" {
		what = "pull request"
		files := map[string][]byte{}
		for to, from := range n.Files {
			data, err := os.ReadFile(pathglob.Abs(env.Root, from))
			if err != nil {
				return nil, fmt.Errorf("files: %s: %w", to, err)
			}
			files[to] = data
		}
		branch := n.Branch
		if branch == "" {
			branch = "lifeos/" + key
		}
		r, err = c.UpsertPR(ctx, key, branch, n.Base, n.Title, body, files)
	} else {
		labels := n.Labels
		if labels == nil {
			labels = []string{"lifeos"}
		}
		r, err = c.UpsertIssue(ctx, key, n.Title, body, labels)
	}
	if err != nil {
		return nil, err
	}
	line := fmt.Sprintf("%s %s #%d", r.Action, what, r.Number)
	if r.State != "" && r.State != "open" {
		line += " (" + r.State + ")"
	}
	fmt.Fprintf(env.Log, "%s in %s: %s\n%s\n", line, n.Repo, n.Title, r.URL)
	return Outputs{"number": r.Number, "url": r.URL, "action": r.Action, "summary": line + " in " + n.Repo}, nil
}

var notKey = lazyre.New(`[^A-Za-z0-9_.:/+-]+`)

// titleKey makes a marker key of a title.
func titleKey(title string) string {
	k := strings.Trim(notKey().ReplaceAllString(strings.ToLower(title), "-"), "-")
	if len(k) > 100 {
		k = k[:100]
	}
	if k == "" {
		k = "issue"
	}
	return k
}
