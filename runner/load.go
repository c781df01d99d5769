package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/lifeos/lifeos/internal/lazyre"
	"github.com/lifeos/lifeos/runner/cache"
	"github.com/lifeos/lifeos/steps"
)

var (
	stepIDRe  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	paramRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlErrRe = lazyre.New(`line (\d+)(?:, column (\d+))?: (.*)`)
)

// Keys of a pipeline file and of a step, in the order the docs list them.
var (
	pipelineKeys = []string{"version", "name", "description", "policy", "params", "defaults", "steps"}
	stepKeys     = []string{"id", "description", "uses", "needs", "when", "foreach", "with", "gate", "retries", "timeout", "cache", "continue_on_error", "cost", "repeat", "queue"}
	defaultsKeys = []string{"retries", "timeout"}
)

// defaultBackoff is the first retry's delay; each later one doubles, up to
// maxBackoff (cmd/go and go-retryablehttp use the same shape).
const (
	defaultBackoff = 1 * time.Second
	maxBackoff     = 1 * time.Minute
)

// loader decodes one YAML file, collecting every error with its position.
type loader struct {
	file string
	src  []byte
	errs ErrorList
}

func (l *loader) pos(n *yaml.Node) Pos { return Pos{l.file, n.Line, n.Column} }

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	l.errs = append(l.errs, l.errAt(l.pos(n), fmt.Errorf(format, args...)))
}

func (l *loader) errAt(p Pos, err error) *PipelineError {
	return &PipelineError{Pos: p, Err: err, Source: sourceLine(l.src, p.Line)}
}

// yamlSyntaxError turns a yaml.v3 parse error into a positioned error.
// yaml.v3 reports the line where the enclosing block starts ("while
// parsing a block mapping"), not the bad token: the bad line is found as
// the first line at which a prefix of the file stops parsing, and the
// block's line is added as a note. Errors yaml.v3 gives no line for
// (invalid UTF-8, control characters, an undefined alias) get the line of
// the offending byte or alias.
func yamlSyntaxError(file string, src []byte, err error) *PipelineError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	at := func(line, col int, format string, args ...any) *PipelineError {
		return &PipelineError{Pos: Pos{file, line, col}, Err: fmt.Errorf(format, args...), Source: sourceLine(src, line)}
	}
	m := yamlErrRe().FindStringSubmatch(msg)
	if m == nil {
		if line, col := badByte(src); line > 0 {
			return at(line, col, "invalid YAML: %s", msg)
		}
		if a := undefinedAliasRe().FindStringSubmatch(msg); a != nil {
			if i := bytes.Index(src, []byte("*"+a[1])); i >= 0 {
				line, col := lineCol(src, i)
				return at(line, col, "invalid YAML: %s", msg)
			}
		}
		return &PipelineError{Pos: Pos{File: file}, Err: fmt.Errorf("invalid YAML: %s", msg)}
	}
	line, _ := strconv.Atoi(m[1])
	indentCol := func(line int) int {
		s := sourceLine(src, line)
		return len(s) - len(strings.TrimLeft(s, " \t")) + 1
	}
	if m[2] != "" { // the scanner knows the column: it is the token's
		col, _ := strconv.Atoi(m[2])
		return at(line, col, "invalid YAML: %s", m[3])
	}
	if bad := firstUnparsableLine(src, line); bad > line {
		return at(bad, indentCol(bad), "invalid YAML: %s (in the block that starts at line %d: %s)",
			m[3], line, strings.TrimSpace(sourceLine(src, line)))
	}
	return at(line, indentCol(line), "invalid YAML: %s", m[3])
}

// queueRe is what a task queue may be called: Temporal takes any string,
// workers name theirs on a command line.
var queueRe = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)

var undefinedAliasRe = lazyre.New(`unknown anchor '([^']*)' referenced`)

// firstUnparsableLine returns the first line after from at which the file,
// cut after that line, no longer parses; 0 when there is none.
func firstUnparsableLine(src []byte, from int) int {
	lines := bytes.SplitAfter(src, []byte("\n"))
	end := 0
	for i, l := range lines {
		end += len(l)
		if i+1 <= from {
			continue
		}
		var n yaml.Node
		if yaml.Unmarshal(src[:end], &n) != nil {
			return i + 1
		}
	}
	return 0
}

