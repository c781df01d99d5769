package temporalrun

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lifeos/lifeos/internal/robustio"
	"github.com/lifeos/lifeos/runner"
)

// folders are a worker's copies of run snapshots. A step takes a free copy
// of its snapshot (one a step of the same run left: Materialize then fixes
// only what differs, the outputs that step wrote) or makes another, so
// that a run's steps carried out one after another on a worker copy its
// workspace once, and steps carried out at once each have their own.
// Another is made from a free copy of the snapshot used last, when there
// is one: the next run of a pipeline differs from the last in a few files
// (a policy, a prompt), and its dataset is not copied again. The
// copies of snapshots no step has used among the last keepSnapshots are
// removed once free: a worker serving runs for weeks does not fill its
// disk with a copy of every workspace per step. A copy made while another
// of the same snapshot exists links its files (Materialize's like).
type folders struct {
	dir string

	mu   sync.Mutex
	free map[string][]string // snapshot -> free copies
	made map[string]int      // snapshot -> copies made (numbered from 0)
	busy map[string]int      // snapshot -> copies in use
	all  map[string][]string // snapshot -> its copies, free or not
	used []string            // snapshots, least recently used first
}

// keepSnapshots is how many snapshots' copies a worker keeps: the runs it
// serves at once, give or take.
const keepSnapshots = 8

func newFolders(dir string) *folders {
	return &folders{dir: dir, free: map[string][]string{}, made: map[string]int{}, busy: map[string]int{}, all: map[string][]string{}}
}

// take returns a copy of snapshot snap for one step to use alone, until
// give, and the other copies of it, to link from (the oldest first).
func (f *folders) take(snap string) (dir string, others []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used = append(slices.DeleteFunc(f.used, func(s string) bool { return s == snap }), snap)
	f.busy[snap]++
	dir = f.pick(snap)
	others = slices.DeleteFunc(slices.Clone(f.all[snap]), func(d string) bool { return d == dir })
	return dir, others
}

// pick returns a free copy of snap, or a new one (a free copy of the
// snapshot used most recently, moved, when there is one). f.mu is held.
func (f *folders) pick(snap string) string {
	if free := f.free[snap]; len(free) > 0 {
		f.free[snap] = free[:len(free)-1]
		return free[len(free)-1]
	}
	k := f.made[snap]
	f.made[snap]++
	dir := filepath.Join(f.dir, snap[:16], fmt.Sprint(k))
	for i := len(f.used) - 2; i >= 0; i-- { // the last is snap
		other := f.used[i]
		if free := f.free[other]; len(free) > 0 {
			// A failed move only means a copy made from nothing.
			moved := free[len(free)-1]
			if os.MkdirAll(filepath.Dir(dir), 0o777) == nil && os.Rename(moved, dir) == nil {
				f.free[other] = free[:len(free)-1]
				f.all[other] = slices.DeleteFunc(f.all[other], func(d string) bool { return d == moved })
				// The attic holds what the other snapshot's steps wrote;
				// emptied here, it never holds more than one snapshot's
				// outputs. Left over, it only costs disk.
				_ = robustio.RemoveAll(runner.AtticDir(dir))
			}
			break
		}
	}
	f.all[snap] = append(f.all[snap], dir)
	return dir
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
		delete(f.all, old)
	}
	f.mu.Unlock()
	for _, d := range gone {
		robustio.RemoveAll(d) // a copy left behind is only disk, found again by no one
	}
}
