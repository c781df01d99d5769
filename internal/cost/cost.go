// Package cost keeps a workspace's GPU spending: the cost log (one JSON
// line per billable stretch of GPU time, from costed steps and manual
// sessions), the open manual session, and the sums that reports and the
// daily budget read.
package cost

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lifeos/lifeos/internal/atomicfile"
)

// Entry is one line of the cost log.
type Entry struct {
	Time     time.Time `json:"time"` // when the work ended
	Activity string    `json:"activity"`
	Seconds  float64   `json:"seconds"`
	Rate     float64   `json:"rate_per_hour"`
	Cost     float64   `json:"cost"`
	RunID    string    `json:"run_id,omitempty"`
	Step     string    `json:"step,omitempty"`
	// GPUSeconds is the time each server spent executing the step's
	// prompts, by server URL (credentials hidden): what the GPU did, next
	// to the wall time that is billed.
	GPUSeconds map[string]float64 `json:"gpu_seconds,omitempty"`
}

// Log is the path of a workspace's cost log.
func Log(root string) string { return filepath.Join(root, ".lifeos", "cost.jsonl") }

// Append adds an entry to the log, its cost computed from its seconds and
// rate, with one write and an fsync (atomicfile.AppendJSONLine), so a crash
// never leaves a torn line in the middle; Read skips a torn last line.
// Costs keep full precision (ten seconds of generation cost less than a
// cent, and a thousand of them do not); they are rounded only when printed.
func Append(root string, e Entry) (Entry, error) {
	e.Cost = e.Seconds / 3600 * e.Rate
	return e, atomicfile.AppendJSONLine(Log(root), e)
}

// Read returns the log's entries; a missing log is empty.
func Read(root string) ([]Entry, error) {
	f, err := os.Open(Log(root))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		if line := strings.TrimSpace(sc.Text()); line != "" && json.Unmarshal([]byte(line), &e) == nil && e.Activity != "" {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// SpentOn sums the entries of the day of t (local time).
func SpentOn(entries []Entry, t time.Time) float64 {
	y, m, d := t.Date()
	var sum float64
	for _, e := range entries {
		if ey, em, ed := e.Time.Local().Date(); ey == y && em == m && ed == d {
			sum += e.Cost
		}
	}
	return sum
}

// MeanSeconds is an activity's mean duration in the log.
func MeanSeconds(entries []Entry, activity string) (float64, bool) {
	var sum float64
	n := 0
	for _, e := range entries {
		if e.Activity == activity {
			sum += e.Seconds
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// Row is one group of a Summary, or its total.
type Row struct {
	Key   string  `json:"key"`
	Hours float64 `json:"hours"`
	Cost  float64 `json:"cost"`
	// GPUHours is what the servers spent executing prompts (from
	// generation steps), within Hours.
	GPUHours float64 `json:"gpu_hours"`
	Entries  int     `json:"entries"`
}

// Summary is the log summed by activity or by day.
type Summary struct {
	By     string `json:"by"`
	Groups []Row  `json:"groups"`
	Total  Row    `json:"total"`
}

// Summarize sums the entries from `from` on, grouped by "activity",
// "day" (local date) or "server" (the generation servers an entry used:
// an entry that used two counts in both rows, and once in the total),
// groups sorted by key.
func Summarize(entries []Entry, by string, from time.Time) (Summary, error) {
	if by != "activity" && by != "day" && by != "server" {
		return Summary{}, fmt.Errorf("group by %q: use activity, day or server", by)
	}
	groups := map[string]*Row{}
	s := Summary{By: by, Groups: []Row{}, Total: Row{Key: "total"}}
	add := func(r *Row, e Entry, gpu float64) {
		r.Hours += e.Seconds / 3600
		r.Cost += e.Cost
		r.GPUHours += gpu / 3600
		r.Entries++
	}
	row := func(key string) *Row {
		g := groups[key]
		if g == nil {
			g = &Row{Key: key}
			groups[key] = g
		}
		return g
	}
	for _, e := range entries {
		if e.Time.Before(from) {
			continue
		}
		var gpu float64
		for _, secs := range e.GPUSeconds {
			gpu += secs
		}
		add(&s.Total, e, gpu)
		switch by {
		case "activity":
			add(row(e.Activity), e, gpu)
		case "day":
			add(row(e.Time.Local().Format(time.DateOnly)), e, gpu)
		case "server":
			for server, secs := range e.GPUSeconds {
				add(row(server), e, secs)
			}
		}
	}
	for _, g := range groups {
		s.Groups = append(s.Groups, *g)
	}
	sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].Key < s.Groups[j].Key })
	return s, nil
}

// ParseSince reads a date (2026-11-01, local) or an age (7d, 12h) before
// now; "" is the beginning of time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	bad := errors.New("want a date (2026-11-01) or an age (7d, 12h)")
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil {
			return time.Time{}, bad
		}
		return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, bad
	}
	return now.Add(-d), nil
}

