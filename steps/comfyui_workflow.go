package steps

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// workflow is a ComfyUI API-format graph: node id -> node.
type workflow map[string]*wfNode

type wfNode struct {
	ClassType string         `json:"class_type"`
	Inputs    map[string]any `json:"inputs"`
	Meta      map[string]any `json:"_meta,omitempty"`
}

// parseWorkflow reads an API-format workflow, rejecting the editor format
// with instructions.
func parseWorkflow(name string, data []byte) (workflow, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("workflow %s: not JSON: %w", name, err)
	}
	if _, ok := top["nodes"]; ok {
		if _, ok := top["links"]; ok {
			return nil, fmt.Errorf("workflow %s is in ComfyUI's editor (UI) format, which the API does not accept; "+
				"export it in API format: Workflow > Export (API) in the new interface, or enable "+
				"Dev mode Options in the settings and use Save (API Format) in the old one", name)
		}
	}
	wf := workflow{}
	for id, raw := range top {
		var n wfNode
		if err := json.Unmarshal(raw, &n); err != nil || n.ClassType == "" {
			return nil, fmt.Errorf("workflow %s: node %q has no class_type: not an API-format workflow", name, id)
		}
		if n.Inputs == nil {
			n.Inputs = map[string]any{}
		}
		wf[id] = &n
	}
	if len(wf) == 0 {
		return nil, fmt.Errorf("workflow %s has no nodes", name)
	}
	return wf, nil
}

// clone deep-copies the workflow through JSON.
func (wf workflow) clone() workflow {
	b, _ := json.Marshal(wf)
	var c workflow
	json.Unmarshal(b, &c)
	return c
}

// sortIDs sorts node ids numerically when both are numbers (ComfyUI's
// are, as strings), else as strings.
func sortIDs(ids []string) {
	sort.Slice(ids, func(i, j int) bool {
		a, errA := strconv.Atoi(ids[i])
		b, errB := strconv.Atoi(ids[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return ids[i] < ids[j]
	})
}

// link returns the source node id of a linked input ["id", slot].
func link(v any) (string, bool) {
	l, ok := v.([]any)
	if !ok || len(l) != 2 {
		return "", false
	}
	id, ok := l[0].(string)
	return id, ok
}

func (wf workflow) describe(id string) string {
	n := wf[id]
	if t, ok := n.Meta["title"].(string); ok && t != "" && t != n.ClassType {
		return fmt.Sprintf("%s #%s (%q)", n.ClassType, id, t)
	}
	return fmt.Sprintf("%s #%s", n.ClassType, id)
}
