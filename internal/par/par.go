// Package par runs a function over a list on a few goroutines: the
// uploads, downloads and copies whose time is mostly a round trip.
package par

import (
	"context"
	"sync"
)

// Each calls fn for every item of list, n at a time, and returns the
// first error (or ctx's, when it ended the work early). Items not yet
// started when ctx is done are not started.
func Each[T any](ctx context.Context, n int, list []T, fn func(T) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	work := make(chan T)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := fn(it); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range list {
		if ctx.Err() != nil {
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
