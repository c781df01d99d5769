package steps

import (
	"fmt"
	"slices"
)

// WorkflowInput is one input of a workflow that a comfyui.generate step
// would write, or one node it relies on without writing (Setting empty),
// as `lifeos comfy inspect` shows it.
type WorkflowInput struct {
	Role    string `json:"role"`              // sampler, refiner, noise, positive, negative, lora, checkpoint, latent, save...
	Node    string `json:"node"`              // the node id
	Class   string `json:"class"`             // its class_type
	Title   string `json:"title,omitempty"`   // its _meta.title
	Setting string `json:"setting,omitempty"` // the with: key that writes it, e.g. sampler.steps
	Input   string `json:"input,omitempty"`   // the input it writes
	Now     any    `json:"now,omitempty"`     // the input's value in the workflow
}

// InspectWorkflow finds the roles of an API-format workflow as a
// comfyui.generate step with the given nodes: would, and lists every input
// each setting would write, before any GPU time is spent. notes say what
// would not be patched and why.
func InspectWorkflow(name string, data []byte, nodes map[string]string) (rows []WorkflowInput, notes []string, err error) {
	wf, err := parseWorkflow(name, data)
	if err != nil {
		return nil, nil, err
	}
	r, err := wf.findRoles(nodes)
	if err != nil {
		return nil, nil, fmt.Errorf("workflow %s: %w", name, err)
	}
	add := func(role, id, setting, input string) {
		n := wf[id]
		title, _ := n.Meta["title"].(string)
		if title == n.ClassType {
			title = ""
		}
		row := WorkflowInput{Role: role, Node: id, Class: n.ClassType, Title: title, Setting: setting, Input: input}
		if input != "" {
			row.Now = n.Inputs[input]
		}
		rows = append(rows, row)
	}
	// Each node's role is said once, by the first that names it.
	roleOf := map[string]string{}
	role := func(id, r string) string {
		if roleOf[id] == "" {
			roleOf[id] = r
		}
		return roleOf[id]
	}
	for _, s := range r.samplers {
		sr := "sampler"
		if base, ok := r.refines[s]; ok {
			sr = "refiner of #" + base
		}
		role(s, sr)
		for _, m := range r.members[s][1:] {
			role(m, r.part[m])
		}
	}
	for _, b := range r.seeds {
		add(role(b.node, "seed"), b.node, "seed", b.input)
	}
	for _, k := range samplerSettings {
		for _, b := range r.settings[k] {
			add(roleOf[b.node], b.node, "sampler."+k, b.input)
			if k != "steps" {
				continue
			}
			steps, _ := number(wf[b.node].Inputs["steps"])
			for _, in := range []string{"start_at_step", "end_at_step"} {
				if v, ok := number(wf[b.node].Inputs[in]); ok && v > 0 && v < steps {
					add(roleOf[b.node], b.node, "sampler.steps (same fraction)", in)
				}
			}
		}
	}
	for _, side := range []struct {
		role, setting string
		list          []binding
	}{{"positive", "prompts", r.positive}, {"negative", "negative", r.negative}} {
		for _, b := range side.list {
			add(role(b.node, side.role), b.node, side.setting, b.input)
		}
	}
	for _, id := range r.zeroNeg {
		add(role(id, "negative (none)"), id, "", "")
		notes = append(notes, fmt.Sprintf("negative: not used: the negative conditioning comes from %s (no negative prompt)", wf.describe(id)))
	}
	if len(r.negative) == 0 && len(r.zeroNeg) == 0 {
		notes = append(notes, "negative: not used: no sampler takes a negative conditioning")
	}
	for i, id := range r.loras {
		key := fmt.Sprintf("loras[%d]", i)
		if len(r.loras) == 1 {
			key = "lora"
		}
		rl := role(id, fmt.Sprintf("lora %d", i+1))
		add(rl, id, key+".name", "lora_name")
		for _, in := range []string{"strength_model", "strength_clip"} {
			if _, ok := wf[id].Inputs[in]; ok {
				add(rl, id, key+".strength", in)
			}
		}
	}
	for _, id := range wf.loraLoaders() {
		if !slices.Contains(r.loras, id) {
			add(role(id, "lora off the chain"), id, "loras[].node", "lora_name")
		}
	}
	switch len(r.checkpoints) {
	case 1:
		add(role(r.checkpoints[0].node, "checkpoint"), r.checkpoints[0].node, "checkpoint", r.checkpoints[0].input)
	default:
		for _, b := range r.checkpoints {
			add(role(b.node, "checkpoint"), b.node, "", b.input)
		}
		if len(r.checkpoints) > 1 {
			notes = append(notes, "checkpoint: the base samplers load several models: name one with nodes: {checkpoint: <id>}")
		}
	}
	for _, id := range r.latents {
		rl := role(id, "latent")
		add(rl, id, "size.width", "width")
		add(rl, id, "size.height", "height")
	}
	if len(r.latents) == 0 {
		notes = append(notes, "size: not settable: the base sampler's latent is not an empty latent with width and height")
	}
	for _, k := range samplerSettings {
		if len(r.settings[k]) == 0 {
			notes = append(notes, fmt.Sprintf("sampler.%s: not settable: no sampling node has a %s input", k, k))
		}
	}
	for _, id := range r.saves {
		add(role(id, "save"), id, "", "")
	}
	// Grouped by node, in the order the nodes first came.
	first := map[string]int{}
	for i, row := range rows {
		if _, ok := first[row.Node]; !ok {
			first[row.Node] = i
		}
	}
	slices.SortStableFunc(rows, func(a, b WorkflowInput) int { return first[a.Node] - first[b.Node] })
	return rows, notes, nil
}
