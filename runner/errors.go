package runner

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Pos is a position in a source file: 1-based line and column.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// PipelineError is a problem with a pipeline, policy or --set/--param value,
// found before anything runs. Callers map it to exit code 2.
type PipelineError struct {
	Pos Pos
	Err error
	// Source is the text of the line at Pos, shown under the message with a
	// caret, when known.
	Source string
}

func (e *PipelineError) Error() string {
	var b strings.Builder
	if e.Pos.File != "" {
		b.WriteString(e.Pos.String())
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if e.Source != "" && e.Pos.Col > 0 {
		src := strings.ReplaceAll(e.Source, "\t", " ")
		fmt.Fprintf(&b, "\n    | %s\n    | %s^", src, strings.Repeat(" ", min(e.Pos.Col-1, len(src))))
	}
	return b.String()
}

func (e *PipelineError) Unwrap() error { return e.Err }

// ErrorList is several PipelineErrors, reported together so that one
// validation shows every problem (sorted by position).
type ErrorList []*PipelineError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns nil for an empty list, the single error for one, else the list.
func (l ErrorList) Err() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	return l
}

// IsInvalid reports whether err means bad input (exit code 2) rather than a
// failed step or gate.
func IsInvalid(err error) bool {
	var pe *PipelineError
	var pl ErrorList
	var ue *UsageError
	return errors.As(err, &pe) || errors.As(err, &pl) || errors.As(err, &ue)
}

// UsageError is bad command-line input without a file position.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// StepError is the failure of one step.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// GateError says a gate evaluated to false; the run exits 1.
type GateError struct {
	Step  string
	Pos   Pos
	Expr  string
	Terms []Term
}

// Term is one operand of a gate or when expression with its value.
type Term struct {
	Expr  string `json:"expr"`
	Value any    `json:"value"`
}

func (e *GateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: gate of step %s blocked: %s", e.Pos, e.Step, e.Expr)
	for _, t := range e.Terms {
		fmt.Fprintf(&b, "\n    %s = %s", t.Expr, formatValue(t.Value))
	}
	return b.String()
}

// suggest returns " (did you mean `x`?)" for the candidate nearest to name,
// or "" when none is near: at most two edits, or a third of the name's
// length for long names (cobra's cut-off is two).
func suggest(name string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(name)/3) || best == name {
		return ""
	}
	return fmt.Sprintf(" (did you mean `%s`?)", best)
}

// sourceLine returns line n (1-based) of the file's content, for snippets.
func sourceLine(src []byte, n int) string {
	if n <= 0 {
		return ""
	}
	lines := strings.SplitN(string(src), "\n", n+1)
	if len(lines) < n {
		return ""
	}
	return strings.TrimRight(lines[n-1], "\r")
}
