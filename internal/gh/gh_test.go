package gh

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/githubtest"
)

func fake(t *testing.T, repos ...string) (*githubtest.Server, string) {
	t.Helper()
	s := githubtest.New(repos...)
	s.Token = "ghp_test"
	srv := s.Start()
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func TestUpsertIssue(t *testing.T) {
	s, api := fake(t, "acme/loras")
	c, err := New(api, "ghp_test", "acme/loras")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := c.UpsertIssue(ctx, "promote-v2", "Promote v2: grade B", "the report", []string{"lifeos"})
	if err != nil || r.Action != "opened" || r.Number != 1 {
		t.Fatalf("first: %+v, %v", r, err)
	}
	// Another key opens another issue; the same key updates the first.
	if r, err := c.UpsertIssue(ctx, "promote-v3", "Promote v3", "x", []string{"lifeos"}); err != nil || r.Number != 2 {
		t.Fatalf("other key: %+v, %v", r, err)
	}
	r, err = c.UpsertIssue(ctx, "promote-v2", "Promote v2: grade A", "the new report", []string{"lifeos"})
	if err != nil || r.Action != "updated" || r.Number != 1 {
		t.Fatalf("again: %+v, %v", r, err)
	}
	is := s.Issues("acme/loras")
	if len(is) != 2 || is[0].Title != "Promote v2: grade A" || is[0].Body != "the new report\n\n"+Marker("promote-v2")+"\n" {
		t.Fatalf("issues: %+v", is)
	}
}

// A closed issue is found (state=all) and stays closed; a marker beyond
// the first page is found.
func TestUpsertIssueClosedAndPaged(t *testing.T) {
	s, api := fake(t, "acme/loras")
	c, _ := New(api, "ghp_test", "acme/loras")
	ctx := context.Background()
	if _, err := c.UpsertIssue(ctx, "old", "Old", "", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if _, err := c.UpsertIssue(ctx, fmt.Sprint("k", i), "filler", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close("acme/loras", 1)
	r, err := c.UpsertIssue(ctx, "old", "Old, again", "", nil)
	if err != nil || r.Number != 1 || r.State != "closed" {
		t.Fatalf("got %+v, %v", r, err)
	}
	if n := len(s.Issues("acme/loras")); n != 151 {
		t.Fatalf("%d issues, want 151", n)
	}
}

func TestErrors(t *testing.T) {
	_, api := fake(t, "acme/loras")
	ctx := context.Background()
	for _, tc := range []struct{ token, repo, want string }{
		{"wrong", "acme/loras", "github acme/loras: list issues: 401 Bad credentials (is the token valid?)"},
		{"ghp_test", "acme/none", "github acme/none: list issues: 404 Not Found (does the repository exist"},
	} {
		c, _ := New(api, tc.token, tc.repo)
		_, err := c.UpsertIssue(ctx, "k", "t", "b", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: got %v, want %q", tc.token, tc.repo, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("the token is in the error: %v", err)
		}
	}
	if _, err := New(api, "t", "acme"); err == nil {
		t.Error("repo without owner accepted")
	}
	c, _ := New(api, "ghp_test", "acme/loras")
	if _, err := c.UpsertIssue(ctx, "k", "", "b", nil); err == nil || !strings.Contains(err.Error(), "422 Validation Failed; title missing_field") {
		t.Errorf("empty title: %v", err)
	}
}

func TestWithMarker(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", Marker("k") + "\n"},
		{"body\n", "body\n\n" + Marker("k") + "\n"},
		{"body\n\n" + Marker("old") + "\n", "body\n\n" + Marker("k") + "\n"},
	} {
		if got := withMarker(tc.in, "k"); got != tc.want {
			t.Errorf("withMarker(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// An issue whose labels were dropped (a token without push access) or
// changed is still found.
func TestUpsertIssueLabelsDropped(t *testing.T) {
	s, api := fake(t, "acme/loras")
	c, _ := New(api, "ghp_test", "acme/loras")
	ctx := context.Background()
	if _, err := c.UpsertIssue(ctx, "k", "T", "", nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.UpsertIssue(ctx, "k", "T", "", []string{"lifeos", "promotion"})
	if err != nil || r.Action != "updated" {
		t.Fatalf("got %+v, %v", r, err)
	}
	if is := s.Issues("acme/loras"); len(is) != 1 || len(is[0].Labels) != 2 {
		t.Fatalf("issues: %+v", is)
	}
}

// A pull request: the branch is made from the default one, only changed
// files are committed, and a re-run updates the same pull request.
func TestUpsertPR(t *testing.T) {
	s, api := fake(t, "acme/studio")
	c, _ := New(api, "ghp_test", "acme/studio")
	ctx := context.Background()
	files := map[string][]byte{"loras/current.txt": []byte("ecollins_v2.safetensors\n"), "README.md": []byte("# acme/studio\n")}
	r, err := c.UpsertPR(ctx, "promote-v2", "lifeos/promote-v2", "", "Promote v2", "grade A", files)
	if err != nil || r.Action != "opened" || r.Number != 1 || !strings.HasSuffix(r.URL, "/acme/studio/pull/1") {
		t.Fatalf("first: %+v, %v", r, err)
	}
	if got, _ := s.File("acme/studio", "lifeos/promote-v2", "loras/current.txt"); string(got) != "ecollins_v2.safetensors\n" {
		t.Errorf("branch file %q", got)
	}
	if _, ok := s.File("acme/studio", "main", "loras/current.txt"); ok {
		t.Error("main was changed")
	}
	r, err = c.UpsertPR(ctx, "promote-v2", "lifeos/promote-v2", "", "Promote v2: grade A", "grade A, again", files)
	if err != nil || r.Action != "updated" || r.Number != 1 {
		t.Fatalf("again: %+v, %v", r, err)
	}
	is := s.Issues("acme/studio")
	if len(is) != 1 || is[0].Title != "Promote v2: grade A" || !strings.Contains(is[0].Body, Marker("promote-v2")) {
		t.Errorf("pull requests: %+v", is)
	}
	// An issue with the same key is another thing: the issue search skips
	// pull requests.
	if r, err := c.UpsertIssue(ctx, "promote-v2", "Promote v2", "x", nil); err != nil || r.Number != 2 || r.Action != "opened" {
		t.Errorf("issue beside the pull request: %+v, %v", r, err)
	}
	// Nothing to change: GitHub refuses a pull request without commits.
	_, err = c.UpsertPR(ctx, "same", "lifeos/same", "main", "Same", "", map[string][]byte{"README.md": []byte("# acme/studio\n")})
	if err == nil || !strings.Contains(err.Error(), "422 No commits between main and lifeos/same") {
		t.Errorf("no change: %v", err)
	}
}
