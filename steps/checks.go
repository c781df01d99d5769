package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lifeos/lifeos/internal/cost"
	"github.com/lifeos/lifeos/internal/lazyre"
	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{Name: "check.preflight", Version: 1,
		Summary: "required files, commands, environment variables and free disk are present (always runs)",
		New:     func() Step { return new(Preflight) }})
	Register(&Type{Name: "check.context_budget", Version: 1,
		Summary: "files stay within line limits (default policy.context_budget.limits)",
		New:     func() Step { return new(ContextBudget) }})
	Register(&Type{Name: "check.cost", Version: 1,
		Summary: "today's spend plus an open cost session's accrued cost is within policy.cost.daily_budget (always runs)",
		New:     func() Step { return new(CostCheck) }})
	Register(&Type{Name: "check.freshness", Version: 1,
		Summary: "files were modified within max_age_days (always runs; skip_in_ci passes under CI=true)",
		New:     func() Step { return new(Freshness) }})
}

// A guardrail prints one line per finding and fails listing them all, not
// only the first.
func findingsError(env *Env, what string, findings []string) error {
	for _, f := range findings {
		fmt.Fprintln(env.Log, f)
	}
	if len(findings) == 0 {
		return nil
	}
	return fmt.Errorf("%d %s: %s", len(findings), what, strings.Join(findings, "; "))
}

// Preflight checks that what a run needs is there before anything costly
// starts.
type Preflight struct {
	Files       []string `yaml:"files" doc:"files that must exist"`
	Commands    []string `yaml:"commands" doc:"commands that must be on PATH"`
	Env         []string `yaml:"env" doc:"environment variables that must be set (their values are never shown)"`
	MinFreeDisk string   `yaml:"min_free_disk" doc:"free space needed on the workspace's disk, e.g. 10GB"`
}

// Validate checks the size and paths.
func (p *Preflight) Validate() error {
	if p.MinFreeDisk != "" {
		if _, err := parseSize(p.MinFreeDisk); err != nil {
			return err
		}
	}
	for _, f := range p.Files {
		if err := pathglob.CheckRead(f); err != nil {
			return err
		}
	}
	return nil
}

// Deps: volatile, as the machine can change between runs.
func (p *Preflight) Deps(map[string]Outputs) Deps { return Deps{Volatile: true} }

// Run checks everything and reports every missing piece.
func (p *Preflight) Run(ctx context.Context, env *Env) (Outputs, error) {
	var findings []string
	for _, f := range p.Files {
		if _, err := os.Stat(pathglob.Abs(env.Root, f)); err != nil {
			findings = append(findings, "missing file "+f)
		}
	}
	for _, c := range p.Commands {
		if _, err := exec.LookPath(c); err != nil {
			findings = append(findings, "missing command "+c)
		}
	}
	for _, v := range p.Env {
		if os.Getenv(v) == "" {
			findings = append(findings, "environment variable "+v+" is not set")
		}
	}
	if p.MinFreeDisk != "" {
		need, _ := parseSize(p.MinFreeDisk)
		free, err := freeDisk(env.Root)
		switch {
		case err != nil:
			findings = append(findings, "free disk: "+err.Error())
		case free < need:
			findings = append(findings, fmt.Sprintf("free disk %s, need %s", formatSize(free), p.MinFreeDisk))
		}
	}
	if err := findingsError(env, "preflight problem(s)", findings); err != nil {
		return nil, err
	}
	n := len(p.Files) + len(p.Commands) + len(p.Env)
	if p.MinFreeDisk != "" {
		n++
	}
	return Outputs{"checked": n, "summary": plural(n, "check") + " passed"}, nil
}

var sizeRe = lazyre.New(`^\s*([0-9.]+)\s*([KMGT]?i?B?)\s*$`)

// parseSize reads 10GB, 512MiB, 1.5T (decimal units, binary with i).
func parseSize(s string) (uint64, error) {
	m := sizeRe().FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with a unit such as 10GB or 512MiB", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	unit := strings.TrimSuffix(m[2], "B")
	base := 1000.0
	if strings.HasSuffix(unit, "I") {
		base, unit = 1024, strings.TrimSuffix(unit, "I")
	}
	exp := strings.Index("KMGT", unit) + 1
	if unit == "" {
		exp = 0
	}
	for i := 0; i < exp; i++ {
		n *= base
	}
	return uint64(n), nil
}

func formatSize(n uint64) string {
	return fmt.Sprintf("%.1fGB", float64(n)/1e9)
}

// ContextBudget keeps files (docs an agent reads, prompts) within line
// limits.
type ContextBudget struct {
	Limits map[string]int `yaml:"limits" doc:"glob: maximum lines (default policy.context_budget.limits)"`
}

// Deps: the default limits come from the policy; volatile, as the files
// to count come from globs that may match new files, and counting lines
// costs less than keeping a key for them.
func (c *ContextBudget) Deps(map[string]Outputs) Deps {
	return Deps{Volatile: true, Policy: []string{"context_budget.limits"}}
}

