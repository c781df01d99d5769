// Package githubtest is an in-memory stand-in for the part of GitHub's
// REST API that lifeos's notify step uses (issues; branches, file
// contents and pull requests), for tests: the real paths, status codes,
// error bodies and Link pagination. As on GitHub, pull requests are
// issues too (one numbering; the issues list includes them).
package githubtest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Issue is a stored issue or pull request.
type Issue struct {
	Number int      `json:"number"`
	Title  string   `json:"title"`
	Body   string   `json:"body"`
	State  string   `json:"state"`
	Labels []string `json:"-"`
	// Head and Base are a pull request's branches; empty for an issue.
	Head, Base string `json:"-"`
}

type repoState struct {
	issues   []*Issue                     // by number-1
	branches map[string]string            // name -> commit sha
	files    map[string]map[string][]byte // branch -> path -> content
	commits  int
}

// Server is a fake API for the repositories it was made with.
type Server struct {
	// Token is the one accepted (as "Bearer" or "token"); empty accepts any.
	Token string
	// Log, when set, gets "METHOD /path STATUS" per request.
	Log io.Writer
	// URL is the server's address, for html_url; Start sets it.
	URL string
	// Changed, when set, is called with each issue or pull request opened
	// or edited (under the server's lock).
	Changed func(repo string, is Issue)

	mu    sync.Mutex
	repos map[string]*repoState
}

// New returns a fake holding the repositories named ("owner/name"), each
// with a branch main holding a README.md and no issues.
func New(repos ...string) *Server {
	s := &Server{repos: map[string]*repoState{}}
	for _, r := range repos {
		s.repos[r] = &repoState{
			branches: map[string]string{"main": commitSHA("", "README.md", []byte("# "+r+"\n"))},
			files:    map[string]map[string][]byte{"main": {"README.md": []byte("# " + r + "\n")}},
		}
	}
	return s
}

// commitSHA names a commit by its parent and change: a stand-in for git's.
func commitSHA(parent, path string, content []byte) string {
	return fmt.Sprintf("%x", sha1.Sum([]byte(parent+"\x00"+path+"\x00"+string(content))))
}

// blobSHA is git's blob id, as the contents API gives it.
func blobSHA(content []byte) string {
	return fmt.Sprintf("%x", sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(content))), content...)))
}

// Issues returns a copy of a repository's issues and pull requests,
// oldest first.
func (s *Server) Issues(repo string) []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Issue
	for _, is := range s.repos[repo].issues {
		out = append(out, *is)
	}
	return out
}

// File returns a file's content on a branch.
func (s *Server) File(repo, branch, path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.repos[repo].files[branch][path]
	return b, ok
}

