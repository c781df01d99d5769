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

	"github.com/lifeos/lifeos/internal/cpuprofile"
	"github.com/lifeos/lifeos/internal/temporalcli"
)

func main() {
	os.Exit(run())
}

func run() int {
	defer cpuprofile.Start()() // a worker's is written when it stops
	return temporalcli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
