package runner

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lifeos/lifeos/runner/cache"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// console is what a run prints while it runs, after GitHub Actions and
// docker compose: a start line per step that runs, the output of running
// steps streamed with the step as prefix, one result line per step, the
// summary. On a terminal, a live area below the lines (vbauerster/mpb)
// shows each running step's elapsed time, a bar with rate and ETA for a
// step that reports progress (foreach elements, generated images, scored
// images), and a footer "12/40 steps, 3 running". Elsewhere (CI logs,
// pipes) a running step gets a plain line at most every 10 seconds, and a
// silent one less and less often, so logs stay readable.
type console struct {
	out      io.Writer // lines, when there is no live area
	errOut   io.Writer // stderr, for printErr
	quiet    bool      // only failures and the summary
	color    bool
	terminal bool
	idWidth  int

	live   *mpb.Progress // nil without a terminal
	footer *mpb.Bar

	mu      sync.Mutex
	running map[string]*liveStep
	order   int // bars by start order
	total   int // steps in the run
	ended   int // steps finished (whatever their status)
	now     func() time.Time
	every   time.Duration // a plain progress line per step at most this often
	tickGap time.Duration // how often the ticker looks; 0: no ticker (tests tick)
	stop    chan struct{} // the ticker's, once a step runs without a terminal
	stopped sync.WaitGroup
	closed  bool
}

// liveStep is a step that is running.
type liveStep struct {
	id       string
	started  time.Time
	bar      *mpb.Bar
	barTotal int // 0 while bar is the spinner line
	prio     int
	unit     string
	done     int
	total    int
	said     time.Time     // last plain line about it (or its start)
	gap      time.Duration // before the next plain line, when nothing moved
	saidAt   int           // done when last said
	lastOut  time.Time     // last line of output it streamed
}

// consoleOptions say how a run prints.
type consoleOptions struct {
	terminal, color, quiet bool
	steps, idWidth         int
}

func newConsole(out, errOut io.Writer, o consoleOptions) *console {
	return &console{out: out, errOut: errOut, quiet: o.quiet, color: o.color, idWidth: o.idWidth,
		terminal: o.terminal, running: map[string]*liveStep{}, total: o.steps, now: time.Now, every: 10 * time.Second, tickGap: time.Second}
}

// header prints the run's first line and starts the live area; close
// ends it.
func (c *console) header(line string) {
	if c.quiet {
		return
	}
	c.print(line)
	if c.terminal {
		c.live = mpb.New(mpb.WithOutput(c.out), mpb.WithRefreshRate(120*time.Millisecond), mpb.ForceTTY(), mpb.WithAutoRefresh())
		c.footer = c.live.New(0, mpb.NopStyle(), mpb.BarPriority(math.MaxInt),
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return c.footerText() })))
	}
}

// startTicker starts, without a terminal, the ticker of plain progress
// lines, when the first step runs: a run that only finds its steps
// cached has nothing to say while it goes, and should not pay for the
// goroutine, or for waiting for it to end. The caller holds c.mu.
func (c *console) startTicker() {
	if c.terminal || c.quiet || c.stop != nil || c.closed || c.tickGap == 0 {
		return
	}
	stop := make(chan struct{})
	c.stop = stop
	c.stopped.Add(1)
	go func() {
		defer c.stopped.Done()
		t := time.NewTicker(c.tickGap)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				c.tick()
			}
		}
	}()
}

// footerText is the live area's last line.
func (c *console) footerText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paint(faint, fmt.Sprintf("  %d/%d steps, %d running", c.ended, c.total, len(c.running)))
}

// SGR codes of the few colours used.
const (
	faint   = "2"
	green   = "32"
	yellow  = "33"
	cyan    = "36"
	boldRed = "1;31"
)

// streamColors tell concurrent steps' output apart, as docker compose does.
var streamColors = []string{"36", "35", "34", "33", "32", "96", "95", "94"}

