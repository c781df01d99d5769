package runner

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the console's clock in tests: time moves only when told.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func plainConsole(b *bytes.Buffer) (*console, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := newConsole(b, b, consoleOptions{steps: 3, idWidth: 5})
	c.now = clk.now
	c.tickGap = 0 // the test ticks
	return c, clk
}

// Without a terminal, a step that moves gets a progress line at most every
// 10 s, with rate and ETA; a silent one gets "running" lines at doubling
// gaps; a step that streamed output recently needs no line at all.
func TestConsolePlainProgress(t *testing.T) {
	var b bytes.Buffer
	c, clk := plainConsole(&b)
	c.start("gen", 0, 0)
	c.start("train", 0, 0)
	c.start("talky", 0, 0)
	b.Reset()
	tickAt := func(d time.Duration) string {
		clk.t = clk.t.Add(d)
		b.Reset()
		c.tick()
		return b.String()
	}
	c.progress("gen", "images", 5, 40)
	out := tickAt(5 * time.Second)
	if out != "" {
		t.Fatalf("a line before 10 s:\n%s", out)
	}
	w := c.stream("talky", "", 0)
	clk.t = clk.t.Add(4 * time.Second)
	w.Write([]byte("epoch 1\n"))
	out = tickAt(time.Second) // 10 s in
	want := "  ...        gen    5/40 images, 0.5/s, ETA 1m10s\n  ...        train  running 10s\n"
	if out != want {
		t.Errorf("at 10 s:\n%q\nwant\n%q", out, want)
	}
	c.progress("gen", "images", 10, 40)
	out = tickAt(5 * time.Second)
	if out != "" {
		t.Errorf("a second line within 10 s:\n%s", out)
	}
	out = tickAt(5 * time.Second) // 20 s: gen moved; train waits 20 s now; talky spoke at 4 s, silent 16 s
	want = "  ...        gen    10/40 images, 0.5/s, ETA 1m00s\n  ...        talky  running 20s\n"
	if out != want {
		t.Errorf("at 20 s:\n%q\nwant\n%q", out, want)
	}
	out = tickAt(10 * time.Second) // 30 s: gen stalled for 10 s, train's gap of 20 s is over
	want = "  ...        gen    running 30s, 10/40 images\n  ...        train  running 30s\n"
	if out != want {
		t.Errorf("at 30 s:\n%q\nwant\n%q", out, want)
	}
	// 40 s: gen's gap doubled to 20 s; talky's (last said at 20 s) too.
	if out, want := tickAt(10*time.Second), "  ...        talky  running 40s\n"; out != want {
		t.Errorf("at 40 s:\n%q\nwant\n%q", out, want)
	}
	out = tickAt(10 * time.Second) // 50 s
	if !strings.Contains(out, "gen    running 50s, 10/40 images") {
		t.Errorf("a stalled step says it is running, with its count:\n%s", out)
	}
	if strings.Contains(out, "train") {
		t.Errorf("train's gap doubled to 40 s:\n%s", out)
	}
	c.end("gen")
	c.end("train")
	c.end("talky")
	if out := tickAt(time.Hour); out != "" {
		t.Errorf("finished steps print nothing:\n%s", out)
	}
}

// The ticker of plain progress lines starts with the first step that
// runs (a run whose steps are all cached never starts it), says that the
// step runs, and is stopped by close.
func TestConsoleTickerStartsWithAStep(t *testing.T) {
	var b syncBuffer
	c := newConsole(&b, &b, consoleOptions{steps: 1, idWidth: 5})
	c.every, c.tickGap = time.Millisecond, time.Millisecond
	c.header("run x")
	c.mu.Lock()
	started := c.stop != nil
	c.mu.Unlock()
	if started {
		t.Fatal("the ticker started before any step ran")
	}
	c.start("train", 0, 0)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), "train  running") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line from the ticker in 10 s:\n%s", b.String())
		}
		time.Sleep(time.Millisecond)
	}
	c.close()
	after := b.String()
	c.start("again", 0, 0) // a step announced after close (a run being stopped)
	c.close()
	c.mu.Lock()
	restarted := c.stop != nil
	c.mu.Unlock()
	if restarted || b.String() != after+"  start      again\n" {
		t.Errorf("the ticker went on after close:\n%s", strings.TrimPrefix(b.String(), after))
	}
}

