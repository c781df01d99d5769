package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// TestImports guards the layering main -> runner -> steps: the command
// line talks to the runner alone (runner/tools.go is what its tools need
// from the step types); steps/imports_test.go guards the other end.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == "github.com/lifeos/lifeos/steps" {
				t.Errorf("%s imports %s: package main goes through the runner", f, path)
			}
		}
	}
}
