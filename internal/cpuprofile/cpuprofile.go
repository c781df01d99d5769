// Package cpuprofile writes a CPU profile of a whole command when
// LIFEOS_CPUPROFILE names a file, a profile of every allocation when
// LIFEOS_MEMPROFILE does, and an execution trace when LIFEOS_TRACE does:
// for whoever measures lifeos (go tool pprof merges the profiles of many
// runs; go tool trace shows which goroutine waited for what, and for how
// long a runnable one waited for a thread).
package cpuprofile

import (
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
)

// stop ends the profiles Start began, once.
var stop = func() {}

// Start starts profiling when LIFEOS_CPUPROFILE, LIFEOS_MEMPROFILE or
// LIFEOS_TRACE is set; the function it returns (Stop) writes the profiles
// out. A file that cannot be created means no profile, not a failed
// command.
func Start() func() {
	var stops []func()
	if name := os.Getenv("LIFEOS_MEMPROFILE"); name != "" {
		// Every allocation from here on, not a sample: on a VM where each
		// fresh page of heap costs microseconds, bytes are what to count.
		runtime.MemProfileRate = 1
		stops = append(stops, func() {
			if f, err := os.Create(name); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	// Streamed to the file named by env from now until Stop.
	stream := func(env string, start func(io.Writer) error, end func()) {
		name := os.Getenv(env)
		if name == "" {
			return
		}
		if f, err := os.Create(name); err == nil {
			if start(f) == nil {
				stops = append(stops, func() { end(); f.Close() })
			} else {
				f.Close()
			}
		}
	}
	stream("LIFEOS_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile)
	stream("LIFEOS_TRACE", trace.Start, trace.Stop)
	if len(stops) > 0 {
		stop = sync.OnceFunc(func() {
			for _, s := range stops {
				s()
			}
		})
	}
	return Stop
}

// Stop writes out the profiles Start began, if any. A process that execs
// another must call it first: the profiling timer outlives exec, and its
// SIGPROF kills a program that has not installed a handler yet.
func Stop() { stop() }
