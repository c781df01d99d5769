// Command lifeos-temporal is the part of lifeos that speaks Temporal: lifeos
// runs it for `run --engine temporal`, `worker`, `runs watch|cancel` and
// `temporal dev`. Build it beside lifeos:
//
//	go build -o "$(dirname "$(command -v lifeos)")/lifeos-temporal" ./cmd/lifeos-temporal
//
// It is a program of its own so that the Temporal SDK's start-up cost is
// paid only by the commands that use it.
package main

import (
	"os"
	"runtime/pprof"

	"github.com/lifeos/lifeos/internal/temporalcli"
)

func main() {
	os.Exit(run())
}

func run() int {
	if name := os.Getenv("LIFEOS_CPUPROFILE"); name != "" {
		// As lifeos does: a worker's profile is written when it stops.
		if f, err := os.Create(name); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	return temporalcli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
