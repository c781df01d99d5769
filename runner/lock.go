package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/lifeos/lifeos/internal/atomicfile"
)

// One run at a time per workspace: two runs writing the same declared
// outputs, run records and key state would tear each other's files. The
// lock is an advisory lock on .lifeos/lock (flock on Unix, LockFileEx on
// Windows, through gofrs/flock): the kernel drops it when its process dies,
// so a killed run never leaves a stale lock behind. Read-only commands
// (plan, runs, history, cache stats) do not take it. Two workspaces that
// share a cache (LIFEOS_CACHE) need no lock between them: cache writes are
// atomic and content-addressed.

// lockHolder says who holds the lock, in .lifeos/lock.holder, so that a
// waiting run can say whom it waits for.
type lockHolder struct {
	Run      string    `json:"run"`
	PID      int       `json:"pid"`
	Pipeline string    `json:"pipeline"`
	Started  time.Time `json:"started"`
}

// ErrBusy is returned by a run with NoWait when another run holds the
// workspace.
var ErrBusy = errors.New("workspace busy")

// lockPoll is how often a waiting run tries the lock again. Waiting is
// rare and human-scale; a tenth of a second is not noticed.
const lockPoll = 100 * time.Millisecond

// lockWorkspace takes the run lock of the workspace at root. When another
// run holds it, it says so on say and waits (until ctx is done), or with
// noWait returns an error wrapping ErrBusy at once.
func lockWorkspace(ctx context.Context, root string, me lockHolder, noWait bool, say io.Writer) (unlock func(), err error) {
	dir := filepath.Join(root, ".lifeos")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("lock workspace: %w", err)
	}
	fl := flock.New(filepath.Join(dir, "lock"))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock workspace: %w", err)
	}
	if !ok {
		who := describeHolder(readHolder(dir), time.Now())
		if noWait {
			return nil, fmt.Errorf("%w: %s holds %s (--no-wait)", ErrBusy, who, filepath.Join(".lifeos", "lock"))
		}
		fmt.Fprintf(say, "lifeos: waiting for %s\n", who)
		if ok, err = fl.TryLockContext(ctx, lockPoll); !ok {
			if err == nil || ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("lock workspace: %w", err)
		}
	}
	holder := filepath.Join(dir, "lock.holder")
	if b, err := json.Marshal(me); err == nil {
		// Only informative: a run that cannot say who it is still runs.
		// Only a message reads it, and a crash releases the lock anyway:
		// not worth an fsync on every run.
		_ = atomicfile.WriteFileUnsynced(holder, append(b, '\n'), 0o666)
	}
	return func() {
		os.Remove(holder)
		fl.Unlock()
	}, nil
}

// readHolder reads who holds the lock; zero when unknown (the holder has
// not written it yet).
func readHolder(dir string) lockHolder {
	var h lockHolder
	if b, err := os.ReadFile(filepath.Join(dir, "lock.holder")); err == nil {
		json.Unmarshal(b, &h)
	}
	return h
}

func describeHolder(h lockHolder, now time.Time) string {
	if h.Run == "" {
		return "another run of this workspace"
	}
	return fmt.Sprintf("run %s of %s (pid %d), started %s ago", h.Run, h.Pipeline, h.PID,
		now.Sub(h.Started).Round(time.Second))
}
