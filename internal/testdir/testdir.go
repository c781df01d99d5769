// Package testdir gives tests a temporary directory that Wine can remove:
// testing's TempDir fails every test at cleanup under Wine 8, whose file
// system lacks the delete os.RemoveAll uses on Windows (.ci/wine/run).
package testdir

import (
	"os"
	"testing"

	"github.com/lifeos/lifeos/internal/robustio"
)

// New returns a new temporary directory removed when tb ends: tb.TempDir,
// except under Wine (LIFEOS_UNDER_WINE=1), where it is removed with
// robustio.RemoveAll's file-by-file fallback.
func New(tb testing.TB) string {
	tb.Helper()
	if os.Getenv("LIFEOS_UNDER_WINE") == "" {
		return tb.TempDir()
	}
	dir, err := os.MkdirTemp("", "lifeos-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := robustio.RemoveAll(dir); err != nil {
			tb.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}
