// Package githubtest is an in-memory stand-in for the part of GitHub's
// REST API that lifeos's notify step uses (issues), for tests: the
// real paths, status codes, error bodies and Link pagination.
package githubtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Issue is a stored issue.
type Issue struct {
	Number int      `json:"number"`
	Title  string   `json:"title"`
	Body   string   `json:"body"`
	State  string   `json:"state"`
	Labels []string `json:"-"`
}

// Server is a fake API for the repositories it was made with.
type Server struct {
	// Token is the one accepted (as "Bearer" or "token"); empty accepts any.
	Token string
	// Log, when set, gets "METHOD /path STATUS" per request.
	Log io.Writer
	// URL is the server's address, for html_url; set it once it listens.
	URL string
	// Changed, when set, is called with each issue opened or edited (under
	// the server's lock).
	Changed func(repo string, is Issue)

	mu     sync.Mutex
	repos  map[string][]*Issue // "owner/name" -> issues, by number-1
	number map[string]int
}

// New returns a fake holding the repositories named ("owner/name"), empty.
func New(repos ...string) *Server {
	s := &Server{repos: map[string][]*Issue{}, number: map[string]int{}}
	for _, r := range repos {
		s.repos[r] = nil
	}
	return s
}

// Issues returns a copy of a repository's issues, oldest first.
func (s *Server) Issues(repo string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.repos[repo] {
		out = append(out, *is)
	}
	return out
}

// Close closes an issue, as a person on the web page would.
func (s *Server) Close(repo string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[repo][number-1].State = "closed"
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// ServeHTTP answers /repos/{owner}/{repo}/issues[/{number}].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: 200}
	s.serve(rec, r)
	if s.Log != nil {
		s.mu.Lock()
		fmt.Fprintf(s.Log, "%s %s %d\n", r.Method, r.URL.Path, rec.status)
		s.mu.Unlock()
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if s.Token != "" {
		auth := r.Header.Get("Authorization")
		if auth != "Bearer "+s.Token && auth != "token "+s.Token {
			fail(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != "repos" || parts[3] != "issues" || len(parts) > 5 {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	repo := parts[1] + "/" + parts[2]
	s.mu.Lock()
	defer s.mu.Unlock()
	issues, ok := s.repos[repo]
	if !ok {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	switch {
	case len(parts) == 4 && r.Method == http.MethodGet:
		s.list(w, r, repo, issues)
	case len(parts) == 4 && r.Method == http.MethodPost:
		var req struct {
			Title  *string  `json:"title"`
			Body   string   `json:"body"`
			Labels []string `json:"labels"`
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil {
			fail(w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
		if req.Title == nil || *req.Title == "" {
			invalid(w, "title", "missing_field")
			return
		}
		s.number[repo]++
		is := &Issue{Number: s.number[repo], Title: *req.Title, Body: req.Body, State: "open", Labels: req.Labels}
		s.repos[repo] = append(issues, is)
		s.changed(repo, is)
		w.WriteHeader(http.StatusCreated)
		s.write(w, repo, is)
	case len(parts) == 5 && (r.Method == http.MethodPatch || r.Method == http.MethodGet):
		n, err := strconv.Atoi(parts[4])
		if err != nil || n < 1 || n > len(issues) {
			fail(w, http.StatusNotFound, "Not Found")
			return
		}
		is := issues[n-1]
		if r.Method == http.MethodPatch {
			var req struct {
				Title  *string   `json:"title"`
				Body   *string   `json:"body"`
				State  *string   `json:"state"`
				Labels *[]string `json:"labels"`
			}
			if json.NewDecoder(r.Body).Decode(&req) != nil {
				fail(w, http.StatusBadRequest, "Problems parsing JSON")
				return
			}
			if req.Title != nil {
				if *req.Title == "" {
					invalid(w, "title", "missing_field")
					return
				}
				is.Title = *req.Title
			}
			if req.Body != nil {
				is.Body = *req.Body
			}
			if req.State != nil {
				is.State = *req.State
			}
			if req.Labels != nil {
				is.Labels = *req.Labels
			}
			s.changed(repo, is)
		}
		s.write(w, repo, is)
	default:
		fail(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) changed(repo string, is *Issue) {
	if s.Changed != nil {
		s.Changed(repo, *is)
	}
}

// list answers GET issues: newest first, state (default open) and labels
// (all of them) filtered, per_page (default 30, at most 100) with a Link
// header to the next page, as GitHub does.
func (s *Server) list(w http.ResponseWriter, r *http.Request, repo string, issues []*Issue) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	var match []*Issue
	for i := len(issues) - 1; i >= 0; i-- {
		is := issues[i]
		if state != "all" && is.State != state {
			continue
		}
		if !hasAll(is.Labels, want) {
			continue
		}
		match = append(match, is)
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	lo := min((page-1)*per, len(match))
	hi := min(lo+per, len(match))
	if hi < len(match) {
		next := *r.URL
		q.Set("page", strconv.Itoa(page+1))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.URL, next.RequestURI()))
	}
	out := []map[string]any{}
	for _, is := range match[lo:hi] {
		out = append(out, s.json(repo, is))
	}
	json.NewEncoder(w).Encode(out)
}

func hasAll(have, want []string) bool {
	for _, l := range want {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}

func (s *Server) json(repo string, is *Issue) map[string]any {
	labels := []map[string]any{}
	for _, l := range is.Labels {
		labels = append(labels, map[string]any{"name": l})
	}
	return map[string]any{
		"number":   is.Number,
		"title":    is.Title,
		"body":     is.Body,
		"state":    is.State,
		"labels":   labels,
		"html_url": fmt.Sprintf("%s/%s/issues/%d", strings.TrimRight(s.URL, "/"), repo, is.Number),
		"url":      fmt.Sprintf("%s/repos/%s/issues/%d", strings.TrimRight(s.URL, "/"), repo, is.Number),
	}
}

func (s *Server) write(w http.ResponseWriter, repo string, is *Issue) {
	json.NewEncoder(w).Encode(s.json(repo, is))
}

func fail(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
		"status":            strconv.Itoa(code),
	})
}

func invalid(w http.ResponseWriter, field, code string) {
	w.WriteHeader(http.StatusUnprocessableEntity)
	json.NewEncoder(w).Encode(map[string]any{
		"message":           "Validation Failed",
		"errors":            []map[string]any{{"resource": "Issue", "field": field, "code": code}},
		"documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
		"status":            "422",
	})
}
