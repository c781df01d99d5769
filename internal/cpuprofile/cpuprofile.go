// Package cpuprofile writes a CPU profile of a whole command when
// LIFEOS_CPUPROFILE names a file: for whoever measures lifeos (go tool pprof
// merges the profiles of many runs).
package cpuprofile

import (
	"os"
	"runtime/pprof"
	"sync"
)

// stop ends the profile Start began, once.
var stop = func() {}

// Start starts profiling when LIFEOS_CPUPROFILE is set; the function it
// returns (Stop) writes the profile out. A file that cannot be created
// means no profile, not a failed command.
func Start() func() {
	name := os.Getenv("LIFEOS_CPUPROFILE")
	if name == "" {
		return Stop
	}
	f, err := os.Create(name)
	if err != nil {
		return Stop
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return Stop
	}
	stop = sync.OnceFunc(func() { pprof.StopCPUProfile(); f.Close() })
	return Stop
}

// Stop writes out the profile Start began, if any. A process that execs
// another must call it first: the profiling timer outlives exec, and its
// SIGPROF kills a program that has not installed a handler yet.
func Stop() { stop() }
