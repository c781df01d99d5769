package runner

import (
	"encoding/json"
	"testing"
)

func TestRedactorHidesSecretsOnlyInsideStrings(t *testing.T) {
	r := newRedactor([]*Param{{Name: "pin", Secret: true}, {Name: "short", Secret: true}, {Name: "count"}},
		map[string]any{"pin": 1234, "short": "ab", "count": 1234})
	rec := []byte(`{"duration_ms": 1234.5, "error": "login with 1234 failed", "url": "http://u:pw@h/x", "n": "ab"}`)
	got := r.JSON(rec)
	if !json.Valid(got) {
		t.Fatalf("redacted record is not JSON: %s", got)
	}
	want := `{"duration_ms": 1234.5, "error": "login with <secret pin> failed", "url": "http://u:xxxxx@h/x", "n": "ab"}`
	if string(got) != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
	if p := r.Params(map[string]any{"pin": 1234, "short": "ab", "count": 1234}); p["pin"] != "<secret pin>" || p["short"] != "<secret short>" || p["count"] != 1234 {
		t.Errorf("Params = %v", p)
	}
	if got := r.String("pin=1234\n"); got != "pin=<secret pin>\n" {
		t.Errorf("String = %q", got)
	}
}