// badByte returns the position of the first byte YAML cannot hold: an
// invalid UTF-8 sequence or a control character other than tab and line
// ends.
func badByte(src []byte) (line, col int) {
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return lineCol(src, i)
		}
		i += size
	}
	return 0, 0
}

// lineCol converts a byte offset to a 1-based line and column (in bytes).
func lineCol(src []byte, off int) (line, col int) {
	line = 1 + bytes.Count(src[:off], []byte("\n"))
	return line, off - bytes.LastIndexByte(src[:off], '\n')
}

// readSource reads a pipeline or policy file, refusing what is not a
// regular file: a FIFO would block the read forever, before any signal
// handling could stop it.
func readSource(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("not a regular file (%s)", modeName(st.Mode()))}
	}
	return os.ReadFile(name)
}

func modeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// fields iterates a mapping node, rejecting unknown and duplicate keys.
func (l *loader) fields(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "%s: expected a mapping, got %s", what, describeNode(n))
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if prev, dup := seen[k.Value]; dup {
			l.errorf(k, "duplicate key %s in %s (first at line %d)", k.Value, what, prev.Line)
			continue
		}
		seen[k.Value] = k
		if known != nil && !contains(known, k.Value) {
			l.errorf(k, "unknown key `%s` in %s%s", k.Value, what, suggest(k.Value, known))
			continue
		}
		fn(k.Value, k, v)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describeNode names what a node is, for "expected X, got Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int", "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return n.Value
	}
	return "nothing"
}

func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		l.errorf(n, "%s: expected a string, got %s", what, describeNode(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		l.errorf(n, "%s: expected true or false, got %s", what, describeNode(n))
	}
	return b
}

func (l *loader) integer(n *yaml.Node, what string) int {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || i < 0 {
		l.errorf(n, "%s: expected a non-negative integer, got %s", what, describeNode(n))
	}
	return i
}

func (l *loader) duration(n *yaml.Node, what string) time.Duration {
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 {
		l.errorf(n, "%s: expected a duration such as 90s or 10m, got %s", what, describeNode(n))
	}
	return d
}

// retries decodes `retries: N` or `retries: {max: N, backoff: 2s}`.
func (l *loader) retries(n *yaml.Node, what string) (count int, backoff time.Duration) {
	backoff = defaultBackoff
	if n.Kind == yaml.MappingNode {
		l.fields(n, what, []string{"max", "backoff"}, func(key string, k, v *yaml.Node) {
			switch key {
			case "max":
				count = l.integer(v, what+".max")
			case "backoff":
				backoff = l.duration(v, what+".backoff")
			}
		})
		return count, backoff
	}
	return l.integer(n, what), backoff
}

// ReadPipeline reads and decodes a pipeline file (relative to root, or
// absolute), checking its structure. Expressions, the DAG and step params
// are checked by Compile. When the structure has errors but the steps could
// be read, the pipeline is returned with the errors, so that Load can report
// every problem at once.
func ReadPipeline(root, file string) (*Pipeline, error) {
	name := filepath.Join(root, file)
	if filepath.IsAbs(file) {
		name = file
	}
	src, err := readSource(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the file is named once, by the position
		}
		return nil, &PipelineError{Pos: Pos{File: file}, Err: err}
	}
	return parsePipeline(file, src)
}

