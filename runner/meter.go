package runner

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// meter shows the progress of long steps (generation, scoring). On a
// terminal it keeps one status line at the bottom, redrawn at most every
// 100 ms and cleared before any other line is printed; elsewhere (CI logs,
// pipes) it prints a plain line at each quarter of the work, so logs stay
// readable.
type meter struct {
	mu      sync.Mutex
	out     io.Writer
	tty     bool
	active  map[string][2]int // step -> done, total
	shown   bool              // a status line is on screen
	drawn   time.Time
	quarter map[string]int // last quarter printed, in plain mode
}

// plainMin is the smallest batch whose progress is logged in plain mode:
// a few images finish before anyone reads a progress line.
const plainMin = 20

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newMeter(out io.Writer, tty bool) *meter {
	return &meter{out: out, tty: tty, active: map[string][2]int{}, quarter: map[string]int{}}
}

// report records that step has done of total units.
func (m *meter) report(step, unit string, done, total int) {
	if total <= 1 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if done >= total {
		delete(m.active, step)
	} else {
		m.active[step] = [2]int{done, total}
	}
	if !m.tty {
		if total < plainMin {
			return
		}
		q := done * 4 / total
		if q > m.quarter[step] && done < total {
			m.quarter[step] = q
			fmt.Fprintf(m.out, "  ...       %s  %d/%d %s\n", step, done, total, unit)
		}
		return
	}
	if time.Since(m.drawn) < 100*time.Millisecond && done < total {
		return
	}
	m.draw()
}

// draw writes the status line; the caller holds m.mu.
func (m *meter) draw() {
	m.drawn = time.Now()
	if len(m.active) == 0 {
		m.clear()
		return
	}
	steps := make([]string, 0, len(m.active))
	for s := range m.active {
		steps = append(steps, s)
	}
	sort.Strings(steps)
	var parts []string
	for _, s := range steps {
		p := m.active[s]
		const width = 20
		fill := p[0] * width / p[1]
		parts = append(parts, fmt.Sprintf("%s [%s%s] %d/%d", s, strings.Repeat("#", fill), strings.Repeat(".", width-fill), p[0], p[1]))
	}
	fmt.Fprintf(m.out, "\r\033[K  %s", strings.Join(parts, "  "))
	m.shown = true
}

// clear removes the status line; the caller holds m.mu.
func (m *meter) clear() {
	if m.shown {
		fmt.Fprint(m.out, "\r\033[K")
		m.shown = false
	}
}

// println prints a line above the status line.
func (m *meter) println(line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	fmt.Fprintln(m.out, line)
	if m.tty && len(m.active) > 0 {
		m.draw()
	}
}
