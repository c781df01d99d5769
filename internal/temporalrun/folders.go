package temporalrun

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// folders are a worker's copies of run snapshots. A step takes a free copy
// of its snapshot (one a step of the same run left: Materialize then fixes
// only what differs, the outputs that step wrote) or makes another, so
// that a run's steps carried out one after another on a worker copy its
// workspace once, and steps carried out at once each have their own. The
// copies of snapshots no step has used among the last keepSnapshots are
// removed once free: a worker serving runs for weeks does not fill its
// disk with a copy of every workspace per step.
type folders struct {
	dir string

	mu   sync.Mutex
	free map[string][]string // snapshot -> free copies
	made map[string]int      // snapshot -> copies made (numbered from 0)
	busy map[string]int      // snapshot -> copies in use
	used []string            // snapshots, least recently used first
}

// keepSnapshots is how many snapshots' copies a worker keeps: the runs it
// serves at once, give or take.
const keepSnapshots = 8

func newFolders(dir string) *folders {
	return &folders{dir: dir, free: map[string][]string{}, made: map[string]int{}, busy: map[string]int{}}
}

// take returns a copy of snapshot snap for one step to use alone, until
// give.
func (f *folders) take(snap string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used = append(slices.DeleteFunc(f.used, func(s string) bool { return s == snap }), snap)
	f.busy[snap]++
	if free := f.free[snap]; len(free) > 0 {
		f.free[snap] = free[:len(free)-1]
		return free[len(free)-1]
	}
	k := f.made[snap]
	f.made[snap]++
	return filepath.Join(f.dir, snap[:16], fmt.Sprint(k))
}

// give returns a copy taken, and removes the copies of snapshots used
// longer ago than the last keepSnapshots that no step is using.
func (f *folders) give(snap, dir string) {
	f.mu.Lock()
	f.free[snap] = append(f.free[snap], dir)
	f.busy[snap]--
	var gone []string
	for len(f.used) > keepSnapshots && f.busy[f.used[0]] == 0 {
		old := f.used[0]
		f.used = f.used[1:]
		gone = append(gone, filepath.Join(f.dir, old[:16]))
		delete(f.free, old)
		delete(f.made, old)
		delete(f.busy, old)
	}
	f.mu.Unlock()
	for _, d := range gone {
		os.RemoveAll(d) // a copy left behind is only disk, found again by no one
	}
}
