package runner

import (
	"bytes"
	"strings"
	"testing"
)

func TestMeterPlain(t *testing.T) {
	var b bytes.Buffer
	m := newMeter(&b, false)
	for i := 0; i <= 40; i++ {
		m.report("generate", "images", i, 40)
	}
	m.report("small", "images", 3, 6) // too small a batch to log
	want := "  ...       generate  10/40 images\n  ...       generate  20/40 images\n  ...       generate  30/40 images\n"
	if b.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", b.String(), want)
	}
}

func TestMeterTerminal(t *testing.T) {
	var b bytes.Buffer
	m := newMeter(&b, true)
	m.report("score", "images", 5, 10)
	if !strings.Contains(b.String(), "score [##########..........] 5/10") {
		t.Errorf("status line: %q", b.String())
	}
	m.println("  ok        other")
	if !strings.Contains(b.String(), "\r\033[K  ok        other\n") {
		t.Errorf("a line is printed after clearing the status: %q", b.String())
	}
	m.report("score", "images", 10, 10)
	if !strings.HasSuffix(b.String(), "\r\033[K") {
		t.Errorf("the finished step's status is cleared: %q", b.String())
	}
}
