package runner

import (
	"fmt"
	"time"

	"github.com/lifeos/lifeos/internal/cost"
)

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
	entries, err := cost.Read(e.plan.Root)
	if err != nil {
		return fmt.Errorf("cost log: %w", err)
	}
	spent := cost.SpentOn(entries, time.Now())
	rate := e.costRate(s.Cost)
	secs := s.Cost.Estimate.Seconds()
	basis := "cost.estimate"
	if secs == 0 {
		var ok bool
		if secs, ok = cost.MeanSeconds(entries, s.Cost.Activity); ok {
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
