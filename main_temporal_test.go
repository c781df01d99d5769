//go:build !race && !windows

package main

import (
	"flag"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lifeos/lifeos/internal/s3test"
	"github.com/lifeos/lifeos/internal/temporalcli"
)

func init() {
	// The lifeos-temporal helper, as a testscript command: lifeos finds
	// it on PATH as it would beside itself.
	lifeosTemporal = func() { os.Exit(temporalcli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
	cmdTemporalServer = temporalServer
	hasTemporal = temporalAvailable
}

// temporalServer starts Temporal's dev server (the Temporal CLI's, tuned
// as lifeos temporal dev tunes it) on a free loopback port and sets
// LIFEOS_TEMPORAL_ADDRESS. -db FILE keeps its state in FILE, so that a
// scenario can stop it (temporalserver -stop) and start it again on the
// same state; -config sets a dynamic config value.
func temporalServer(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("temporalserver", flag.ContinueOnError)
	db := fs.String("db", "", "")
	stop := fs.Bool("stop", false, "")
	var config []string
	fs.Func("config", "", func(v string) error { config = append(config, v); return nil })
	if neg || fs.Parse(args) != nil {
		ts.Fatalf("usage: temporalserver [-db FILE] [-config KEY=VALUE]... | temporalserver -stop")
	}
	if *stop {
		srv, ok := devServers.Load(ts)
		if !ok {
			ts.Fatalf("temporalserver -stop: no server started")
		}
		srv.(*temporalcli.DevServer).Stop()
		return
	}
	bin, err := temporalcli.TemporalCLI()
	ts.Check(err)
	port := 0
	if a := ts.Getenv("LIFEOS_TEMPORAL_ADDRESS"); a != "" { // started before: the same port
		if _, p, err := net.SplitHostPort(a); err == nil {
			port, _ = strconv.Atoi(p)
		}
	}
	path := ""
	if *db != "" {
		path = ts.MkAbs(*db)
	}
	srv, err := temporalcli.StartDevServer(bin, port, path, true, ts.Stderr(), config...)
	ts.Check(err)
	ts.Defer(srv.Stop)
	ts.Setenv("LIFEOS_TEMPORAL_ADDRESS", srv.Address)
	devServers.Store(ts, srv)
}

// devServers is each scenario's latest dev server, for -stop.
var devServers sync.Map // *testscript.TestScript -> *temporalcli.DevServer

// temporalAvailable is the [temporal] condition: the Temporal CLI is installed
// (always true where it is required: in CI, which builds it).
func temporalAvailable() bool {
	if s3test.Required() {
		return true
	}
	_, err := temporalcli.TemporalCLI()
	return err == nil
}
