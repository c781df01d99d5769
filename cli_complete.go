package main

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

// Dynamic shell completion (cobra's __complete): the values a pipeline
// defines, read from the pipeline named on the command line so far.

// completeFlags registers completion of --only (step ids), --param (param
// names) and --set (policy keys) for a command whose first argument is a
// pipeline.
func (a *app) completeFlags(cmd *cobra.Command) {
	cmd.RegisterFlagCompletionFunc("only", func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var ids []string
		if p := a.completionPipeline(args); p != nil {
			for _, s := range p.Steps {
				ids = append(ids, s.ID)
			}
		}
		return withPrefix(ids, prefix), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("param", func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var names []string
		if p := a.completionPipeline(args); p != nil {
			for _, prm := range p.Params {
				names = append(names, prm.Name+"=")
			}
		}
		return withPrefix(names, prefix), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	cmd.RegisterFlagCompletionFunc("set", func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		root, err := a.root()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		file := runner.DefaultPolicyFile
		if p := a.completionPipeline(args); p != nil {
			file = p.PolicyFile
		}
		if f, _ := cmd.Flags().GetString("policy"); f != "" {
			file = f
		}
		pol, err := runner.LoadPolicy(root, file, false, nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var keys []string
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			m, ok := v.(map[string]any)
			if !ok || len(m) == 0 {
				keys = append(keys, prefix+"=")
				return
			}
			for k, x := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), x)
			}
		}
		walk("", pol.Map())
		sort.Strings(keys)
		return withPrefix(keys, prefix), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
}

// withPrefix keeps the completions that start with prefix.
func withPrefix(all []string, prefix string) []string {
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// completionPipeline reads the pipeline given as the first argument, or
// nil: completion must never fail loudly.
func (a *app) completionPipeline(args []string) *runner.Pipeline {
	if len(args) == 0 {
		return nil
	}
	root, err := a.root()
	if err != nil {
		return nil
	}
	p, err := runner.ReadPipeline(root, args[0])
	if err != nil && p == nil {
		return nil
	}
	return p
}

// completeRuns completes run ids (and last) for runs show.
func (a *app) completeRuns(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	root, err := a.root()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	runs, _ := runner.ListRuns(root)
	ids := []string{"last"}
	for _, r := range runs {
		ids = append(ids, r.ID+"\t"+filepath.ToSlash(r.Pipeline)+" "+r.Status)
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}
