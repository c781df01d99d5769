package steps

import (
	"fmt"
	"math"
	"strings"
)

// genPlan is a step's settings bound to its workflow's roles: found once,
// applied to every image.
type genPlan struct {
	roles
	loraAt []string // the loader each of g.loras() is written to
	notes  []string // settings that have nowhere to go, said once
}

// plan binds the step's settings to the workflow and checks that each one
// the user set lands somewhere: a setting that would be silently dropped
// is an error before any GPU time.
func (g *Generate) plan(wf workflow) (*genPlan, error) {
	r, err := wf.findRoles(g.Nodes)
	if err != nil {
		return nil, fmt.Errorf("workflow %s: %w", g.Workflow, err)
	}
	p := &genPlan{roles: r}
	fail := func(err error) (*genPlan, error) {
		return nil, fmt.Errorf("workflow %s: %w", g.Workflow, err)
	}
	if p.loraAt, err = g.bindLoras(wf, r); err != nil {
		return fail(err)
	}
	if g.Checkpoint != "" {
		switch len(r.checkpoints) {
		case 0:
			return fail(fmt.Errorf("checkpoint: no checkpoint or UNET loader (ckpt_name, unet_name) at the root of the samplers' model: name it with nodes: {checkpoint: <id>}"))
		case 1:
		default:
			var c []string
			for _, b := range r.checkpoints {
				c = append(c, wf.describe(b.node))
			}
			return fail(fmt.Errorf("checkpoint: the base samplers load %d models (%s): say which with nodes: {checkpoint: <id>}", len(c), strings.Join(c, ", ")))
		}
	}
	if g.Size != nil && len(r.latents) == 0 {
		return fail(fmt.Errorf("size: the base sampler's latent_image does not come from an empty latent with width and height: name it with nodes: {latent: <id>}"))
	}
	set := g.Sampler.values()
	for _, in := range samplerSettings {
		if _, ok := set[in]; ok && len(r.settings[in]) == 0 {
			return fail(fmt.Errorf("sampler.%s: no sampling node of this workflow has a %s input (%s): remove sampler.%s", in, in, wf.describe(r.samplers[0]), in))
		}
	}
	if g.Negative != "" {
		for _, id := range r.zeroNeg {
			p.notes = append(p.notes, fmt.Sprintf("negative is not used on %s (no negative prompt)", wf.describe(id)))
		}
		if len(r.negative) == 0 && len(r.zeroNeg) == 0 {
			p.notes = append(p.notes, "negative is not used: no sampler of this workflow takes a negative conditioning")
		}
	}
	// The passes of a base and refiner must meet at one step, with the
	// step's settings applied.
	if err := g.patch(wf, p, genJob{}).checkPasses(r); err != nil {
		return fail(err)
	}
	return p, nil
}

// values are the settings sp sets, by the input they write (none for a
// nil spec).
func (sp *SamplerSpec) values() map[string]any {
	v := map[string]any{}
	if sp == nil {
		return v
	}
	if sp.Steps > 0 {
		v["steps"] = sp.Steps
	}
	if sp.CFG != nil {
		v["cfg"] = *sp.CFG
	}
	if sp.SamplerName != "" {
		v["sampler_name"] = sp.SamplerName
	}
	if sp.Scheduler != "" {
		v["scheduler"] = sp.Scheduler
	}
	if sp.Denoise != nil {
		v["denoise"] = *sp.Denoise
	}
	return v
}

// bindLoras decides which loader each LoRA goes to: the one its node:
// names (by id, title or the file it loads now), else the next loader of
// the chain that no named LoRA took.
func (g *Generate) bindLoras(wf workflow, r roles) ([]string, error) {
	specs := g.loras()
	at := make([]string, len(specs))
	name := func(i int) string {
		if g.Lora != nil {
			return "lora"
		}
		return fmt.Sprintf("loras[%d]", i)
	}
	taken := map[string]bool{}
	all := wf.loraLoaders()
	positional := 0
	for i, l := range specs {
		if l.Node == "" {
			positional++
			continue
		}
		var match []string
		for _, id := range all {
			title, _ := wf[id].Meta["title"].(string)
			file, _ := wf[id].Inputs["lora_name"].(string)
			if id == l.Node || title == l.Node || file == l.Node {
				match = append(match, id)
			}
		}
		switch {
		case len(match) == 0:
			return nil, fmt.Errorf("%s.node %q: no LoRA loader has that id, title or lora_name (loaders: %s)", name(i), l.Node, strings.Join(wf.loaders(), ", "))
		case len(match) > 1:
			var c []string
			for _, id := range match {
				c = append(c, wf.describe(id))
			}
			return nil, fmt.Errorf("%s.node %q matches %d loaders (%s): give the node id", name(i), l.Node, len(match), strings.Join(c, ", "))
		case taken[match[0]]:
			return nil, fmt.Errorf("%s.node %q: %s is already given another LoRA", name(i), l.Node, wf.describe(match[0]))
		}
		at[i] = match[0]
		taken[match[0]] = true
	}
	var free []string
	for _, id := range r.loras {
		if !taken[id] {
			free = append(free, id)
		}
	}
	if positional > 0 && positional != len(free) {
		besides, loaders := "", "the workflow has no LoRA loader"
		if len(taken) > 0 {
			besides = " besides the named ones"
		}
		if l := wf.loaders(); len(l) > 0 {
			loaders = "all loaders: " + strings.Join(l, ", ")
		}
		return nil, fmt.Errorf("%d LoRA(s) to set by chain position (lora: sets one, loras: a list) but %d LoRA loader(s) chained into the samplers' model%s (%s); "+
			"give one LoRA per loader, name each one's loader with node: (its id, title or current lora_name), or list the loaders with nodes: {lora: \"id1,id2\"}",
			positional, len(free), besides, loaders)
	}
	k := 0
	for i, l := range specs {
		if l.Node == "" {
			at[i] = free[k]
			k++
		}
	}
	return at, nil
}