// Session is an open stretch of manually tracked GPU time (lifeos cost
// start ... stop), one per workspace.
type Session struct {
	Activity string    `json:"activity"`
	Rate     float64   `json:"rate_per_hour"`
	Started  time.Time `json:"started"`
}

func sessionFile(root string) string { return filepath.Join(root, ".lifeos", "cost-session.json") }

// ErrNoSession is Stop's error when no session is open.
var ErrNoSession = errors.New("no cost session is open")

// SessionOpenError is Start's error when a session is open already.
type SessionOpenError struct{ Open Session }

func (e *SessionOpenError) Error() string {
	return fmt.Sprintf("a session for %s is open since %s", e.Open.Activity, e.Open.Started.Local().Format(time.DateTime))
}

// Start opens a session. Of two concurrent starts, one wins (O_EXCL); the
// session file is synced, so a crash does not lose the start time.
func Start(root, activity string, rate float64, now time.Time) (Session, error) {
	name := sessionFile(root)
	if old, err := readSession(name); err == nil {
		return Session{}, &SessionOpenError{old}
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o777); err != nil {
		return Session{}, err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		if old, rerr := readSession(name); rerr == nil {
			return Session{}, &SessionOpenError{old}
		}
		return Session{}, fmt.Errorf("cost session: %w", err)
	}
	s := Session{Activity: activity, Rate: rate, Started: now.UTC()}
	err = json.NewEncoder(f).Encode(s)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return Session{}, fmt.Errorf("cost session: %w", err)
	}
	return s, nil
}

// Stop closes the open session and logs its cost.
func Stop(root string, now time.Time) (Session, Entry, error) {
	s, err := readSession(sessionFile(root))
	if errors.Is(err, fs.ErrNotExist) {
		return s, Entry{}, ErrNoSession
	}
	if err != nil {
		return s, Entry{}, err
	}
	e, err := Append(root, Entry{Time: now.UTC(), Activity: s.Activity, Seconds: now.Sub(s.Started).Seconds(), Rate: s.Rate})
	if err != nil {
		return s, e, err
	}
	return s, e, os.Remove(sessionFile(root))
}

func readSession(name string) (Session, error) {
	var s Session
	data, err := os.ReadFile(name)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// OpenSession returns the open session, if there is one.
func OpenSession(root string) (Session, bool, error) {
	s, err := readSession(sessionFile(root))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	return s, err == nil, err
}

// Limits are what Check holds spending to.
type Limits struct {
	// MaxIdle is how long an open session may go without lifeos activity
	// (a run started or ended); 0 turns the check off.
	MaxIdle time.Duration
	// DailyBudget caps today's spend plus the open session's accrued cost;
	// 0 means no limit.
	DailyBudget float64
}

// Finding is one thing Check found wrong.
type Finding struct {
	Kind    string `json:"kind"` // "idle" or "budget"
	Message string `json:"message"`
}

// Status is what Check saw.
type Status struct {
	Session      *Session  `json:"session,omitempty"` // the open session
	Accrued      float64   `json:"accrued"`           // its cost so far
	SpentToday   float64   `json:"spent_today"`       // the cost log's, today
	LastActivity time.Time `json:"last_activity,omitzero"`
	Findings     []Finding `json:"findings"`
}

// Check looks for the two ways GPU money leaks: a session left open on an
// idle pod (no activity, run or session start, for longer than
// MaxIdle), and today's spend plus the open session's accrued cost over the
// budget. lastRun is when the workspace's newest run started or ended
// (zero if none).
func Check(root string, lim Limits, lastRun, now time.Time) (Status, error) {
	st := Status{Findings: []Finding{}}
	entries, err := Read(root)
	if err != nil {
		return st, err
	}
	st.SpentToday = SpentOn(entries, now)
	s, open, err := OpenSession(root)
	if err != nil {
		return st, err
	}
	if open {
		st.Session = &s
		st.Accrued = now.Sub(s.Started).Hours() * s.Rate
		st.LastActivity = s.Started
		if lastRun.After(st.LastActivity) {
			st.LastActivity = lastRun
		}
		if idle := now.Sub(st.LastActivity); lim.MaxIdle > 0 && idle > lim.MaxIdle {
			st.Findings = append(st.Findings, Finding{"idle", fmt.Sprintf(
				"the %s session has been open for %s with no lifeos activity for %s (policy.cost.max_idle %s), accruing %.2f/h: lifeos cost stop, and stop the pod",
				s.Activity, round(now.Sub(s.Started)), round(idle), lim.MaxIdle, s.Rate)})
		}
	} else if !lastRun.IsZero() {
		st.LastActivity = lastRun
	}
	if total := st.SpentToday + st.Accrued; lim.DailyBudget > 0 && total > lim.DailyBudget {
		msg := fmt.Sprintf("today's spend %.2f", st.SpentToday)
		if open {
			msg += fmt.Sprintf(" + the open %s session %.2f", s.Activity, st.Accrued)
		}
		st.Findings = append(st.Findings, Finding{"budget", fmt.Sprintf("%s = %.2f is over policy.cost.daily_budget %.2f", msg, total, lim.DailyBudget)})
	}
	return st, nil
}

func round(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}
