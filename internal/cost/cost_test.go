package cost

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestSessionStartStop(t *testing.T) {
	root := testdir.New(t)
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	if _, _, err := Stop(root, t0); !errors.Is(err, ErrNoSession) {
		t.Fatalf("stop without a session: %v", err)
	}
	if _, err := Start(root, "training", 0.69, t0); err != nil {
		t.Fatal(err)
	}
	var open *SessionOpenError
	if _, err := Start(root, "other", 1, t0); !errors.As(err, &open) || open.Open.Activity != "training" {
		t.Fatalf("a second start: %v", err)
	}
	s, e, err := Stop(root, t0.Add(90*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if s.Activity != "training" || e.Seconds != 5400 || math.Abs(e.Cost-1.035) > 1e-12 {
		t.Errorf("stopped %+v, logged %+v", s, e)
	}
	if _, err := os.Stat(filepath.Join(root, ".lifeos", "cost-session.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session file is left: %v", err)
	}
	entries, err := Read(root)
	if err != nil || len(entries) != 1 || !reflect.DeepEqual(entries[0], e) {
		t.Errorf("log = %+v, %v; want [%+v]", entries, err, e)
	}
}

func TestSummarize(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.Local) }
	entries := []Entry{
		{Time: day(1, 10), Activity: "generation", Seconds: 3600, Cost: 0.69},
		{Time: day(1, 12), Activity: "training", Seconds: 7200, Cost: 1.38},
		{Time: day(2, 9), Activity: "generation", Seconds: 10.6, Cost: 10.6 / 3600 * 0.69},
	}
	s, err := Summarize(entries, "activity", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Groups) != 2 || s.Groups[0].Key != "generation" || s.Groups[0].Entries != 2 || s.Total.Entries != 3 {
		t.Fatalf("by activity: %+v", s)
	}
	if math.Abs(s.Groups[0].Cost-(0.69+10.6/3600*0.69)) > 1e-12 {
		t.Errorf("full precision lost: %v", s.Groups[0].Cost)
	}
	s, _ = Summarize(entries, "day", day(2, 0))
	if len(s.Groups) != 1 || s.Groups[0].Key != "2026-11-02" || s.Total.Entries != 1 {
		t.Errorf("by day since the 2nd: %+v", s)
	}
	if _, err := Summarize(entries, "week", time.Time{}); err == nil {
		t.Error("by week was accepted")
	}
	if got := SpentOn(entries, day(1, 23)); math.Abs(got-2.07) > 1e-12 {
		t.Errorf("spent on the 1st: %v", got)
	}
	if m, ok := MeanSeconds(entries, "generation"); !ok || m != (3600+10.6)/2 {
		t.Errorf("mean generation: %v %v", m, ok)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.Local)
	for in, want := range map[string]time.Time{
		"":           {},
		"2026-11-01": time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local),
		"7d":         now.Add(-7 * 24 * time.Hour),
		"1.5d":       now.Add(-36 * time.Hour),
		"12h":        now.Add(-12 * time.Hour),
	} {
		if got, err := ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "xd", "2026-13-01"} {
		if _, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	root := testdir.New(t)
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.Local)
	lim := Limits{MaxIdle: 30 * time.Minute, DailyBudget: 2.5}
	st, err := Check(root, lim, time.Time{}, t0)
	if err != nil || len(st.Findings) != 0 || st.Session != nil {
		t.Fatalf("an empty workspace: %+v, %v", st, err)
	}
	if _, err := Append(root, Entry{Time: t0.Add(-time.Hour), Activity: "generation", Seconds: 3600, Rate: 1.5}); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(root, "training", 0.69, t0); err != nil {
		t.Fatal(err)
	}
	// 20 minutes in: neither idle nor over budget (1.5 + 0.23).
	if st, _ := Check(root, lim, time.Time{}, t0.Add(20*time.Minute)); len(st.Findings) != 0 {
		t.Errorf("at 20 min: %+v", st.Findings)
	}
	// 45 minutes in, a run 10 minutes ago: active.
	if st, _ := Check(root, lim, t0.Add(35*time.Minute), t0.Add(45*time.Minute)); len(st.Findings) != 0 {
		t.Errorf("a run 10 minutes ago is activity: %+v", st.Findings)
	}
	// 45 minutes in, no run: idle.
	st, _ = Check(root, lim, time.Time{}, t0.Add(45*time.Minute))
	if len(st.Findings) != 1 || st.Findings[0].Kind != "idle" || !strings.Contains(st.Findings[0].Message, "no lifeos activity for 45m0s") {
		t.Errorf("at 45 min: %+v", st.Findings)
	}
	// Two hours in: idle, and 1.5 + 1.38 over the budget of 2.5.
	st, _ = Check(root, lim, t0.Add(35*time.Minute), t0.Add(2*time.Hour))
	if len(st.Findings) != 2 || st.Findings[1].Kind != "budget" ||
		!strings.Contains(st.Findings[1].Message, "today's spend 1.50 + the open training session 1.38 = 2.88 is over policy.cost.daily_budget 2.50") {
		t.Errorf("at 2 h: %+v", st.Findings)
	}
	// Limits of 0 check nothing.
	if st, _ := Check(root, Limits{}, time.Time{}, t0.Add(10*time.Hour)); len(st.Findings) != 0 {
		t.Errorf("no limits: %+v", st.Findings)
	}
}
