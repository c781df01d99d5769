package main

import (
	"runtime/debug"
	"testing"
)

// lifeos collects at GOGC=400 under a soft limit unless GOGC or GOMEMLIMIT
// is set: then the user's setting decides and lifeos changes nothing.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	tuneGC()
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("GOGC %d, want 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != softMemoryLimit {
		t.Errorf("memory limit %d, want %d", got, softMemoryLimit)
	}

	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(1 << 40)
	tuneGC()
	if got := debug.SetGCPercent(50); got != 50 {
		t.Errorf("with GOGC=50 set, GOGC became %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("with GOGC set, the memory limit became %d", got)
	}
}