func parsePipeline(file string, src []byte) (*Pipeline, error) {
	l := &loader{file: file, src: src}
	p := &Pipeline{File: file, src: src, Digest: cache.Sum(src), PolicyFile: DefaultPolicyFile}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, yamlSyntaxError(file, src, err)
	}
	if len(doc.Content) == 0 {
		return nil, &PipelineError{Pos: Pos{file, 1, 1}, Err: errors.New("empty pipeline: expected version: 1 and steps")}
	}
	top := doc.Content[0]
	defRetries := 0
	defBackoff, defTimeout := defaultBackoff, time.Duration(0)
	var version *yaml.Node
	var stepsNode *yaml.Node
	l.fields(top, "pipeline", pipelineKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			version = v
			if v.Value != "1" || v.ShortTag() != "!!int" {
				l.errorf(v, "unsupported pipeline version %s: this lifeos reads version 1", v.Value)
			}
		case "name":
			p.Name, _ = l.str(v, "name")
		case "description":
			p.Description, _ = l.str(v, "description")
		case "policy":
			if s, ok := l.str(v, "policy"); ok {
				p.PolicyFile, p.policyPos, p.policySet = s, l.pos(v), true
			}
		case "params":
			l.fields(v, "params", nil, func(name string, k, v *yaml.Node) {
				if !paramRe.MatchString(name) {
					l.errorf(k, "invalid param name %q: use letters, digits and _", name)
					return
				}
				pr := &Param{Name: name, Pos: l.pos(k)}
				if isParamSpec(v) {
					// {default: ..., env: NAME}: the environment variable
					// overrides the default, --param overrides both.
					spec := v
					v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
					l.fields(spec, "param "+name, paramSpecKeys, func(key string, _, fv *yaml.Node) {
						switch key {
						case "default":
							v = fv
						case "env":
							pr.Env, _ = l.str(fv, "param "+name+": env")
						case "secret":
							pr.Secret = l.boolean(fv, "param "+name+": secret")
						}
					})
				}
				var val any
				if err := v.Decode(&val); err != nil {
					l.errorf(v, "param %s: %v", name, err)
					return
				}
				pr.Default = normalize(val)
				p.Params = append(p.Params, pr)
			})
		case "defaults":
			l.fields(v, "defaults", defaultsKeys, func(key string, k, v *yaml.Node) {
				switch key {
				case "retries":
					defRetries, defBackoff = l.retries(v, "defaults.retries")
				case "timeout":
					defTimeout = l.duration(v, "timeout")
				}
			})
		case "steps":
			stepsNode = v
		}
	})
	if version == nil && top.Kind == yaml.MappingNode {
		l.errorf(top, "missing version: 1 at the top of the pipeline")
	}
	if stepsNode == nil {
		if top.Kind == yaml.MappingNode {
			l.errorf(top, "missing steps: a pipeline needs at least one step")
		}
		return nil, l.errs.Err()
	}
	if stepsNode.Kind != yaml.SequenceNode {
		l.errorf(stepsNode, "steps: expected a list of steps, got %s", describeNode(stepsNode))
		return nil, l.errs.Err()
	}
	ids := map[string]*Step{}
	for _, sn := range stepsNode.Content {
		s := l.step(resolveAlias(sn))
		if s == nil {
			continue
		}
		if s.Retries < 0 {
			s.Retries, s.Backoff = defRetries, defBackoff
		}
		if s.Timeout < 0 {
			s.Timeout = defTimeout
		}
		if s.ID != "" {
			if prev, dup := ids[s.ID]; dup {
				l.errs = append(l.errs, l.errAt(s.Pos, fmt.Errorf("duplicate step id %s (first at line %d)", s.ID, prev.Pos.Line)))
				continue
			}
			ids[s.ID] = s
		}
		p.Steps = append(p.Steps, s)
	}
	if len(stepsNode.Content) == 0 {
		l.errorf(stepsNode, "steps: a pipeline needs at least one step")
	}
	return p, l.errs.Err()
}

// errorList flattens an error into PipelineErrors.
func errorList(err error) ErrorList {
	var pl ErrorList
	var pe *PipelineError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pl):
		return pl
	case errors.As(err, &pe):
		return ErrorList{pe}
	}
	return ErrorList{{Err: err}}
}

