package main

import (
	"context"
	"io"
	"testing"
)

// TestCommandsAreNamedRight: newRootCmd builds only the command a command
// line names, found by the name in commands(). A name there that differs
// from the command's own would make that command unknown.
func TestCommandsAreNamedRight(t *testing.T) {
	a := &app{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard}
	for _, c := range a.commands() {
		cmd := c.make()
		if cmd.Name() != c.name {
			t.Errorf("commands() calls %q what is named %q", c.name, cmd.Name())
		}
		if len(cmd.Aliases) > 0 {
			t.Errorf("%s has aliases %v, which commandName does not know", c.name, cmd.Aliases)
		}
	}
}

func TestCommandName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "p.yaml"}, "run"},
		{[]string{"-C", "dir", "run"}, "run"},
		{[]string{"--directory", "run", "plan"}, "plan"}, // "run" is -C's value
		{[]string{"-Cdir", "cache", "stats"}, "cache"},
		{[]string{"--directory=dir", "--help", "version"}, "version"},
		{[]string{"--", "run"}, ""},
		{[]string{"--help"}, ""},
		{nil, ""},
	} {
		if got := commandName(tc.args); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestOneCommandBuilt: a command line that names a command gets that one
// alone; help gets them all.
func TestOneCommandBuilt(t *testing.T) {
	ctx := context.Background()
	if n := len(newRootCmd(ctx, io.Discard, io.Discard, []string{"-C", "x", "plan", "p.yaml"}).Commands()); n != 1 {
		t.Errorf("plan: %d commands built, want 1", n)
	}
	all := len((&app{}).commands())
	for _, args := range [][]string{{"--help"}, {"help", "run"}, {"rnu"}, {"__complete", "r"}} {
		if n := len(newRootCmd(ctx, io.Discard, io.Discard, args).Commands()); n != all {
			t.Errorf("%q: %d commands built, want all %d", args, n, all)
		}
	}
}
