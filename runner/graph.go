package runner

import (
	"fmt"
	"strings"
)

// Graph renders the plan's steps and needs as Graphviz dot or Mermaid.
// Edges point the way data flows: from a step to the steps that need it.
func (plan *Plan) Graph(format string) (string, error) {
	var b strings.Builder
	name := plan.Pipeline.Name
	if name == "" {
		name = plan.Pipeline.File
	}
	label := func(s *Step) string {
		l := s.ID + `\n` + s.Uses
		if s.Foreach != nil {
			l += " (foreach)"
		}
		return l
	}
	switch format {
	case "dot":
		fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n", name)
		for _, s := range plan.Order {
			attrs := fmt.Sprintf("label=\"%s\"", label(s))
			if s.When != nil {
				attrs += ", style=dashed"
			}
			if s.Gate != nil {
				attrs += ", peripheries=2"
			}
			fmt.Fprintf(&b, "  %q [%s];\n", s.ID, attrs)
		}
		for _, s := range plan.Order {
			for _, id := range s.Needs {
				fmt.Fprintf(&b, "  %q -> %q;\n", id, s.ID)
			}
		}
		b.WriteString("}\n")
	case "mermaid":
		b.WriteString("flowchart LR\n")
		for _, s := range plan.Order {
			l := strings.ReplaceAll(label(s), `\n`, "<br/>")
			open, close := "[", "]"
			if s.Gate != nil {
				open, close = "{{", "}}"
			}
			fmt.Fprintf(&b, "  %s%s\"%s\"%s\n", s.ID, open, l, close)
		}
		for _, s := range plan.Order {
			for _, id := range s.Needs {
				arrow := "-->"
				if s.When != nil {
					arrow = "-.->"
				}
				fmt.Fprintf(&b, "  %s %s %s\n", id, arrow, s.ID)
			}
		}
	default:
		return "", fmt.Errorf("unknown graph format %q: use dot or mermaid", format)
	}
	return b.String(), nil
}