// Close closes an issue or pull request, as a person on the web page
// would.
func (s *Server) Close(repo string, number int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[repo].issues[number-1].State = "closed"
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// ServeHTTP answers /repos/{owner}/{repo}[/...].
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
	if len(parts) < 3 || parts[0] != "repos" {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	repo := parts[1] + "/" + parts[2]
	rest := parts[3:]
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.repos[repo]
	if !ok {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	at := func(n int, words ...string) bool {
		if len(rest) < n || len(rest) < len(words) {
			return false
		}
		for i, w := range words {
			if rest[i] != w {
				return false
			}
		}
		return true
	}
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"name": parts[2], "full_name": repo, "default_branch": "main"})
	case len(rest) == 1 && at(1, "issues") && r.Method == http.MethodGet:
		s.list(w, r, repo, st, false)
	case len(rest) == 1 && at(1, "issues") && r.Method == http.MethodPost:
		s.createIssue(w, r, repo, st)
	case len(rest) == 2 && (at(2, "issues") || at(2, "pulls")):
		s.editIssue(w, r, repo, st, rest[0] == "pulls")
	case len(rest) >= 4 && at(4, "git", "ref", "heads") && r.Method == http.MethodGet:
		branch := strings.Join(rest[3:], "/")
		sha, ok := st.branches[branch]
		if !ok {
			fail(w, http.StatusNotFound, "Not Found")
			return
		}
		writeJSON(w, http.StatusOK, refJSON(branch, sha))
	case len(rest) == 2 && at(2, "git", "refs") && r.Method == http.MethodPost:
		var req struct{ Ref, SHA string }
		if json.NewDecoder(r.Body).Decode(&req) != nil {
			fail(w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
		branch, ok := strings.CutPrefix(req.Ref, "refs/heads/")
		from := ""
		for b, sha := range st.branches {
			if sha == req.SHA {
				from = b
			}
		}
		switch {
		case !ok || from == "":
			fail(w, http.StatusUnprocessableEntity, "Reference update failed")
		case st.branches[branch] != "":
			fail(w, http.StatusUnprocessableEntity, "Reference already exists")
		default:
			st.branches[branch] = req.SHA
			st.files[branch] = maps(st.files[from])
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(refJSON(branch, req.SHA))
		}
	case len(rest) >= 2 && at(1, "contents"):
		s.contents(w, r, st, strings.Join(rest[1:], "/"))
	case len(rest) == 1 && at(1, "pulls") && r.Method == http.MethodGet:
		s.list(w, r, repo, st, true)
	case len(rest) == 1 && at(1, "pulls") && r.Method == http.MethodPost:
		s.createPull(w, r, repo, st)
	default:
		fail(w, http.StatusNotFound, "Not Found")
	}
}

func maps(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func refJSON(branch, sha string) map[string]any {
	return map[string]any{"ref": "refs/heads/" + branch, "object": map[string]any{"sha": sha, "type": "commit"}}
}

func (s *Server) createIssue(w http.ResponseWriter, r *http.Request, repo string, st *repoState) {
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
		invalid(w, "Issue", "title", "missing_field")
		return
	}
	is := &Issue{Number: len(st.issues) + 1, Title: *req.Title, Body: req.Body, State: "open", Labels: req.Labels}
	st.issues = append(st.issues, is)
	s.changed(repo, is)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(s.json(repo, st, is))
}

func (s *Server) createPull(w http.ResponseWriter, r *http.Request, repo string, st *repoState) {
	var req struct{ Title, Head, Base, Body string }
	if json.NewDecoder(r.Body).Decode(&req) != nil {
		fail(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	head := req.Head
	if _, b, ok := strings.Cut(head, ":"); ok {
		head = b
	}
	switch {
	case req.Title == "":
		invalid(w, "PullRequest", "title", "missing_field")
		return
	case st.branches[head] == "" || st.branches[req.Base] == "":
		invalid(w, "PullRequest", "head", "invalid")
		return
	case st.branches[head] == st.branches[req.Base]:
		fail(w, http.StatusUnprocessableEntity, "No commits between "+req.Base+" and "+head)
		return
	}
	for _, is := range st.issues {
		if is.Head == head && is.State == "open" {
			fail(w, http.StatusUnprocessableEntity, "A pull request already exists for "+strings.Split(repo, "/")[0]+":"+head+".")
			return
		}
	}
	is := &Issue{Number: len(st.issues) + 1, Title: req.Title, Body: req.Body, State: "open", Head: head, Base: req.Base}
	st.issues = append(st.issues, is)
	s.changed(repo, is)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(s.json(repo, st, is))
}

func (s *Server) editIssue(w http.ResponseWriter, r *http.Request, repo string, st *repoState, pulls bool) {
	n, err := strconv.Atoi(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
	if err != nil || n < 1 || n > len(st.issues) || (pulls && st.issues[n-1].Head == "") {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	is := st.issues[n-1]
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
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
				invalid(w, "Issue", "title", "missing_field")
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
	default:
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, s.json(repo, st, is))
}

// contents answers GET (?ref=) and PUT of a file, as GitHub's contents API.
func (s *Server) contents(w http.ResponseWriter, r *http.Request, st *repoState, path string) {
	switch r.Method {
	case http.MethodGet:
		branch := r.URL.Query().Get("ref")
		if branch == "" {
			branch = "main"
		}
		data, ok := st.files[branch][path]
		if !ok {
			fail(w, http.StatusNotFound, "Not Found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"type": "file", "encoding": "base64", "path": path,
			"name": path[strings.LastIndex(path, "/")+1:], "sha": blobSHA(data), "size": len(data),
			"content": base64.StdEncoding.EncodeToString(data)})
	case http.MethodPut:
		var req struct {
			Message, Content, SHA, Branch string
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil {
			fail(w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
		branch := req.Branch
		if branch == "" {
			branch = "main"
		}
		data, err := base64.StdEncoding.DecodeString(req.Content)
		old, exists := st.files[branch][path]
		switch {
		case err != nil || req.Message == "":
			invalid(w, "Contents", "content", "invalid")
			return
		case st.branches[branch] == "":
			fail(w, http.StatusNotFound, "Branch "+branch+" not found")
			return
		case exists && req.SHA == "":
			invalid(w, "Contents", "sha", "missing_field") // GitHub: "sha" wasn't supplied.
			return
		case exists && req.SHA != blobSHA(old):
			fail(w, http.StatusConflict, path+" does not match "+req.SHA)
			return
		}
		st.files[branch][path] = data
		st.commits++
		st.branches[branch] = commitSHA(st.branches[branch], path, data)
		status := http.StatusOK
		if !exists {
			status = http.StatusCreated
		}
		writeJSON(w, status, map[string]any{"content": map[string]any{"path": path, "sha": blobSHA(data)},
			"commit": map[string]any{"sha": st.branches[branch], "message": req.Message}})
	default:
		fail(w, http.StatusNotFound, "Not Found")
	}
}

func (s *Server) changed(repo string, is *Issue) {
	if s.Changed != nil {
		s.Changed(repo, *is)
	}
}

// list answers GET issues or pulls: newest first, state (default open),
// labels (all of them; issues) and head (owner:branch; pulls) filtered,
// per_page (default 30, at most 100) with a Link header to the next page,
// as GitHub does. The issues list includes pull requests.
func (s *Server) list(w http.ResponseWriter, r *http.Request, repo string, st *repoState, pulls bool) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var want []string
	if l := q.Get("labels"); l != "" {
		want = strings.Split(l, ",")
	}
	head := q.Get("head")
	if _, b, ok := strings.Cut(head, ":"); ok {
		head = b
	}
	var match []*Issue
	for i := len(st.issues) - 1; i >= 0; i-- {
		is := st.issues[i]
		switch {
		case state != "all" && is.State != state,
			!hasAll(is.Labels, want),
			pulls && is.Head == "",
			head != "" && is.Head != head:
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
		out = append(out, s.json(repo, st, is))
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

func (s *Server) json(repo string, st *repoState, is *Issue) map[string]any {
	labels := []map[string]any{}
	names := slices.Clone(is.Labels)
	sort.Strings(names)
	for _, l := range names {
		labels = append(labels, map[string]any{"name": l})
	}
	base := strings.TrimRight(s.URL, "/")
	kind := "issues"
	if is.Head != "" {
		kind = "pull"
	}
	out := map[string]any{
		"number":   is.Number,
		"title":    is.Title,
		"body":     is.Body,
		"state":    is.State,
		"labels":   labels,
		"html_url": fmt.Sprintf("%s/%s/%s/%d", base, repo, kind, is.Number),
		"url":      fmt.Sprintf("%s/repos/%s/issues/%d", base, repo, is.Number),
	}
	if is.Head != "" {
		out["pull_request"] = map[string]any{"url": fmt.Sprintf("%s/repos/%s/pulls/%d", base, repo, is.Number)}
		out["head"] = map[string]any{"ref": is.Head, "sha": st.branches[is.Head]}
		out["base"] = map[string]any{"ref": is.Base, "sha": st.branches[is.Base]}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
		"status":            strconv.Itoa(code),
	})
}

func invalid(w http.ResponseWriter, resource, field, code string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"message":           "Validation Failed",
		"errors":            []map[string]any{{"resource": resource, "field": field, "code": code}},
		"documentation_url": "https://docs.github.com/rest",
		"status":            "422",
	})
}

// Start serves s on a loopback port. URL is set before the first request
// can arrive: set after, it would be written while the server reads it.
func (s *Server) Start() *httptest.Server {
	srv := httptest.NewUnstartedServer(s)
	s.URL = "http://" + srv.Listener.Addr().String()
	srv.Start()
	return srv
}
