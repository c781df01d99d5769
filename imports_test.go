package main

import (
	"go/parser"
	"go/token"
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
