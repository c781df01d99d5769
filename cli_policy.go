package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Inspect the threshold policy"}
	var file string
	var sets []string
	var origin bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the merged policy: built-in defaults < policy file < --set",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			if file, err = a.arg(file); err != nil {
				return err
			}
			required := file != ""
			if file == "" {
				file = runner.DefaultPolicyFile
			}
			p, err := runner.LoadPolicy(root, file, required, sets)
			if err != nil {
				return err
			}
			out, err := p.YAML(origin)
			if err != nil {
				return err
			}
			if origin {
				src := "built-in defaults only (no " + file + ")"
				if p.File != "" {
					src = p.File
				}
				fmt.Fprintf(a.stdout, "# policy: %s\n", src)
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	show.Flags().StringVar(&file, "policy", "", "policy `FILE` (default "+runner.DefaultPolicyFile+", if present)")
	show.Flags().StringArrayVar(&sets, "set", nil, "override a value: `key.path=value`")
	show.Flags().BoolVar(&origin, "origin", false, "say where each value came from (default, file:line, --set)")
	cmd.AddCommand(show)
	return cmd
}