func (c *console) paint(code, s string) string {
	if !c.color || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// print writes a line above the live area (or plainly).
func (c *console) print(line string) { c.printTo(c.out, line) }

// printErr writes a line of stderr: above the live area while there is
// one (stdout and stderr are one screen then), else to stderr.
func (c *console) printErr(line string) { c.printTo(c.errOut, strings.TrimSuffix(line, "\n")) }

func (c *console) printTo(w io.Writer, line string) {
	if c.live != nil {
		// After the live area ends (an interrupted run still reporting),
		// lines go straight out.
		if _, err := fmt.Fprintln(c.live, line); err == nil {
			return
		}
	}
	fmt.Fprintln(w, line)
}

// stepLine prints a step's result line; label is its status word.
func (c *console) stepLine(label, id, detail string) {
	failed := label == "FAIL" || label == "BLOCKED"
	if c.quiet && !failed {
		return
	}
	code := ""
	switch label {
	case "FAIL":
		code = boldRed
	case "BLOCKED", "skip":
		code = yellow
	case "ok":
		code = green
	case StatusCached, labelUpToDate:
		code = cyan
	}
	line := "  " + c.paint(code, fmt.Sprintf("%-10s", label)) + " " + fmt.Sprintf("%-*s", c.idWidth, id)
	if detail != "" {
		line += "  " + detail
	}
	c.print(strings.TrimRight(line, " "))
}

// start announces that a step runs (it was not cached); of a foreach,
// done of its elements are finished (cached ones) out of elements, shown
// as a bar.
func (c *console) start(id string, done, elements int) {
	c.mu.Lock()
	now := c.now()
	ls := &liveStep{id: id, started: now, said: now, gap: c.every, prio: c.order}
	c.order++
	c.running[id] = ls
	if c.live != nil {
		ls.bar = c.spinner(ls)
	}
	c.startTicker()
	c.mu.Unlock()
	if !c.quiet {
		c.print("  " + c.paint(faint, fmt.Sprintf("%-10s %s", "start", id)))
	}
	if elements > 1 {
		c.progress(id, "elements", done, elements)
	}
}

// spinner is a running step's live line before it reports progress: its
// name and elapsed time. The caller holds c.mu.
func (c *console) spinner(ls *liveStep) *mpb.Bar {
	return c.live.New(0, mpb.NopStyle(), mpb.BarPriority(ls.prio),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("  %-10s %-*s", "running", c.idWidth, ls.id)),
			decor.Any(func(decor.Statistics) string { return "  " + fmtElapsed(c.now().Sub(ls.started)) })))
}

// progress records that step id has done of total units.
func (c *console) progress(id, unit string, done, total int) {
	if total <= 1 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ls := c.running[id]
	if ls == nil {
		return // a step that reports before start (none today) or after end
	}
	ls.unit, ls.done, ls.total = unit, done, total
	if c.live == nil {
		return
	}
	switch {
	case ls.barTotal == 0:
		old := ls.bar
		ls.bar = c.live.New(int64(total), mpb.BarStyle().Lbound("[").Rbound("]").Filler("#").Tip("#").Padding("."),
			mpb.BarPriority(ls.prio), mpb.BarWidth(24), mpb.BarFillerTrim(),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("  %-10s %-*s", "running", c.idWidth, ls.id)),
				decor.Any(func(decor.Statistics) string { return fmt.Sprintf("  %-5s ", fmtElapsed(c.now().Sub(ls.started))) })),
			mpb.AppendDecorators(
				decor.Any(func(s decor.Statistics) string { return fmt.Sprintf(" %d/%d %s", s.Current, s.Total, unit) }),
				decor.AverageSpeed(0, "  %.1f/s"),
				decor.Name("  ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
		if old != nil {
			old.Abort(true) // the spinner line
		}
	case ls.barTotal != total:
		ls.bar.SetTotal(int64(total), false)
	}
	ls.barTotal = total
	// The bar never completes on its own: end removes it, so the result
	// line, not a full bar, is the last word.
	ls.bar.SetCurrent(int64(min(done, total-1)))
}

// end removes a finished step from the live area; the caller prints its
// result line.
func (c *console) end(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended++
	if ls := c.running[id]; ls != nil {
		if ls.bar != nil {
			ls.bar.Abort(true)
		}
		delete(c.running, id)
	}
}

// tick prints, without a terminal, a line for each running step that has
// been quiet for a while: its progress at most every 10 s when it moved,
// otherwise "running 40s", at doubling gaps up to 5 minutes, so an hour of
// training is a dozen lines, not hundreds.
func (c *console) tick() {
	c.mu.Lock()
	now := c.now()
	var lines []string
	ids := make([]string, 0, len(c.running))
	for id := range c.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ls := c.running[id]
		last := ls.said
		if ls.lastOut.After(last) {
			last = ls.lastOut
		}
		quietFor := now.Sub(last)
		moved := ls.total > 0 && ls.done != ls.saidAt
		switch {
		case moved && quietFor >= c.every:
			lines = append(lines, fmt.Sprintf("  %-10s %-*s  %s", "...", c.idWidth, id, ls.rate(now)))
			ls.said, ls.saidAt, ls.gap = now, ls.done, c.every
		case !moved && quietFor >= ls.gap:
			detail := "running " + fmtElapsed(now.Sub(ls.started))
			if ls.total > 0 {
				detail += fmt.Sprintf(", %d/%d %s", ls.done, ls.total, ls.unit)
			}
			lines = append(lines, fmt.Sprintf("  %-10s %-*s  %s", "...", c.idWidth, id, detail))
			ls.said, ls.gap = now, min(2*ls.gap, 5*time.Minute)
		}
	}
	c.mu.Unlock()
	for _, l := range lines {
		c.print(c.paint(faint, l))
	}
}