func (l *loader) step(n *yaml.Node) *Step {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "step: expected a mapping with id and uses, got %s", describeNode(n))
		return nil
	}
	s := &Step{Pos: l.pos(n), Cache: true, Retries: -1, Timeout: -1}
	what := "step"
	// The id first, so later messages can name the step.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			v := n.Content[i+1]
			if id, ok := l.str(v, "id"); ok {
				if !stepIDRe.MatchString(id) {
					l.errorf(v, "invalid step id %q: use lowercase letters, digits and _, starting with a letter", id)
				}
				// Kept even when invalid, so that references to it do
				// not cascade into "unknown step" errors.
				s.ID, s.Pos = id, l.pos(v)
				what = "step " + id
			}
		}
	}
	var usesNode *yaml.Node
	l.fields(n, what, stepKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "id":
		case "description":
			s.Description, _ = l.str(v, what+": description")
		case "uses":
			usesNode = v
			s.Uses, _ = l.str(v, what+": uses")
		case "needs":
			switch v.Kind {
			case yaml.ScalarNode:
				if id, ok := l.str(v, what+": needs"); ok {
					s.Needs, s.needsPos = append(s.Needs, id), append(s.needsPos, l.pos(v))
				}
			case yaml.SequenceNode:
				for _, e := range v.Content {
					if id, ok := l.str(e, what+": needs"); ok {
						if contains(s.Needs, id) {
							l.errorf(e, "%s: needs %s twice", what, id)
							continue
						}
						s.Needs, s.needsPos = append(s.Needs, id), append(s.needsPos, l.pos(e))
					}
				}
			default:
				l.errorf(v, "%s: needs: expected a step id or a list of them, got %s", what, describeNode(v))
			}
		case "when":
			s.When = l.exprNode(v, what+": when")
		case "gate":
			s.Gate = l.exprNode(v, what+": gate")
		case "foreach":
			s.Foreach = &Foreach{Pos: l.pos(v)}
			if v.Kind == yaml.MappingNode {
				l.fields(v, what+": foreach", []string{"glob"}, func(key string, k, g *yaml.Node) {
					s.Foreach.Glob, _ = l.str(g, what+": foreach.glob")
					s.Foreach.Pos = l.pos(g)
				})
				if s.Foreach.Glob == "" {
					if len(v.Content) == 0 { // otherwise the key was reported
						l.errorf(v, "%s: foreach: expected a list expression or {glob: pattern}", what)
					}
					s.Foreach = nil
				}
			} else if s.Foreach.Expr = l.exprNode(v, what+": foreach"); s.Foreach.Expr == nil {
				s.Foreach = nil // reported; not a glob either
			}
		case "with":
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
				return // "with:" with nothing after it: no params
			}
			if v.Kind != yaml.MappingNode {
				l.errorf(v, "%s: with: expected a mapping of parameters, got %s", what, describeNode(v))
				s.withInvalid = true
				return
			}
			s.With, s.withPos = v, l.pos(k)
		case "retries":
			s.Retries, s.Backoff = l.retries(v, what+": retries")
		case "timeout":
			s.Timeout = l.duration(v, what+": timeout")
		case "queue":
			if q, ok := l.str(v, what+": queue"); ok {
				if !queueRe().MatchString(q) {
					l.errorf(v, "%s: queue: %q is not a queue name (letters, digits, - _ . :)", what, q)
				}
				s.Queue = q
			}
		case "cache":
			s.Cache = l.boolean(v, what+": cache")
		case "cost":
			s.Cost = &CostSpec{}
			l.fields(v, what+": cost", []string{"activity", "rate_per_hour", "estimate"}, func(key string, _, cv *yaml.Node) {
				switch key {
				case "activity":
					s.Cost.Activity, _ = l.str(cv, what+": cost.activity")
				case "rate_per_hour":
					var r float64
					if cv.Kind != yaml.ScalarNode || cv.Decode(&r) != nil || r < 0 {
						l.errorf(cv, "%s: cost.rate_per_hour: expected a non-negative number, got %s", what, describeNode(cv))
					}
					s.Cost.Rate = &r
				case "estimate":
					s.Cost.Estimate = l.duration(cv, what+": cost.estimate")
				}
			})
			if s.Cost.Activity == "" {
				s.Cost.Activity = s.ID
			}
		case "continue_on_error":
			s.ContinueOnError = l.boolean(v, what+": continue_on_error")
		case "repeat":
			s.Repeat = &Repeat{Pos: l.pos(v), OnMax: "fail"}
			l.fields(v, what+": repeat", []string{"until", "max", "on_max"}, func(key string, _, rv *yaml.Node) {
				switch key {
				case "until":
					s.Repeat.Until = l.exprNode(rv, what+": repeat.until")
				case "max":
					s.Repeat.Max = l.integer(rv, what+": repeat.max")
					if s.Repeat.Max < 1 || s.Repeat.Max > 1000 {
						l.errorf(rv, "%s: repeat.max: expected 1 to 1000 iterations, got %d", what, s.Repeat.Max)
					}
				case "on_max":
					s.Repeat.OnMax, _ = l.str(rv, what+": repeat.on_max")
					if s.Repeat.OnMax != "fail" && s.Repeat.OnMax != "warn" {
						l.errorf(rv, "%s: repeat.on_max: expected fail or warn, got %q", what, s.Repeat.OnMax)
					}
				}
			})
			switch {
			case s.Repeat.Until == nil && v.Kind == yaml.MappingNode:
				l.errorf(v, "%s: repeat: missing until: an expression over outputs that ends the loop when true", what)
			case s.Repeat.Max == 0 && v.Kind == yaml.MappingNode:
				l.errorf(v, "%s: repeat: missing max: the most iterations to run", what)
			}
		}
	})
	if s.Repeat != nil && s.Foreach != nil {
		l.errorf(n, "%s: repeat and foreach: a step takes one of them", what)
	}
	if s.ID == "" {
		if !hasKey(n, "id") {
			l.errorf(n, "step without id: every step needs id: name")
		}
		return nil
	}
	switch {
	case usesNode == nil:
		l.errorf(n, "%s: missing uses: (one of %s)", what, strings.Join(steps.Names(), ", "))
	case s.Uses == "" && usesNode.Kind == yaml.ScalarNode && usesNode.ShortTag() == "!!str":
		l.errorf(usesNode, "%s: uses: expected a step type (one of %s), got an empty string", what, strings.Join(steps.Names(), ", "))
	case s.Uses != "":
		t, ok := steps.Lookup(s.Uses)
		if !ok {
			l.errorf(usesNode, "%s: unknown step type %s%s", what, s.Uses, suggest(s.Uses, steps.Names()))
		}
		s.Type = t
	}
	return s
}

