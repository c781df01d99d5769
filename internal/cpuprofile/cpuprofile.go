// Package cpuprofile writes a CPU profile of a whole command when
// LIFEOS_CPUPROFILE names a file: for whoever measures lifeos (go tool pprof
// merges the profiles of many runs).
package cpuprofile

import (
	"os"
	"runtime/pprof"
)

// Start starts profiling when LIFEOS_CPUPROFILE is set; stop writes the
// profile out. A file that cannot be created means no profile, not a
// failed command.
func Start() (stop func()) {
	name := os.Getenv("LIFEOS_CPUPROFILE")
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		return func() {}
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
