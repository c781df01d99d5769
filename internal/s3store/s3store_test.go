package s3store

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/s3test"
	"github.com/lifeos/lifeos/internal/testdir"
)

// server starts versitygw for one test, with the client's environment set;
// skipped where it is not installed, except in CI.
func server(t *testing.T, opts ...string) *s3test.Server {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := s3test.Binary(repo)
	if err != nil {
		if !s3test.Required() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	srv, err := s3test.Start(bin, testdir.New(t), []string{"bucket"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return srv
}

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetStatList(t *testing.T) {
	server(t)
	ctx := context.Background()
	s := open(t, "s3://bucket/some/prefix")
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ac/01/b", "ac/00/a", "cas/00/c"} {
		if err := s.Put(ctx, k, strings.NewReader("data of "+k), int64(len("data of "+k)), true); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if n, err := s.Get(ctx, "ac/00/a", &buf); err != nil || buf.String() != "data of ac/00/a" || n != 15 {
		t.Fatalf("get: %q, %d, %v", buf.String(), n, err)
	}
	if n, err := s.Stat(ctx, "cas/00/c"); err != nil || n != 16 {
		t.Fatalf("stat: %d, %v", n, err)
	}
	if _, err := s.Get(ctx, "ac/00/none", &buf); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "ac/00/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat of a missing key: %v, want fs.ErrNotExist", err)
	}
	var keys []string
	if err := s.List(ctx, "ac/", func(k string, _ int64) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, " ") != "ac/00/a ac/01/b" {
		t.Errorf("list: %v", keys)
	}
}

// TestCreateOnlyPut: a create-only put never replaces an object, on a
// service that honours If-None-Match and on one that ignores it (versitygw
// --nometa), where the store checks first and says so once.
func TestCreateOnlyPut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []string
		warnings int
	}{{"conditional", nil, 0}, {"ignores If-None-Match", []string{"--nometa"}, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			server(t, tc.opts...)
			ctx := context.Background()
			s := open(t, "s3://bucket/p")
			var warned []string
			s.Warn = func(m string) { warned = append(warned, m) }
			if err := s.Put(ctx, "ac/k", strings.NewReader("first"), 5, true); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "ac/k", strings.NewReader("other"), 5, true); !errors.Is(err, ErrExists) {
				t.Fatalf("second create-only put: %v, want ErrExists", err)
			}
			var buf bytes.Buffer
			if _, err := s.Get(ctx, "ac/k", &buf); err != nil || buf.String() != "first" {
				t.Fatalf("got %q, %v; want the first", buf.String(), err)
			}
			if err := s.Put(ctx, "ac/k", strings.NewReader("fixed"), 5, false); err != nil {
				t.Fatalf("replacing put: %v", err)
			}
			if len(warned) != tc.warnings || (tc.warnings > 0 && !strings.Contains(warned[0], "ignores If-None-Match")) {
				t.Errorf("warnings %q, want %d", warned, tc.warnings)
			}
		})
	}
}

func TestErrorsNameTheProblemNotTheSecret(t *testing.T) {
	server(t)
	ctx := context.Background()
	if err := open(t, "s3://nobucket/p").Check(ctx); err == nil || !strings.Contains(err.Error(), "bucket nobucket does not exist") {
		t.Errorf("missing bucket: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
	err := open(t, "s3://bucket/p").Put(ctx, "k", strings.NewReader("x"), 1, false)
	if err == nil || !strings.Contains(err.Error(), "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") {
		t.Errorf("wrong secret: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("the error shows the secret: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if err := open(t, "s3://bucket/p").Check(ctx); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("no secret: %v", err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://bucket/p", "s3://", "s3://user:pw@bucket/p", "s3://bucket/p?x=1"} {
		if _, err := Open(u); err == nil {
			t.Errorf("Open(%q) accepted", u)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL", "ftp://host")
	if _, err := Open("s3://bucket"); err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL") {
		t.Errorf("bad endpoint: %v", err)
	}
}
