package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lifeos": func() {
			ctx, stop := signalContext()
			code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScript runs the CLI scenarios in testdata/*.txtar, one behaviour per
// file. LIFEOS_UPDATE=1 rewrites their expected output.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("LIFEOS_UPDATE") != "",
		Setup: func(env *testscript.Env) error {
			// Scenarios use the workspace's own .lifeos/cache, never one
			// from the developer's environment.
			env.Setenv("LIFEOS_CACHE", "")
			env.Setenv("LIFEOS_DEBUG", "")
			// REPO lets a scenario copy the project's own pipelines and
			// sample data, so the shipped demo is tested as shipped.
			repo, err := os.Getwd()
			env.Setenv("REPO", repo)
			return err
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": cmdWaitFile,
		},
	})
}

// cmdWaitFile waits until a file exists: how a scenario knows a background
// step has started before interrupting it. It gives up after 30 s so a
// broken scenario fails instead of hanging.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile path")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			ts.Fatalf("%s did not appear: %v", args[0], fmt.Errorf("waited 30s"))
		case <-tick.C:
		}
	}
}
