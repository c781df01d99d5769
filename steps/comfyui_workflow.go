package steps

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// ids returns the node ids of a class, sorted numerically.
func (wf workflow) ids(classes ...string) []string {
	var out []string
	for id, n := range wf {
		for _, c := range classes {
			if n.ClassType == c {
				out = append(out, id)
			}
		}
	}
	sortIDs(out)
	return out
}

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

// roles are the nodes a generation patches.
type roles struct {
	sampler, latent    string
	positive, negative []string // the text encoders of each side
	loras              []string // in chain order, checkpoint first
}

// findRoles locates the nodes to patch by class and links; explicit ids in
// nodes win. Ambiguity is an error that lists the candidates.
func (wf workflow) findRoles(nodes map[string]string, wantLoras int) (roles, error) {
	var r roles
	pick := func(role string, classes ...string) (string, error) {
		if id, ok := nodes[role]; ok {
			n, exists := wf[id]
			if !exists {
				return "", fmt.Errorf("nodes.%s: the workflow has no node %q", role, id)
			}
			for _, c := range classes {
				if n.ClassType == c {
					return id, nil
				}
			}
			return "", fmt.Errorf("nodes.%s: node %s is a %s, want %s", role, id, n.ClassType, strings.Join(classes, " or "))
		}
		ids := wf.ids(classes...)
		switch len(ids) {
		case 0:
			return "", fmt.Errorf("the workflow has no %s node", strings.Join(classes, " or "))
		case 1:
			return ids[0], nil
		}
		var cands []string
		for _, id := range ids {
			cands = append(cands, wf.describe(id))
		}
		return "", fmt.Errorf("the workflow has %d %s nodes (%s): say which with nodes: {%s: <id>}", len(ids), strings.Join(classes, "/"), strings.Join(cands, ", "), role)
	}
	var err error
	if r.sampler, err = pick("sampler", "KSampler", "KSamplerAdvanced"); err != nil {
		return r, err
	}
	s := wf[r.sampler]
	for _, side := range []string{"positive", "negative"} {
		list, explicit := nodes[side]
		if !explicit {
			id, ok := link(s.Inputs[side])
			if !ok || wf[id] == nil {
				return r, fmt.Errorf("the %s input of %s is not linked to a node: say which node holds the %s prompt with nodes: {%s: <id>}", side, wf.describe(r.sampler), side, side)
			}
			list = id
		}
		// Several encoders (a base and a refiner's) take the same text:
		// nodes: {positive: "6,17"}.
		var ids []string
		for _, id := range strings.Split(list, ",") {
			id = strings.TrimSpace(id)
			if err := wf.checkEncoder(side, id, explicit); err != nil {
				if !explicit {
					err = fmt.Errorf("%w: say which node holds the %s prompt with nodes: {%s: <id>}", err, side, side)
				}
				return r, err
			}
			if slices.Contains(ids, id) {
				return r, fmt.Errorf("nodes.%s: node %s is listed twice", side, id)
			}
			ids = append(ids, id)
		}
		if side == "positive" {
			r.positive = ids
		} else {
			r.negative = ids
		}
	}
	if id, ok := link(s.Inputs["latent_image"]); ok && wf[id] != nil && wf[id].ClassType == "EmptyLatentImage" {
		r.latent = id
	}
	if id, ok := nodes["latent"]; ok {
		n := wf[id]
		if n == nil {
			return r, fmt.Errorf("nodes.latent: the workflow has no node %q", id)
		}
		_, w := n.Inputs["width"]
		_, h := n.Inputs["height"]
		if !w || !h {
			return r, fmt.Errorf("nodes.latent: node %s is a %s, which has no width and height inputs; want an empty latent image such as EmptyLatentImage", id, n.ClassType)
		}
		r.latent = id
	}
	if len(wf.ids("SaveImage")) == 0 {
		return r, errors.New("the workflow has no SaveImage node: nothing would be written")
	}
	if wantLoras == 0 {
		return r, nil
	}
	// LoRA loaders in chain order: walk the sampler's model input upstream.
	var chain []string
	for id, _ := link(s.Inputs["model"]); id != "" && wf[id] != nil; {
		if wf[id].ClassType != "LoraLoader" && wf[id].ClassType != "LoraLoaderModelOnly" {
			break
		}
		chain = append([]string{id}, chain...)
		id, _ = link(wf[id].Inputs["model"])
	}
	if ids, ok := nodes["lora"]; ok {
		chain = strings.Split(ids, ",")
		seen := map[string]bool{}
		for _, id := range chain {
			id = strings.TrimSpace(id)
			n := wf[id]
			switch {
			case id == "":
				return r, fmt.Errorf("nodes.lora: %q: want LoraLoader node ids separated by commas", ids)
			case n == nil:
				return r, fmt.Errorf("nodes.lora: the workflow has no node %q", id)
			case n.ClassType != "LoraLoader" && n.ClassType != "LoraLoaderModelOnly":
				return r, fmt.Errorf("nodes.lora: node %s is a %s, want LoraLoader or LoraLoaderModelOnly", id, n.ClassType)
			case seen[id]:
				return r, fmt.Errorf("nodes.lora: node %s is listed twice", id)
			}
			seen[id] = true
		}
		for i := range chain {
			chain[i] = strings.TrimSpace(chain[i])
		}
	}
	if len(chain) != wantLoras {
		var cands []string
		for _, id := range wf.ids("LoraLoader", "LoraLoaderModelOnly") {
			cands = append(cands, wf.describe(id))
		}
		return r, fmt.Errorf("%d LoRA(s) to set (lora: sets one, loras: a list) but %d LoraLoader node(s) chained into the sampler's model (all loaders: %s); "+
			"give one LoRA per loader, or list the loaders' ids with nodes: {lora: \"id1,id2\"}", wantLoras, len(chain), strings.Join(cands, ", "))
	}
	r.loras = chain
	return r, nil
}

// noNegative is the class that stands for "no negative prompt" (Flux
// workflows feed the sampler's negative input from it): there is no text
// to patch, and the workflow is left as it is.
const noNegative = "ConditioningZeroOut"

// checkEncoder checks that node id can hold the side's prompt: a text
// encoder with a text input (or, for the negative, a ConditioningZeroOut).
func (wf workflow) checkEncoder(side, id string, explicit bool) error {
	n := wf[id]
	if n == nil {
		return fmt.Errorf("nodes.%s: the workflow has no node %q", side, id)
	}
	if side == "negative" && n.ClassType == noNegative {
		return nil
	}
	if _, ok := n.Inputs["text"]; ok {
		return nil
	}
	if explicit {
		return fmt.Errorf("nodes.%s: node %s is a %s, which has no text input; want a text encoder such as CLIPTextEncode", side, id, n.ClassType)
	}
	return fmt.Errorf("the %s input of the sampler comes from %s, which has no text input", side, wf.describe(id))
}
