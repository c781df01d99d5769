package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestPost(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // retried
			return
		}
		if r.URL.Path == "/gone/SECRET" {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		got = append(got, m)
	}))
	defer srv.Close()
	if err := Post(context.Background(), srv.URL+"/hook/SECRET", "idle pod", map[string]any{"username": "lifeos"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["text"] != "idle pod" || got[0]["username"] != "lifeos" || calls != 2 {
		t.Errorf("received %v after %d calls", got, calls)
	}
	err := Post(context.Background(), srv.URL+"/gone/SECRET", "x", nil)
	if err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("a 404: %v (the URL's path is a secret)", err)
	}
	if err := Post(context.Background(), "ftp://x/y", "x", nil); err == nil {
		t.Error("an ftp URL was accepted")
	}
}
