package runner

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"testing/iotest"
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

// A command's output reaches the log through ReadFrom (os/exec copies
// into a writer that is not a file): whole, and with a secret redacted
// even when the output comes a byte at a time, split across reads.
func TestRedactWriterReadFrom(t *testing.T) {
	r := newRedactor([]*Param{{Name: "token", Secret: true}}, map[string]any{"token": "s3cr3t-value"})
	var w io.Writer = redactWriter{r, new(bytes.Buffer)}
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Fatal("redactWriter is not an io.ReaderFrom: os/exec would copy through a buffer of its own per command")
	}
	for _, tc := range []struct {
		name, out string
		reads     func(io.Reader) io.Reader
	}{
		{"a byte a read", "using s3cr3t-value; s3cr3t and s3cr3t-value\n", iotest.OneByteReader},
		{"ends inside one", "ends with s3cr3t-val", iotest.HalfReader},
		{"120 KB", strings.Repeat("using s3cr3t-value here\n", 5000), func(r io.Reader) io.Reader { return r }},
	} {
		var log bytes.Buffer
		n, err := redactWriter{r, &log}.ReadFrom(tc.reads(strings.NewReader(tc.out)))
		want := strings.ReplaceAll(tc.out, "s3cr3t-value", "<secret token>")
		if err != nil || n != int64(len(tc.out)) || log.String() != want {
			t.Errorf("%s: read %d of %d bytes, %v; log %.60q, want %.60q", tc.name, n, len(tc.out), err, log.String(), want)
		}
	}
	// A secret longer than a read (a key file's 40 KB): once the buffer
	// held nothing but its beginning, the copy read into no room, forever.
	long := strings.Repeat("k", 40<<10)
	r = newRedactor([]*Param{{Name: "key", Secret: true}}, map[string]any{"key": long})
	var log bytes.Buffer
	n, err := redactWriter{r, &log}.ReadFrom(strings.NewReader("x" + long + "y"))
	if err != nil || n != int64(len(long)+2) || log.String() != "x<secret key>y" {
		t.Errorf("a 40 KB secret: read %d bytes, %v; log %.60q", n, err, log.String())
	}
}