// rate describes progress: "340/1000 images, 12.1/s, ETA 54s".
func (ls *liveStep) rate(now time.Time) string {
	s := fmt.Sprintf("%d/%d %s", ls.done, ls.total, ls.unit)
	el := now.Sub(ls.started).Seconds()
	if ls.done == 0 || el <= 0 {
		return s
	}
	r := float64(ls.done) / el
	eta := time.Duration(float64(ls.total-ls.done) / r * float64(time.Second))
	return fmt.Sprintf("%s, %.1f/s, ETA %s", s, r, fmtElapsed(eta))
}

// fmtElapsed is a duration as a person reads it on a live line: 4s, 1m20s,
// 2h05m.
func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// stream returns the writer for a running step's output: whole lines, each
// prefixed with the step (and item, for a foreach element), above the live
// area. It is nil when the run is quiet.
func (c *console) stream(id, item string, colorIndex int) *PrefixWriter {
	if c.quiet {
		return nil
	}
	label := id
	if item != "" {
		label += "[" + shorten(item, 32) + "]"
	}
	prefix := "  " + c.paint(streamColors[colorIndex%len(streamColors)], label+" |") + " "
	return &PrefixWriter{w: lineFunc(func(line string) {
		c.mu.Lock()
		if ls := c.running[id]; ls != nil {
			ls.lastOut = c.now()
		}
		c.mu.Unlock()
		c.print(strings.TrimSuffix(line, "\n"))
	}), prefix: prefix}
}

// lineFunc is a writer of whole lines (PrefixWriter writes one per call).
type lineFunc func(string)

func (f lineFunc) Write(b []byte) (int, error) {
	f(string(b))
	return len(b), nil
}

// shorten keeps the end of a long item label (file names differ there).
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

// close ends the live area; lines printed after it go straight out.
func (c *console) close() {
	c.mu.Lock()
	stop := c.stop
	c.stop, c.closed = nil, true
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		c.stopped.Wait()
	}
	if c.live != nil {
		defer func() { c.live = nil }()
		c.mu.Lock()
		for _, ls := range c.running {
			if ls.bar != nil {
				ls.bar.Abort(true)
			}
		}
		c.mu.Unlock()
		c.footer.Abort(true)
		c.live.Wait()
	}
}

// colorWanted decides colour as users of other tools expect: --color
// always or never wins; auto means a terminal, no NO_COLOR (any value) and
// a TERM other than dumb.
func colorWanted(mode string, terminal bool) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	return terminal && os.Getenv("TERM") != "dumb"
}

// replayLogs prints, for run -v, the logs a cached step's elements printed
// when they ran, as if streamed.
func (e *engine) replayLogs(n *node) {
	if e.cache == nil {
		return
	}
	for _, el := range n.elems {
		if el.status != StatusCached || el.action == (cache.ActionID{}) {
			continue
		}
		data, err := e.cache.Log(el.action)
		if err != nil || len(data) == 0 {
			continue
		}
		item := ""
		if el.foreach {
			item = el.label
		}
		if w := e.con.stream(n.s.ID, item, n.index); w != nil {
			w.Write(data)
			w.Flush()
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool { return IsTerminal(w) }

// IsTerminal reports whether v (standard input, say) is a file open on a
// terminal: one that answers the terminal's own request (a console on
// Windows), as golang.org/x/term asks. Being a character device is not
// enough: /dev/null is one, and `lifeos run p.yaml > /dev/null` would
// draw the live display, cursor moves and colours, for nobody.
func IsTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	// Through SyscallConn, not Fd: Fd would put the file in blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	if rc.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) }) != nil {
		return false
	}
	return tty
}
