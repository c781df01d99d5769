package par

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestEachRunsEveryItemAtMostNAtOnce(t *testing.T) {
	var running, most, sum atomic.Int64
	list := make([]int, 100)
	for i := range list {
		list[i] = i
	}
	err := Each(context.Background(), 4, list, func(i int) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		sum.Add(int64(i))
		running.Add(-1)
		return nil
	})
	if err != nil || sum.Load() != 4950 || most.Load() > 4 {
		t.Fatalf("err %v, sum %d, at most %d at once", err, sum.Load(), most.Load())
	}
}

func TestEachReturnsTheFirstErrorAndStopsWhenCancelled(t *testing.T) {
	boom := errors.New("boom")
	if err := Each(context.Background(), 2, []int{1, 2, 3}, func(i int) error {
		if i == 2 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Errorf("err %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int64
	err := Each(ctx, 2, []int{1, 2, 3}, func(int) error { calls.Add(1); return nil })
	if !errors.Is(err, context.Canceled) || calls.Load() != 0 {
		t.Errorf("cancelled: err %v, %d calls", err, calls.Load())
	}
}

// For returns the error of the lowest failing index, whichever failed
// first, and starts nothing once a call has failed.
func TestForStopsAtTheFirstFailure(t *testing.T) {
	var calls atomic.Int64
	nineFailed := make(chan struct{})
	err := For(context.Background(), 1000, 2, func(i int) error {
		calls.Add(1)
		switch i {
		case 5: // fails after 9 has
			<-nineFailed
			return fmt.Errorf("item %d", i)
		case 9:
			close(nineFailed)
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "item 5" {
		t.Errorf("err %v, want item 5", err)
	}
	if n := calls.Load(); n != 10 {
		t.Errorf("%d calls, want 10 (none after index 9 failed)", n)
	}
}

// One job, or one item, runs in the caller's goroutine with the same
// contract: every item in order, stopping at the first failure.
func TestForInOrderWithOneJob(t *testing.T) {
	var got []int
	err := For(context.Background(), 5, 1, func(i int) error {
		got = append(got, i)
		if i == 3 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "item 3" || fmt.Sprint(got) != "[0 1 2 3]" {
		t.Errorf("err %v, ran %v", err, got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := For(ctx, 1, 4, func(int) error { t.Error("called after cancel"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
