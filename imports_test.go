package main

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports guards the layering main -> runner -> steps: the command
// line talks to the runner alone (runner/tools.go is what its tools need
// from the step types), and steps never import the runner, yaml.v3 or expr:
// what they need from the engine comes through Env.
func TestImports(t *testing.T) {
	for dir, forbidden := range map[string][]string{
		".":     {"github.com/lifeos/lifeos/steps"},
		"steps": {"github.com/lifeos/lifeos/runner", "gopkg.in/yaml.v3", "github.com/expr-lang/expr"},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		fset := token.NewFileSet()
		for _, f := range files {
			ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbidden {
					if path == bad || strings.HasPrefix(path, bad+"/") {
						t.Errorf("%s imports %s, against the layering main -> runner -> steps", f, path)
					}
				}
			}
		}
	}
}

// TestLifeosDoesNotLinkTemporal keeps the Temporal SDK (and gRPC) out of
// lifeos itself: their package initialisation would add milliseconds to
// every command's start. They belong to the lifeos-temporal helper.
func TestLifeosDoesNotLinkTemporal(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command here")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"go.temporal.io/", "google.golang.org/grpc", "google.golang.org/protobuf"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("lifeos depends on %s: keep it in lifeos-temporal (internal/temporalrun)", dep)
			}
		}
	}
}
