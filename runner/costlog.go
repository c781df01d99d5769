package runner

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeos/lifeos/steps"
)

// The cost log: one JSON line per billable stretch of GPU time, appended
// with one write and an fsync (steps.AppendJSONLine), so a crash never
// leaves a torn line in the middle; readers skip a torn last line.

// CostEntry is one line of the cost log.
type CostEntry struct {
	Time     time.Time `json:"time"` // when the work ended
	Activity string    `json:"activity"`
	Seconds  float64   `json:"seconds"`
	Rate     float64   `json:"rate_per_hour"`
	Cost     float64   `json:"cost"`
	RunID    string    `json:"run_id,omitempty"`
	Step     string    `json:"step,omitempty"`
}

// CostLog is the path of a workspace's cost log.
func CostLog(root string) string { return filepath.Join(root, ".lifeos", "cost.jsonl") }

// AppendCost adds an entry to the cost log. Costs keep full precision
// (ten seconds of generation cost less than a cent, and a thousand of them
// do not); they are rounded only when printed.
func AppendCost(root string, e CostEntry) error {
	e.Cost = e.Seconds / 3600 * e.Rate
	return steps.AppendJSONLine(CostLog(root), e)
}

// ReadCosts returns the cost log's entries; a missing log is empty.
func ReadCosts(root string) ([]CostEntry, error) {
	f, err := os.Open(CostLog(root))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []CostEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e CostEntry
		if line := strings.TrimSpace(sc.Text()); line != "" && json.Unmarshal([]byte(line), &e) == nil && e.Activity != "" {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// spentOn sums the entries of the day of t (local time).
func spentOn(entries []CostEntry, t time.Time) float64 {
	y, m, d := t.Date()
	var sum float64
	for _, e := range entries {
		if ey, em, ed := e.Time.Local().Date(); ey == y && em == m && ed == d {
			sum += e.Cost
		}
	}
	return sum
}

// meanSeconds is an activity's mean duration in the log.
func meanSeconds(entries []CostEntry, activity string) (float64, bool) {
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

// costRate is a step's hourly rate.
func (e *engine) costRate(c *CostSpec) float64 {
	if c.Rate != nil {
		return *c.Rate
	}
	v, _ := e.plan.Policy.Get("cost.rate_per_hour")
	r, _ := v.(float64)
	if i, ok := v.(int); ok {
		r = float64(i)
	}
	return r
}

// checkBudget refuses a costed step that would take today's spending over
// policy.cost.daily_budget, estimating its cost from cost.estimate or the
// activity's past mean duration.
func (e *engine) checkBudget(s *Step) error {
	v, _ := e.plan.Policy.Get("cost.daily_budget")
	budget, _ := v.(float64)
	if i, ok := v.(int); ok {
		budget = float64(i)
	}
	if budget <= 0 {
		return nil
	}
	entries, err := ReadCosts(e.plan.Root)
	if err != nil {
		return fmt.Errorf("cost log: %w", err)
	}
	spent := spentOn(entries, time.Now())
	rate := e.costRate(s.Cost)
	secs := s.Cost.Estimate.Seconds()
	basis := "cost.estimate"
	if secs == 0 {
		var ok bool
		if secs, ok = meanSeconds(entries, s.Cost.Activity); ok {
			basis = fmt.Sprintf("the mean of past %s runs", s.Cost.Activity)
		} else {
			basis = "no past runs"
		}
	}
	estimate := secs / 3600 * rate
	if spent+estimate > budget {
		return fmt.Errorf("over the daily budget: spent %.2f today, %s would cost about %.2f (%s, %.0f s at %.2f/h), budget %.2f (--set cost.daily_budget=... raises it for one run)",
			spent, s.Cost.Activity, estimate, basis, secs, rate, budget)
	}
	return nil
}