// patch sets a job's inputs on a copy of the workflow: only what the step
// sets, everywhere it belongs.
func (g *Generate) patch(wf workflow, p *genPlan, j genJob) workflow {
	c := wf.clone()
	set := func(bs []binding, v any) {
		for _, b := range bs {
			c[b.node].Inputs[b.input] = v
		}
	}
	set(p.positive, j.prompt)
	if g.Negative != "" {
		set(p.negative, g.Negative)
	}
	set(p.seeds, j.seed)
	for in, v := range g.Sampler.values() {
		for _, b := range p.settings[in] {
			if in == "steps" {
				c.setSteps(b.node, v.(int))
			} else {
				c[b.node].Inputs[b.input] = v
			}
		}
	}
	if g.Size != nil {
		for _, id := range p.latents {
			if g.Size.Width > 0 {
				c[id].Inputs["width"] = g.Size.Width
			}
			if g.Size.Height > 0 {
				c[id].Inputs["height"] = g.Size.Height
			}
		}
	}
	if g.Checkpoint != "" && len(p.checkpoints) == 1 {
		set(p.checkpoints, g.Checkpoint)
	}
	for i, l := range g.loras() {
		n := c[p.loraAt[i]]
		n.Inputs["lora_name"] = l.Name
		sm, sc := l.Strength, l.Strength
		if l.StrengthModel != nil {
			sm = l.StrengthModel
		}
		if l.StrengthClip != nil {
			sc = l.StrengthClip
		}
		if _, ok := n.Inputs["strength_model"]; ok && sm != nil {
			n.Inputs["strength_model"] = *sm
		}
		if _, ok := n.Inputs["strength_clip"]; ok && sc != nil {
			n.Inputs["strength_clip"] = *sc
		}
	}
	return c
}

// setSteps sets a sampler's steps and keeps where it starts and stops at
// the same fraction of them: an SDXL base that ends at step 32 of 40
// ends at 22 of 28, and its refiner starts there too. An end beyond the
// steps (10000: "to the end") stays.
func (wf workflow) setSteps(id string, steps int) {
	in := wf[id].Inputs
	old, ok := number(in["steps"])
	in["steps"] = steps
	if !ok || old <= 0 {
		return
	}
	for _, k := range []string{"start_at_step", "end_at_step"} {
		if v, ok := number(in[k]); ok && v < old {
			in[k] = int(math.Round(v * float64(steps) / old))
		}
	}
}

// checkPasses refuses a refiner that does not start where its base
// stops: the steps between would be skipped or run twice.
func (wf workflow) checkPasses(r roles) error {
	for _, s := range r.samplers {
		base, ok := r.refines[s]
		if !ok {
			continue
		}
		bEnd, ok1 := number(wf[base].Inputs["end_at_step"])
		bSteps, ok2 := number(wf[base].Inputs["steps"])
		rStart, ok3 := number(wf[s].Inputs["start_at_step"])
		rSteps, ok4 := number(wf[s].Inputs["steps"])
		if !ok1 || !ok2 || !ok3 || !ok4 || bEnd >= bSteps {
			continue
		}
		if rStart != bEnd || rSteps != bSteps {
			return fmt.Errorf("%s starts at step %g of %g, but %s ends at step %g of %g: the steps between would be skipped or run twice; "+
				"make the refiner's start_at_step equal the base's end_at_step, with the same steps", wf.describe(s), rStart, rSteps, wf.describe(base), bEnd, bSteps)
		}
	}
	return nil
}
