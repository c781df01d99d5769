package runner

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeos/lifeos/internal/testdir"
)

// The holder is written into the lock file, whole, and gone once the lock
// is released: a waiting run never names a run that has finished, nor
// reads the tail of a longer holder before it.
func TestLockHolderInLockFile(t *testing.T) {
	root := testdir.New(t)
	path := filepath.Join(root, ".lifeos", "lock")
	started := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	long := lockHolder{Run: "20261130-120000-aaaaaa", PID: 1, Pipeline: "pipelines/" + strings.Repeat("long", 50) + ".yaml", Started: started}
	short := lockHolder{Run: "20261130-120001-bbbbbb", PID: 2, Pipeline: "p.yaml", Started: started}
	for _, me := range []lockHolder{long, short} {
		unlock, err := lockWorkspace(context.Background(), root, me, true, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := readHolder(path); !got.Started.Equal(me.Started) || got.Run != me.Run || got.PID != me.PID || got.Pipeline != me.Pipeline {
			t.Errorf("holder while locked = %+v, want %+v", got, me)
		}
		unlock()
		if got := readHolder(path); got.Run != "" {
			t.Errorf("holder after unlock = %+v, want none", got)
		}
	}
}