func TestConsoleQuiet(t *testing.T) {
	var b bytes.Buffer
	c := newConsole(&b, &b, consoleOptions{quiet: true, steps: 2, idWidth: 4})
	c.header("run x")
	c.start("a", 0, 0)
	if w := c.stream("a", "", 0); w != nil {
		t.Error("a quiet run streams output")
	}
	c.stepLine("ok", "a", "done")
	c.stepLine("FAIL", "b", "exit status 1")
	c.close()
	if got, want := b.String(), "  FAIL       b     exit status 1\n"; got != want {
		t.Errorf("quiet:\n%q\nwant\n%q", got, want)
	}
}

func TestConsoleColor(t *testing.T) {
	var b bytes.Buffer
	c := newConsole(&b, &b, consoleOptions{color: true, steps: 1, idWidth: 4})
	c.stepLine("FAIL", "b", "")
	w := c.stream("b", "photo.png", 1)
	w.Write([]byte("line one\npartial"))
	w.Flush()
	want := "  \x1b[1;31mFAIL      \x1b[0m b\n" +
		"  \x1b[35mb[photo.png] |\x1b[0m line one\n" +
		"  \x1b[35mb[photo.png] |\x1b[0m partial\n"
	if b.String() != want {
		t.Errorf("colour:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	c = newConsole(&b, &b, consoleOptions{steps: 1, idWidth: 4})
	c.stepLine("FAIL", "b", "")
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("escape codes without colour: %q", b.String())
	}
}

func TestColorWanted(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	for _, c := range []struct {
		mode, noColor, term string
		tty, want           bool
	}{
		{"auto", "", "xterm", true, true},
		{"auto", "", "xterm", false, false},
		{"auto", "1", "xterm", true, false},
		{"auto", "", "dumb", true, false},
		{"always", "1", "dumb", false, true},
		{"never", "", "xterm", true, false},
		{"", "", "xterm", true, true},
	} {
		t.Setenv("NO_COLOR", c.noColor)
		t.Setenv("TERM", c.term)
		if got := colorWanted(c.mode, c.tty); got != c.want {
			t.Errorf("--color=%s NO_COLOR=%q TERM=%s tty=%v: %v, want %v", c.mode, c.noColor, c.term, c.tty, got, c.want)
		}
	}
}

// On a terminal the live area ends with the footer; lines printed while it
// is up land above it, and all of them are out when close returns.
func TestConsoleTerminal(t *testing.T) {
	var b syncBuffer
	c := newConsole(&b, &b, consoleOptions{terminal: true, steps: 3, idWidth: 5})
	c.header("run x")
	c.start("gen", 0, 0)
	c.progress("gen", "images", 3, 10)
	c.stepLine("ok", "first", "")
	w := c.stream("gen", "", 0)
	w.Write([]byte("hello\n"))
	c.end("gen")
	c.stepLine("ok", "gen", "")
	c.close()
	out := b.String()
	for _, want := range []string{"run x\n", "  start      gen\n", "  ok         first\n", "  gen | hello\n", "  ok         gen\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%q", want, out)
		}
	}
	if strings.Index(out, "gen | hello") > strings.Index(out, "ok         gen") {
		t.Errorf("lines out of order:\n%q", out)
	}
	// After close, lines go straight out.
	b.Reset()
	c.stepLine("ok", "late", "")
	if got := b.String(); got != "  ok         late\n" {
		t.Errorf("after close: %q", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func TestFmtElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond: "0s", 4 * time.Second: "4s", 80 * time.Second: "1m20s",
		2*time.Hour + 5*time.Minute: "2h05m",
	} {
		if got := fmtElapsed(d); got != want {
			t.Errorf("fmtElapsed(%s) = %s, want %s", d, got, want)
		}
	}
}