// Run counts lines and reports every file over its limit.
func (c *ContextBudget) Run(ctx context.Context, env *Env) (Outputs, error) {
	limits := map[string]int{}
	if len(c.Limits) > 0 {
		limits = c.Limits
	} else if m, ok := env.Policy["context_budget.limits"].(map[string]any); ok {
		for g, v := range m {
			n, ok := number(v)
			if !ok {
				return nil, fmt.Errorf("policy context_budget.limits.%s: want a number of lines", g)
			}
			limits[g] = int(n)
		}
	}
	globs := make([]string, 0, len(limits))
	for g := range limits {
		globs = append(globs, g)
	}
	sort.Strings(globs)
	var findings []string
	checked := 0
	for _, g := range globs {
		files, err := pathglob.Files(env.Root, []string{g})
		if errors.Is(err, fs.ErrNotExist) {
			// A budget bounds the files there are: a workspace without a
			// CLAUDE.md keeps within its budget.
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			checked++
			n, err := countLines(filepath.Join(env.Root, filepath.FromSlash(f)))
			if err != nil {
				return nil, err
			}
			if n > limits[g] {
				findings = append(findings, fmt.Sprintf("%s: %d lines, limit %d (%s)", f, n, limits[g], g))
			}
		}
	}
	if err := findingsError(env, "file(s) over their line budget", findings); err != nil {
		return nil, err
	}
	return Outputs{"checked": checked, "summary": plural(checked, "file") + " within budget"}, nil
}

func countLines(name string) (int, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n, nil
}

// Freshness checks that files were updated recently (a stale status doc, a
// dataset last touched months ago).
type Freshness struct {
	Files      []string `yaml:"files" doc:"globs of files that must be fresh"`
	MaxAgeDays float64  `yaml:"max_age_days" doc:"the oldest a file may be, in days"`
	SkipInCI   bool     `yaml:"skip_in_ci" doc:"pass with a message when CI=true: a fresh checkout has fresh mtimes"`
}

// Validate checks the params.
func (f *Freshness) Validate() error {
	if len(f.Files) == 0 || f.MaxAgeDays <= 0 {
		return errors.New("check.freshness needs files: [globs] and a positive max_age_days")
	}
	return nil
}

// Deps: volatile, as age depends on today.
func (f *Freshness) Deps(map[string]Outputs) Deps { return Deps{Volatile: true} }

// Run checks every file's age.
func (f *Freshness) Run(ctx context.Context, env *Env) (Outputs, error) {
	if f.SkipInCI && os.Getenv("CI") == "true" {
		fmt.Fprintln(env.Log, "PASS: skipped under CI=true (a fresh checkout's files all look new)")
		return Outputs{"skipped": true, "summary": "PASS: skipped in CI"}, nil
	}
	files, err := pathglob.Files(env.Root, f.Files)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no file matches %s", strings.Join(f.Files, ", "))
	}
	maxAge := time.Duration(f.MaxAgeDays * 24 * float64(time.Hour))
	var findings []string
	for _, name := range files {
		st, err := os.Stat(filepath.Join(env.Root, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		if age := time.Since(st.ModTime()); age > maxAge {
			findings = append(findings, fmt.Sprintf("%s: last modified %.0f days ago, limit %g", name, age.Hours()/24, f.MaxAgeDays))
		}
	}
	if err := findingsError(env, "stale file(s)", findings); err != nil {
		return nil, err
	}
	return Outputs{"checked": len(files), "summary": plural(len(files), "file") + " fresh"}, nil
}

// CostCheck stops a pipeline before it spends when the day's budget is
// gone: today's cost log plus an open session's accrued cost against
// policy.cost.daily_budget. (lifeos cost check also watches for an idle
// session; a running pipeline is activity, so here only the budget counts.)
type CostCheck struct{}

// Validate has nothing to check.
func (*CostCheck) Validate() error { return nil }

// Deps: volatile (spending grows by the minute), and the budget.
func (*CostCheck) Deps(map[string]Outputs) Deps {
	return Deps{Volatile: true, Policy: []string{"cost.daily_budget"}}
}

// Run checks the spend.
func (*CostCheck) Run(ctx context.Context, env *Env) (Outputs, error) {
	budget, _ := number(env.Policy["cost.daily_budget"])
	now := time.Now()
	st, err := cost.Check(env.Root, cost.Limits{DailyBudget: budget}, now, now)
	if err != nil {
		return nil, fmt.Errorf("cost log: %w", err)
	}
	var findings []string
	for _, f := range st.Findings {
		findings = append(findings, f.Message)
	}
	if err := findingsError(env, "cost problem(s)", findings); err != nil {
		return nil, err
	}
	summary := fmt.Sprintf("spent %.2f today", st.SpentToday+st.Accrued)
	if budget > 0 {
		summary += fmt.Sprintf(" of %.2f", budget)
	}
	return Outputs{"spent_today": st.SpentToday, "accrued": st.Accrued, "summary": summary}, nil
}
