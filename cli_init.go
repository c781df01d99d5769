package main

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/internal/atomicfile"
	"github.com/lifeos/lifeos/runner"
)

// scaffold is what lifeos init writes: the shipped production and cycle
// pipelines, the policy, the example workflows and prompts, as in this
// repository.
//
//go:embed pipelines/production.yaml pipelines/cycle.yaml policies/thresholds.yaml workflows/*.json prompts/production.txt prompts/eval.txt
var scaffold embed.FS

// scaffoldExtra are the files init writes beside the scaffold.
var scaffoldExtra = map[string]string{
	".gitignore": ".lifeos/\nout/\nmodels/\n",
	"datasets/reference/README.md": `Put here a few photos of the person your LoRA is of (5 to 20, faces
clearly visible): the face scorer compares every generated face with them.
`,
	"workflows/README.md": `ComfyUI workflows in API format: in ComfyUI, Workflow > Export (API).
lifeos patches the prompt, seed, LoRA and settings it is given; see what a
generation would patch with: lifeos comfy inspect workflows/mine.json
`,
}

func (a *app) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "Start a workspace: production and cycle pipelines, policy, workflows, prompts, editor schema",
		Long: `Write a working workspace into DIR (default: the current directory): the
production and cycle pipelines, the threshold policy, example ComfyUI
workflows and prompts, a .gitignore, and the VS Code settings that check
pipelines against lifeos's schema. It writes nothing if any of these files
exists already. Then: put photos in datasets/reference and run
lifeos run pipelines/production.yaml --param server=http://<pod>:8188`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			// Where the user is, not the workspace above it.
			dir, err := a.base()
			if err != nil {
				return err
			}
			if len(argv) == 1 {
				dir = resolve(dir, argv[0])
			}
			files, err := scaffoldFiles()
			if err != nil {
				return err
			}
			names := make([]string, 0, len(files))
			var exist []string
			for name := range files {
				names = append(names, name)
				if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name))); err == nil {
					exist = append(exist, name)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			sort.Strings(names)
			if len(exist) > 0 {
				sort.Strings(exist)
				return &runner.UsageError{Err: fmt.Errorf("init: %s already holds %s: nothing written", dir, strings.Join(exist, ", "))}
			}
			for _, name := range names {
				if err := atomicfile.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), files[name], 0o666); err != nil {
					return fmt.Errorf("init: %w", err)
				}
				fmt.Fprintf(a.stdout, "wrote %s\n", name)
			}
			fmt.Fprintln(a.stdout, "next: put photos of the person in datasets/reference, then")
			fmt.Fprintln(a.stdout, "  lifeos run pipelines/production.yaml --param server=http://<pod>:8188")
			fmt.Fprint(a.stdout, `or try the whole cycle without a GPU, on lifeos's ComfyUI stand-in:
  lifeos fixture datasets/v1 --people 1 --images 6 --reference datasets/reference
  lifeos fixture datasets/v2 --people 1 --images 20
  lifeos comfy serve --fake &
  lifeos run pipelines/cycle.yaml --param label=v1 --param dataset=datasets/v1
  lifeos run pipelines/cycle.yaml --param label=v2 --param previous=v1 --param dataset=datasets/v2
`)
			return nil
		},
	}
}

// scaffoldFiles is every file init writes, by slash-separated path.
func scaffoldFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(scaffold, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[p], err = scaffold.ReadFile(p)
		return err
	})
	if err != nil {
		return nil, err
	}
	for name, content := range scaffoldExtra {
		files[name] = []byte(content)
	}
	schema, err := json.MarshalIndent(runner.Schema(), "", "  ")
	if err != nil {
		return nil, err
	}
	files[".vscode/lifeos.schema.json"] = append(schema, '\n')
	files[".vscode/settings.json"] = []byte(`{
  "yaml.schemas": {
    "./.vscode/lifeos.schema.json": ["pipelines/*.yaml"]
  }
}
`)
	return files, nil
}