var paramSpecKeys = []string{"default", "env", "secret", "description"}

// isParamSpec reports whether a param's value is the {default, env,
// secret} form rather than a mapping-valued default: a mapping with an env
// or secret key and no keys but those of paramSpecKeys.
func isParamSpec(v *yaml.Node) bool {
	if v.Kind != yaml.MappingNode || !hasKey(v, "env") && !hasKey(v, "secret") {
		return false
	}
	for i := 0; i < len(v.Content); i += 2 {
		if !contains(paramSpecKeys, v.Content[i].Value) {
			return false
		}
	}
	return true
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// exprNode takes the source of an expression field (when, gate, foreach),
// remembering where its text starts in the file. Compile compiles it.
func (l *loader) exprNode(n *yaml.Node, what string) *Expr {
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, "%s: expected an expression, got %s", what, describeNode(n))
		return nil
	}
	src := n.Value
	if strings.HasPrefix(strings.TrimSpace(src), "${{") && strings.HasSuffix(strings.TrimSpace(src), "}}") {
		l.errorf(n, "%s: write the expression without ${{ }} (it is already an expression)", what)
		return nil
	}
	return &Expr{Src: src, Pos: l.valuePos(n, 0), what: what}
}

// valuePos returns the file position of byte offset off in a scalar's value,
// allowing for quotes and block scalars.
func (l *loader) valuePos(n *yaml.Node, off int) Pos {
	p := l.pos(n)
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		p.Col++
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The text starts on the next line, at its indentation.
		p.Line++
		s := sourceLine(l.src, p.Line)
		p.Col = len(s) - len(strings.TrimLeft(s, " ")) + 1
	}
	// Only the first line of the value maps column for column.
	if nl := strings.IndexByte(n.Value[:min(off, len(n.Value))], '\n'); nl < 0 {
		p.Col += off
	}
	return p
}

// sortErrors orders errors by file position.
func sortErrors(l ErrorList) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
