package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeos/lifeos/runner"
)

// version is set by the release build (-ldflags "-X main.version=...").
var version = "dev"

type app struct {
	ctx            context.Context
	stdout, stderr io.Writer
	dir            string // -C
}

// base is where the command was started: -C DIR, or the working
// directory. Paths typed on the command line are relative to it.
func (a *app) base() (string, error) {
	dir := a.dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return "", &runner.UsageError{Err: fmt.Errorf("-C %s: not a directory", a.dir)}
	}
	return abs, nil
}

// root returns the workspace root, found as git finds a repository: -C DIR
// is the root; otherwise the nearest folder upward from the working
// directory that holds .lifeos/, not looking above a repository's top
// (.git) or across a filesystem boundary; failing that, the working
// directory.
func (a *app) root() (string, error) {
	base, err := a.base()
	if err != nil || a.dir != "" {
		return base, err
	}
	return runner.FindRoot(base), nil
}

// args converts paths typed on the command line with arg.
func (a *app) args(ps []string) ([]string, error) {
	out := make([]string, len(ps))
	for i, p := range ps {
		var err error
		if out[i], err = a.arg(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// flagPath is a path flag's value: converted with arg when the user gave
// it, as is when it is the default (a path from the workspace root).
func (a *app) flagPath(cmd *cobra.Command, name, value string) (string, error) {
	if !cmd.Flags().Changed(name) {
		return value, nil
	}
	return a.arg(value)
}

// arg is a path typed on the command line (relative to where lifeos was
// started) as the workspace's commands take one: relative to the root when
// inside it, absolute otherwise.
func (a *app) arg(p string) (string, error) {
	if p == "" || filepath.IsAbs(p) {
		return p, nil
	}
	base, err := a.base()
	if err != nil {
		return "", err
	}
	root, err := a.root()
	if err != nil {
		return "", err
	}
	return displayPath(root, filepath.Join(base, p)), nil
}

// newRootCmd builds the command line for args. Only the command args name
// is built, when they name one: building all of them (their flags, their
// help) was a twelfth of the start of every run, in page faults mostly.
// Help, completion and a mistyped name get them all.
func newRootCmd(ctx context.Context, stdout, stderr io.Writer, args []string) *cobra.Command {
	a := &app{ctx: ctx, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "lifeos",
		Short: "Run declarative AI image-production pipelines with content-addressed caching",
		Long: `lifeos runs YAML pipelines (DAGs of steps) whose gates are expressions over a
threshold policy. Every step result is cached by content: the same inputs
never run twice.

  lifeos run pipelines/demo.yaml       run a pipeline
  lifeos plan pipelines/demo.yaml      what would run, and why
  lifeos validate pipelines/*.yaml     check without running`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       longVersion(),
		// An unknown command is a bad command line (exit 2), as a bad flag is.
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return &runner.UsageError{Err: fmt.Errorf("unknown command %q (run 'lifeos --help' for the commands)", a[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetVersionTemplate("lifeos {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &runner.UsageError{Err: fmt.Errorf("%w (run '%s --help' for usage)", err, c.CommandPath())}
	})
	root.PersistentFlags().StringVarP(&a.dir, "directory", "C", "", "run as if started in `DIR` (the workspace root)")
	cmds := a.commands()
	if name := commandName(args); name != "" {
		for _, c := range cmds {
			if c.name == name {
				root.AddCommand(c.make())
				return root
			}
		}
	}
	for _, c := range cmds {
		root.AddCommand(c.make())
	}
	return root
}

// command is one of lifeos's commands, by the name that calls it.
type command struct {
	name string
	make func() *cobra.Command
}

// commands are lifeos's commands, in the order help lists them.
func (a *app) commands() []command {
	return []command{
		{"run", a.runCmd}, {"plan", a.planCmd}, {"whatif", a.whatifCmd}, {"override", a.overrideCmd},
		{"validate", a.validateCmd}, {"graph", a.graphCmd}, {"policy", a.policyCmd}, {"runs", a.runsCmd},
		{"worker", a.workerCmd}, {"temporal", a.temporalCmd}, {"cache", a.cacheCmd}, {"manifest", a.manifestCmd},
		{"history", a.historyCmd}, {"compare", a.compareCmd}, {"test", a.testCmd}, {"cost", a.costCmd},
		{"face", a.faceCmd}, {"score", a.scoreCmd}, {"calibrate", a.calibrateCmd}, {"comfy", a.comfyCmd},
		{"schema", a.schemaCmd}, {"version", a.versionCmd}, {"init", a.initCmd}, {"fixture", a.fixtureCmd},
	}
}

// commandName is the command args call: their first word that is neither
// a flag nor the value of -C. "" when there is none, or after "--".
func commandName(args []string) string {
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--":
			return ""
		case arg == "-C" || arg == "--directory":
			i++
		case strings.HasPrefix(arg, "-"):
		default:
			return arg
		}
	}
	return ""
}

// args wraps a cobra positional-args check so violations exit 2.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &runner.UsageError{Err: fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

// planFlags are the flags shared by run, plan and graph.
type planFlags struct {
	policy string
	sets   []string
	params []string
	only   []string
}

func (f *planFlags) register(cmd *cobra.Command, only bool) {
	cmd.Flags().StringVar(&f.policy, "policy", "", "threshold policy `FILE` (overrides the pipeline's policy:)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a policy value: `key.path=value` (typed: 0.7, true, [A, B])")
	cmd.Flags().StringArrayVar(&f.params, "param", nil, "set a pipeline param: `name=value`")
	if only {
		cmd.Flags().StringArrayVar(&f.only, "only", nil, "run only `STEP` and the steps it needs (repeatable)")
	}
}

func (f *planFlags) options() runner.Options {
	return runner.Options{PolicyFile: f.policy, Sets: f.sets, Params: f.params, Only: f.only}
}

func (a *app) load(file string, f *planFlags) (*runner.Plan, error) {
	root, err := a.root()
	if err != nil {
		return nil, err
	}
	if file, err = a.arg(file); err != nil {
		return nil, err
	}
	o := f.options()
	if o.PolicyFile, err = a.arg(o.PolicyFile); err != nil {
		return nil, err
	}
	return runner.Load(root, file, o)
}

func (a *app) runCmd() *cobra.Command {
	var f planFlags
	var tf temporalFlags
	var jobs int
	var noCache, dryRun, asJSON, noWait, quiet, verbose bool
	color := "auto"
	cmd := &cobra.Command{
		Use:   "run PIPELINE",
		Short: "Run a pipeline",
		Long: `Run a pipeline. Independent steps run in parallel; a step whose inputs are
unchanged comes from the cache. Exit status: 0 success, 1 a step failed or a
gate blocked, 2 the pipeline, policy or command line is invalid, 130 (143)
Ctrl-C (SIGTERM) stopped it.`,
		Args: args(cobra.ExactArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			switch color {
			case "auto", "always", "never":
			default:
				return &runner.UsageError{Err: fmt.Errorf("--color=%s: expected auto, always or never", color)}
			}
			if quiet && verbose {
				return &runner.UsageError{Err: errors.New("-q and -v: choose one")}
			}
			plan, err := a.load(argv[0], &f)
			if err != nil {
				return err
			}
			switch tf.engine {
			case "local":
				if tf.detach || tf.noDownload {
					return &runner.UsageError{Err: errors.New("--detach and --no-download are for --engine temporal")}
				}
			case "temporal":
				if dryRun || noCache || noWait {
					return &runner.UsageError{Err: errors.New("--dry-run, --no-cache and --no-wait are for the local engine (plan works for both)")}
				}
				// Checked here, exactly as a local run would be; run there.
				return a.submitTemporal(argv[0], &f, &tf, quiet, verbose, asJSON, color)
			default:
				return &runner.UsageError{Err: fmt.Errorf("--engine %s: expected local or temporal", tf.engine)}
			}
			progress := a.stdout
			if asJSON {
				progress = a.stderr
			}
			// One pipeline per process: its state may stay mapped.
			o := runner.RunOptions{Jobs: jobs, NoCache: noCache, NoWait: noWait, Stdout: progress, Stderr: a.stderr,
				Quiet: quiet, Verbose: verbose, Color: color, MapState: true}
			if dryRun {
				decisions, err := plan.Explain(a.ctx, o)
				if err == nil && asJSON {
					err = writeJSON(a.stdout, decisions)
				}
				return err
			}
			rec, err := plan.Run(a.ctx, o)
			if rec != nil && asJSON {
				if jerr := rec.WriteJSON(a.stdout); jerr != nil {
					return jerr
				}
			}
			return err
		},
	}
	f.register(cmd, true)
	tf.register(cmd)
	a.completeFlags(cmd)
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "run up to `N` steps at once (default: number of CPUs)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "run every step even if a cached result exists (results are still stored)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would run and why, like plan, without running")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run record as JSON on stdout (progress goes to stderr)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "fail at once (exit 1) when another run holds the workspace, instead of waiting")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only failures and the summary")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also stream built-in steps' logs, and show the logs of cached steps")
	cmd.Flags().StringVar(&color, "color", color, "colour the output: `WHEN` auto (on a terminal, unless NO_COLOR is set), always or never")
	_ = cmd.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) planCmd() *cobra.Command {
	var f planFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan PIPELINE",
		Short: "Say which steps would run, come from the cache or be skipped, and why",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			plan, err := a.load(argv[0], &f)
			if err != nil {
				return err
			}
			o := runner.RunOptions{Stdout: a.stdout, Stderr: a.stderr}
			if asJSON {
				o.Stdout = io.Discard
			}
			decisions, err := plan.Explain(a.ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, decisions)
			}
			return nil
		},
	}
	f.register(cmd, true)
	a.completeFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the decisions as JSON")
	return cmd
}

