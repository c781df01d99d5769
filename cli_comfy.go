package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

func (a *app) comfyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "comfy",
		Short: "ComfyUI helpers: what a workflow's generation would patch, a stand-in server, record and replay a real one",
	}
	cmd.AddCommand(a.comfyInspectCmd(), a.comfyServeCmd(), a.comfyRecordCmd())
	return cmd
}

func (a *app) comfyInspectCmd() *cobra.Command {
	var asJSON bool
	var nodes []string
	cmd := &cobra.Command{
		Use:   "inspect WORKFLOW",
		Short: "Show the roles lifeos finds in an API-format workflow and what each setting would change",
		Long: `Show the nodes a comfyui.generate step patches in an API-format workflow
(Workflow > Export (API) in ComfyUI): the samplers (a refiner's included)
and their seed, the positive and negative text encoders, the LoRA loaders
in chain order, the checkpoint, the empty latent and the save nodes, with
the with: setting that writes each input and the input's value now. Only
settings a step sets are written; the rest of the workflow stays as it is.
Nothing is sent to a server.`,
		Args: args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			explicit := map[string]string{}
			for _, kv := range nodes {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return &runner.UsageError{Err: fmt.Errorf("--node %q: want role=id[,id...]", kv)}
				}
				explicit[k] = v
			}
			root, err := a.root()
			if err != nil {
				return err
			}
			name := argv[0]
			path, err := a.arg(argv[0])
			if err != nil {
				return err
			}
			if !filepath.IsAbs(path) {
				path = filepath.Join(root, path)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return fmt.Errorf("workflow %s: %w", name, err)
			}
			rows, notes, err := runner.InspectWorkflow(name, data, explicit)
			if err != nil {
				return err
			}
			if asJSON {
				e := json.NewEncoder(a.stdout)
				e.SetIndent("", "  ")
				if notes == nil {
					notes = []string{}
				}
				return e.Encode(map[string]any{"workflow": name, "inputs": rows, "notes": notes})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tNODE\tSETTING\tINPUT\tNOW")
			last := ""
			for _, r := range rows {
				node := r.Class + " #" + r.Node
				if r.Title != "" {
					node += fmt.Sprintf(" (%q)", r.Title)
				}
				role := r.Role
				if r.Node == last {
					role, node = "", ""
				}
				last = r.Node
				now := "-"
				if r.Input != "" {
					b, _ := json.Marshal(r.Now)
					now = string(b)
					if len(now) > 40 {
						now = now[:37] + "..."
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", role, node, dash(r.Setting), dash(r.Input), now)
			}
			tw.Flush()
			for _, n := range notes {
				fmt.Fprintf(a.stdout, "note: %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the inputs and notes as JSON")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "name a role's nodes as a step's nodes: does: `role=id[,id]` (sampler, positive, negative, latent, lora, checkpoint)")
	return cmd
}

// dash shows an empty cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
