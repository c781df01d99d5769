// Package gh opens or updates the GitHub issue or pull request a notify
// step stands for, through google/go-github. Each is found again by a
// hidden marker in its body, so a re-run updates it instead of opening
// another.
package gh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v75/github"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/lifeos/lifeos/internal/lazyre"
	"github.com/lifeos/lifeos/internal/retryhttp"
)

// DefaultAPI is github.com's REST API; GitHub Enterprise and the tests set
// GITHUB_API_URL (as GitHub Actions does) or the step's api_url.
const DefaultAPI = "https://api.github.com/"

// maxScan bounds the search for a marked issue: 10 pages of 100, newest
// first. A marked issue older than the 1,000 newest is not found, and a
// new one is opened.
const maxScan = 10

var (
	repoRE = lazyre.New(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	keyRE  = lazyre.New(`^[A-Za-z0-9_.:/+-]{1,100}$`)
)

// CheckRepo checks an owner/name.
func CheckRepo(repo string) error {
	if !repoRE().MatchString(repo) {
		return fmt.Errorf("%q: want owner/name", repo)
	}
	return nil
}

// CheckKey checks a marker key: it goes into an HTML comment.
func CheckKey(key string) error {
	if !keyRE().MatchString(key) {
		return fmt.Errorf("%q: want 1-100 letters, digits and _.:/+-", key)
	}
	return nil
}

// Marker is the hidden line that identifies the issue or pull request for
// key. It is the body's last line.
func Marker(key string) string { return "<!-- lifeos:notify key=" + key + " -->" }

// Client talks to one repository.
type Client struct {
	gh          *github.Client
	owner, name string
}

// New returns a client for repo ("owner/name") at the REST API apiURL
// (empty: DefaultAPI), authenticated with token. Reads and edits are
// retried on connection errors, 429 and 5xx; a create that got an answer
// is not, so a slow server cannot make two issues.
func New(apiURL, token, repo string) (*Client, error) {
	if err := CheckRepo(repo); err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	if apiURL == "" {
		apiURL = DefaultAPI
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	base, err := url.Parse(apiURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("api_url %q: want an http(s) URL", apiURL)
	}
	rc := retryhttp.New(nil, 3, 500*time.Millisecond, 30*time.Second)
	rc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if resp != nil && resp.Request != nil && resp.Request.Method == http.MethodPost {
			return false, nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	c := github.NewClient(rc.StandardClient()).WithAuthToken(token)
	c.BaseURL = base
	c.UserAgent = "lifeos"
	owner, name, _ := strings.Cut(repo, "/")
	return &Client{gh: c, owner: owner, name: name}, nil
}

// Result says what was done.
type Result struct {
	Number int
	URL    string
	// Action is "opened" or "updated".
	Action string
	// State is the issue's state after the call ("open", "closed"): an
	// update leaves a closed issue closed.
	State string
}

// UpsertIssue opens an issue with title and body (the marker appended) and
// labels, or, when one carrying key's marker exists, open or closed,
// updates its title, body and labels.
func (c *Client) UpsertIssue(ctx context.Context, key, title, body string, labels []string) (Result, error) {
	body = withMarker(body, key)
	marker := Marker(key)
	found, err := c.findIssue(ctx, marker, labels)
	if err != nil {
		return Result{}, err
	}
	req := &github.IssueRequest{Title: &title, Body: &body}
	if labels != nil {
		req.Labels = &labels
	}
	if found != nil {
		is, _, err := c.gh.Issues.Edit(ctx, c.owner, c.name, found.GetNumber(), req)
		if err != nil {
			return Result{}, c.wrap(fmt.Sprintf("update issue #%d", found.GetNumber()), err)
		}
		return Result{Number: is.GetNumber(), URL: is.GetHTMLURL(), Action: "updated", State: is.GetState()}, nil
	}
	is, _, err := c.gh.Issues.Create(ctx, c.owner, c.name, req)
	if err != nil {
		return Result{}, c.wrap("open an issue", err)
	}
	return Result{Number: is.GetNumber(), URL: is.GetHTMLURL(), Action: "opened", State: is.GetState()}, nil
}

// UpsertPR makes branch hold files (repository path -> content) on top of
// base (empty: the repository's default branch), creating the branch when
// it is missing and committing only the files that differ, then opens a
// pull request from it with title and body (the marker appended), or
// updates the one that branch already has. A re-run with the same files
// commits nothing.
func (c *Client) UpsertPR(ctx context.Context, key, branch, base, title, body string, files map[string][]byte) (Result, error) {
	body = withMarker(body, key)
	if base == "" {
		repo, _, err := c.gh.Repositories.Get(ctx, c.owner, c.name)
		if err != nil {
			return Result{}, c.wrap("read the repository", err)
		}
		base = repo.GetDefaultBranch()
	}
	if _, _, err := c.gh.Git.GetRef(ctx, c.owner, c.name, "heads/"+branch); err != nil {
		if !notFound(err) {
			return Result{}, c.wrap("read branch "+branch, err)
		}
		ref, _, err := c.gh.Git.GetRef(ctx, c.owner, c.name, "heads/"+base)
		if err != nil {
			return Result{}, c.wrap("read branch "+base, err)
		}
		if _, _, err := c.gh.Git.CreateRef(ctx, c.owner, c.name, github.CreateRef{Ref: "refs/heads/" + branch, SHA: ref.GetObject().GetSHA()}); err != nil {
			return Result{}, c.wrap("create branch "+branch, err)
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		opts := &github.RepositoryContentFileOptions{Message: github.Ptr("lifeos: " + title), Content: files[p], Branch: &branch}
		cur, _, _, err := c.gh.Repositories.GetContents(ctx, c.owner, c.name, p, &github.RepositoryContentGetOptions{Ref: branch})
		switch {
		case err == nil && cur != nil:
			if old, err := cur.GetContent(); err == nil && old == string(files[p]) {
				continue // already there: no empty commit
			}
			opts.SHA = cur.SHA
			_, _, err = c.gh.Repositories.UpdateFile(ctx, c.owner, c.name, p, opts)
			if err != nil {
				return Result{}, c.wrap("update "+p+" on "+branch, err)
			}
		case notFound(err):
			if _, _, err := c.gh.Repositories.CreateFile(ctx, c.owner, c.name, p, opts); err != nil {
				return Result{}, c.wrap("add "+p+" on "+branch, err)
			}
		default:
			return Result{}, c.wrap("read "+p+" on "+branch, err)
		}
	}
	// The branch's pull request, open or closed, newest first; else one
	// carrying the marker from another branch is not ours to touch.
	prs, _, err := c.gh.PullRequests.List(ctx, c.owner, c.name, &github.PullRequestListOptions{
		State: "all", Head: c.owner + ":" + branch, ListOptions: github.ListOptions{PerPage: 100}})
	if err != nil {
		return Result{}, c.wrap("list pull requests", err)
	}
	for _, pr := range prs {
		if pr.GetState() != "open" && !strings.Contains(pr.GetBody(), Marker(key)) {
			continue
		}
		up, _, err := c.gh.PullRequests.Edit(ctx, c.owner, c.name, pr.GetNumber(), &github.PullRequest{Title: &title, Body: &body})
		if err != nil {
			return Result{}, c.wrap(fmt.Sprintf("update pull request #%d", pr.GetNumber()), err)
		}
		return Result{Number: up.GetNumber(), URL: up.GetHTMLURL(), Action: "updated", State: up.GetState()}, nil
	}
	pr, _, err := c.gh.PullRequests.Create(ctx, c.owner, c.name, &github.NewPullRequest{Title: &title, Head: &branch, Base: &base, Body: &body})
	if err != nil {
		return Result{}, c.wrap("open a pull request", err)
	}
	return Result{Number: pr.GetNumber(), URL: pr.GetHTMLURL(), Action: "opened", State: pr.GetState()}, nil
}

func notFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response.StatusCode == http.StatusNotFound
}

// findIssue returns the newest issue (not pull request) whose body holds
// marker. It looks among those with the first label first (exact and
// cheap), then among all: GitHub drops the labels of a token without push
// access, and the issue must still be found.
func (c *Client) findIssue(ctx context.Context, marker string, labels []string) (*github.Issue, error) {
	if len(labels) > 0 {
		is, err := c.scanIssues(ctx, marker, labels[:1])
		if is != nil || err != nil {
			return is, err
		}
	}
	return c.scanIssues(ctx, marker, nil)
}

func (c *Client) scanIssues(ctx context.Context, marker string, labels []string) (*github.Issue, error) {
	opts := &github.IssueListByRepoOptions{State: "all", Sort: "created", Direction: "desc", Labels: labels}
	opts.ListOptions = github.ListOptions{PerPage: 100, Page: 1}
	for range maxScan {
		page, resp, err := c.gh.Issues.ListByRepo(ctx, c.owner, c.name, opts)
		if err != nil {
			return nil, c.wrap("list issues", err)
		}
		for _, is := range page {
			if !is.IsPullRequest() && strings.Contains(is.GetBody(), marker) {
				return is, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.ListOptions.Page = resp.NextPage
	}
	return nil, nil
}

// withMarker appends key's marker to body, replacing one already there.
func withMarker(body, key string) string {
	if i := strings.Index(body, "<!-- lifeos:notify key="); i >= 0 {
		body = body[:i]
	}
	body = strings.TrimRight(body, "\n")
	if body != "" {
		body += "\n\n"
	}
	return body + Marker(key) + "\n"
}

// wrap names the repository and GitHub's own message: "Bad credentials",
// "Not Found", the fields a 422 refused.
func (c *Client) wrap(what string, err error) error {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		msg := er.Message
		for _, e := range er.Errors {
			msg += fmt.Sprintf("; %s %s", e.Field, e.Code)
		}
		hint := ""
		switch er.Response.StatusCode {
		case http.StatusUnauthorized:
			hint = " (is the token valid?)"
		case http.StatusNotFound:
			hint = " (does the repository exist, and may the token see it?)"
		case http.StatusForbidden:
			hint = " (may the token write there?)"
		}
		return fmt.Errorf("github %s/%s: %s: %d %s%s", c.owner, c.name, what, er.Response.StatusCode, msg, hint)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("github %s/%s: %s: %w", c.owner, c.name, what, err)
}
