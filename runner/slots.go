package runner

import "context"

// Slots bounds how many elements run at once across the runs that share
// it. A worker carries out several steps at once, each run with Jobs
// workers: without a bound shared by them, two steps on two CPUs ran
// four commands at once.
type Slots struct{ c chan struct{} }

// NewSlots returns Slots for n elements at once (at least one).
func NewSlots(n int) *Slots { return &Slots{c: make(chan struct{}, max(n, 1))} }

// take waits for a slot, and reports false when ctx ends first.
func (s *Slots) take(ctx context.Context) bool {
	select {
	case s.c <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Slots) give() { <-s.c }