func (a *app) validateCmd() *cobra.Command {
	var f planFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate PIPELINE...",
		Short: "Check pipelines (schema, step graph, params, policy, expressions) without running anything",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			type problem struct {
				File    string `json:"file,omitempty"`
				Line    int    `json:"line,omitempty"`
				Col     int    `json:"col,omitempty"`
				Message string `json:"message"`
			}
			type result struct {
				File     string    `json:"file"`
				OK       bool      `json:"ok"`
				Steps    int       `json:"steps"`
				Problems []problem `json:"problems,omitempty"`
			}
			var results []result
			var failed bool
			for _, file := range argv {
				plan, err := a.load(file, &f)
				if err != nil {
					failed = true
					if !asJSON {
						fmt.Fprintf(a.stderr, "%v\n", err)
						continue
					}
					r := result{File: file}
					var list runner.ErrorList
					var one *runner.PipelineError
					switch {
					case errors.As(err, &list):
					case errors.As(err, &one):
						list = runner.ErrorList{one}
					}
					for _, pe := range list {
						r.Problems = append(r.Problems, problem{pe.Pos.File, pe.Pos.Line, pe.Pos.Col, pe.Err.Error()})
					}
					if len(list) == 0 {
						r.Problems = []problem{{Message: err.Error()}}
					}
					results = append(results, r)
					continue
				}
				if asJSON {
					results = append(results, result{File: file, OK: true, Steps: len(plan.Pipeline.Steps)})
					continue
				}
				fmt.Fprintf(a.stdout, "ok %s (%d steps)\n", file, len(plan.Pipeline.Steps))
			}
			if asJSON {
				if err := writeJSON(a.stdout, results); err != nil {
					return err
				}
			}
			if failed {
				return exitError{exitInvalid}
			}
			return nil
		},
	}
	f.register(cmd, false)
	a.completeFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print [{"file", "ok", "steps", "problems": [{"file", "line", "col", "message"}]}] (exit 2 still when one is not ok)`)
	return cmd
}

func (a *app) graphCmd() *cobra.Command {
	var f planFlags
	var format string
	cmd := &cobra.Command{
		Use:   "graph PIPELINE",
		Short: "Print the step graph as Graphviz dot or Mermaid",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			plan, err := a.load(argv[0], &f)
			if err != nil {
				return err
			}
			out, err := plan.Graph(format)
			if err != nil {
				return &runner.UsageError{Err: err}
			}
			_, err = io.WriteString(a.stdout, out)
			return err
		},
	}
	f.register(cmd, false)
	a.completeFlags(cmd)
	cmd.Flags().StringVar(&format, "format", "dot", "output `FORMAT`: dot or mermaid")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"dot", "mermaid"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
