package steps

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A binding is one workflow input a setting writes: node id and input
// name.
type binding struct{ node, input string }

// roles are the nodes a generation patches, found by following the
// graph's links rather than by class names alone, so that a workflow the
// community built (SDXL with a refiner, Flux with a custom sampler, a
// ControlNet between the encoders and the sampler) is patched everywhere
// a setting belongs, and a node lifeos cannot follow is an error that
// names it instead of a silent half-patch.
type roles struct {
	// samplers are the sampling nodes (those taking a latent_image),
	// bases first; refines maps a second pass (an SDXL refiner, a hires
	// fix) to the sampler whose latent it continues.
	samplers []string
	refines  map[string]string
	// members are each sampler's own nodes: itself and what feeds its
	// samplerParts inputs (SamplerCustomAdvanced); part says which.
	members map[string][]string
	part    map[string]string

	positive, negative []binding // the text inputs of each side's encoders
	zeroNeg            []string  // ConditioningZeroOut: no negative prompt
	seeds              []binding // every sampler's seed (refiner included)
	settings           map[string][]binding
	latents            []string // the bases' empty latents (width, height)
	checkpoints        []binding
	loras              []string // LoRA loaders on the samplers' model chains, in chain order, bases first
	saves              []string
}

// samplerParts are the inputs through which a sampler takes nodes of its
// own: SamplerCustomAdvanced's noise (the seed), guider (cfg and the
// conditioning), sampler (sampler_name) and sigmas (steps, scheduler).
var samplerParts = []string{"noise", "guider", "sampler", "sigmas"}

// nodeRoles are the keys nodes: accepts.
var nodeRoles = []string{"sampler", "positive", "negative", "latent", "lora", "checkpoint"}

// samplerSettings are the sampler: settings, by the input name they
// write. Denoise goes to the bases only: a refiner or hires-fix pass is
// defined by its own.
var samplerSettings = []string{"steps", "cfg", "sampler_name", "scheduler", "denoise"}

// textInputs are the prompt inputs of the text encoders: CLIPTextEncode
// and its refiner variant (text), CLIPTextEncodeSDXL (text_g, text_l),
// CLIPTextEncodeFlux (clip_l, t5xxl).
var textInputs = []string{"text", "text_g", "text_l", "clip_l", "t5xxl"}

// splitIDs splits a comma-separated nodes: value.
func splitIDs(role, list string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, fmt.Errorf("nodes.%s: %q: want node ids separated by commas", role, list)
		}
		if slices.Contains(ids, id) {
			return nil, fmt.Errorf("nodes.%s: node %s is listed twice", role, id)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// literal reports whether node id has a literal (unlinked) input name.
func (wf workflow) literal(id, name string) bool {
	v, ok := wf[id].Inputs[name]
	if !ok {
		return false
	}
	_, linked := link(v)
	return !linked
}

// linked returns the source node of a linked input, if it exists.
func (wf workflow) linked(id, name string) (string, int, bool) {
	l, ok := wf[id].Inputs[name].([]any)
	if !ok || len(l) != 2 {
		return "", 0, false
	}
	src, ok := l[0].(string)
	if !ok || wf[src] == nil {
		return "", 0, false
	}
	slot, _ := l[1].(float64)
	return src, int(slot), true
}

// findRoles finds every node a generation patches. Explicit ids in nodes
// replace what the graph says for their role.
func (wf workflow) findRoles(nodes map[string]string) (roles, error) {
	r := roles{refines: map[string]string{}, members: map[string][]string{}, part: map[string]string{}, settings: map[string][]binding{}}
	for k := range nodes {
		if !slices.Contains(nodeRoles, k) {
			return r, fmt.Errorf("nodes.%s: unknown role; want one of %s", k, strings.Join(nodeRoles, ", "))
		}
	}
	explicit := map[string][]string{}
	for k, v := range nodes {
		ids, err := splitIDs(k, v)
		if err != nil {
			return r, err
		}
		for _, id := range ids {
			if wf[id] == nil {
				return r, fmt.Errorf("nodes.%s: the workflow has no node %q", k, id)
			}
		}
		explicit[k] = ids
	}

	if ids, ok := explicit["sampler"]; ok {
		for _, id := range ids {
			if _, has := wf[id].Inputs["latent_image"]; !has {
				return r, fmt.Errorf("nodes.sampler: node %s is a %s, which has no latent_image input; want a sampler such as KSampler", id, wf[id].ClassType)
			}
		}
		r.samplers = ids
	} else {
		for id, n := range wf {
			if _, has := n.Inputs["latent_image"]; has {
				r.samplers = append(r.samplers, id)
			}
		}
		sortIDs(r.samplers)
	}
	if len(r.samplers) == 0 {
		return r, errors.New("the workflow has no sampler (a node with a latent_image input, such as KSampler)")
	}
	for _, s := range r.samplers {
		if base, ok := wf.latentFrom(s, r.samplers); ok {
			r.refines[s] = base
		}
		m := []string{s}
		for _, in := range samplerParts {
			if src, _, ok := wf.linked(s, in); ok && !slices.Contains(m, src) {
				m = append(m, src)
				r.part[src] = in
			}
		}
		r.members[s] = m
	}
	// Bases first, then each pass after the one it continues.
	depth := func(s string) int {
		d := 0
		for seen := map[string]bool{}; r.refines[s] != "" && !seen[s]; d++ {
			seen[s] = true
			s = r.refines[s]
		}
		return d
	}
	slices.SortStableFunc(r.samplers, func(a, b string) int { return depth(a) - depth(b) })

	for _, s := range r.samplers {
		_, refiner := r.refines[s]
		for _, m := range r.members[s] {
			for _, in := range []string{"seed", "noise_seed"} {
				b, err := wf.seedInput(m, in)
				if err != nil {
					return r, err
				}
				if b != nil && !slices.Contains(r.seeds, *b) {
					r.seeds = append(r.seeds, *b)
				}
			}
			for _, in := range samplerSettings {
				if in == "denoise" && refiner {
					continue
				}
				if wf.literal(m, in) {
					r.settings[in] = append(r.settings[in], binding{m, in})
				}
			}
		}
	}
	if len(r.seeds) == 0 {
		return r, fmt.Errorf("no sampler has a seed or noise_seed input (%s): every image would be the same", wf.describe(r.samplers[0]))
	}

	if err := wf.findEncoders(&r, explicit); err != nil {
		return r, err
	}
	if err := wf.findModels(&r, explicit); err != nil {
		return r, err
	}

	if ids, ok := explicit["latent"]; ok {
		for _, id := range ids {
			if !wf.literal(id, "width") || !wf.literal(id, "height") {
				return r, fmt.Errorf("nodes.latent: node %s is a %s, which has no width and height inputs; want an empty latent image such as EmptyLatentImage", id, wf[id].ClassType)
			}
		}
		r.latents = ids
	} else {
		for _, s := range r.samplers {
			if _, refiner := r.refines[s]; refiner {
				continue
			}
			if src, _, ok := wf.linked(s, "latent_image"); ok && wf.literal(src, "width") && wf.literal(src, "height") && !slices.Contains(r.latents, src) {
				r.latents = append(r.latents, src)
			}
		}
	}

	for id, n := range wf {
		if _, ok := n.Inputs["filename_prefix"]; ok && n.ClassType != "PreviewImage" {
			r.saves = append(r.saves, id)
		}
	}
	sortIDs(r.saves)
	if len(r.saves) == 0 {
		return r, errors.New("the workflow has no SaveImage node: nothing would be written")
	}
	return r, nil
}

// latentFrom finds the sampler whose output feeds sampler s's latent,
// through latent-only nodes (LatentUpscale and the like take samples).
func (wf workflow) latentFrom(s string, samplers []string) (string, bool) {
	id, _, ok := wf.linked(s, "latent_image")
	for seen := map[string]bool{}; ok && !seen[id]; id, _, ok = wf.linked(id, "samples") {
		seen[id] = true
		if slices.Contains(samplers, id) {
			return id, true
		}
	}
	return "", false
}

// seedInput is where a node's seed is written: the input itself, or the
// node it is linked from (a seed or primitive node).
func (wf workflow) seedInput(id, in string) (*binding, error) {
	if _, has := wf[id].Inputs[in]; !has {
		return nil, nil
	}
	if wf.literal(id, in) {
		return &binding{id, in}, nil
	}
	src, _, ok := wf.linked(id, in)
	if ok {
		for _, name := range []string{"seed", "noise_seed", "value"} {
			if wf.literal(src, name) {
				return &binding{src, name}, nil
			}
		}
	}
	return nil, fmt.Errorf("the %s of %s comes from %s, which has no seed or value input lifeos can set", in, wf.describe(id), wf.describeLink(id, in))
}

func (wf workflow) describeLink(id, in string) string {
	if src, _, ok := wf.linked(id, in); ok {
		return wf.describe(src)
	}
	return "a missing node"
}

// noNegative is the class that stands for "no negative prompt" (Flux
// workflows feed the sampler's negative input from it): there is no text
// to patch, and the workflow is left as it is.
const noNegative = "ConditioningZeroOut"

// findEncoders follows each sampler's conditioning upstream to the text
// encoders of each side.
func (wf workflow) findEncoders(r *roles, explicit map[string][]string) error {
	for _, side := range []string{"positive", "negative"} {
		ids, ok := explicit[side]
		if !ok {
			continue
		}
		for _, id := range ids {
			if side == "negative" && wf[id].ClassType == noNegative {
				r.zeroNeg = append(r.zeroNeg, id)
				continue
			}
			bs, err := wf.textBindings(id)
			if err != nil {
				return err
			}
			if len(bs) == 0 {
				return fmt.Errorf("nodes.%s: node %s is a %s, which has no text input; want a text encoder such as CLIPTextEncode", side, id, wf[id].ClassType)
			}
			r.add(side, bs)
		}
	}
	seen := map[string]bool{}
	var walk func(side, id string, slot int, from string) error
	walk = func(side, id string, slot int, from string) error {
		key := fmt.Sprint(side, "/", id, "/", slot)
		if seen[key] {
			return nil
		}
		seen[key] = true
		n := wf[id]
		if n.ClassType == noNegative {
			if side == "negative" && !slices.Contains(r.zeroNeg, id) {
				r.zeroNeg = append(r.zeroNeg, id)
			}
			return nil
		}
		bs, err := wf.textBindings(id)
		if err != nil {
			return err
		}
		if len(bs) > 0 {
			r.add(side, bs)
			return nil
		}
		// A node with positive and negative inputs passes both through
		// (ControlNetApplyAdvanced): output 0 is the positive, 1 the
		// negative.
		if _, _, ok := wf.linked(id, "negative"); ok {
			in := map[int]string{0: "positive", 1: "negative"}[slot]
			src, s, ok := wf.linked(id, in)
			if !ok {
				return fmt.Errorf("the %s prompt reaches %s through output %d of %s, which lifeos cannot follow: name the encoders with nodes: {%s: <id>}", side, from, slot, wf.describe(id), side)
			}
			return walk(side, src, s, from)
		}
		// Otherwise every conditioning input: FluxGuidance, ConditioningCombine,
		// ConditioningSetArea, ConditioningAverage...
		var names []string
		for name := range n.Inputs {
			if strings.HasPrefix(name, "conditioning") {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		followed := false
		for _, name := range names {
			if src, s, ok := wf.linked(id, name); ok {
				followed = true
				if err := walk(side, src, s, from); err != nil {
					return err
				}
			}
		}
		if !followed {
			return fmt.Errorf("the %s prompt of %s comes from %s, which has no text input and no conditioning input lifeos can follow: name the encoders with nodes: {%s: <id>}", side, from, wf.describe(id), side)
		}
		return nil
	}
	for _, s := range r.samplers {
		for _, m := range r.members[s] {
			// In this order (a map's would vary from run to run): a guider's
			// conditioning is its positive.
			for _, io := range [][2]string{{"positive", "positive"}, {"negative", "negative"}, {"conditioning", "positive"}} {
				in, side := io[0], io[1]
				if _, ok := explicit[side]; ok {
					continue
				}
				if _, has := wf[m].Inputs[in]; !has {
					continue
				}
				src, slot, ok := wf.linked(m, in)
				if !ok {
					return fmt.Errorf("the %s input of %s is not linked to a node: say which node holds the %s prompt with nodes: {%s: <id>}", in, wf.describe(m), side, side)
				}
				if err := walk(side, src, slot, wf.describe(m)); err != nil {
					return err
				}
			}
		}
	}
	for _, p := range r.positive {
		for _, n := range r.negative {
			if p.node == n.node {
				return fmt.Errorf("%s feeds both the positive and the negative conditioning: one text cannot be both; give the negative its own encoder, or name the encoders with nodes: {positive: <id>, negative: <id>}", wf.describe(p.node))
			}
		}
	}
	if len(r.positive) == 0 {
		return errors.New("no text encoder feeds the samplers' positive conditioning: name it with nodes: {positive: <id>}")
	}
	return nil
}

// add records a side's bindings once each, in a stable order.
func (r *roles) add(side string, bs []binding) {
	list := &r.positive
	if side == "negative" {
		list = &r.negative
	}
	for _, b := range bs {
		if !slices.Contains(*list, b) {
			*list = append(*list, b)
		}
	}
}

// textBindings are an encoder's prompt inputs; a prompt linked from a
// text node is written there.
func (wf workflow) textBindings(id string) ([]binding, error) {
	if _, has := wf[id].Inputs["clip"]; !has {
		if wf.literal(id, "text") {
			return []binding{{id, "text"}}, nil
		}
		return nil, nil
	}
	var bs []binding
	for _, in := range textInputs {
		if _, has := wf[id].Inputs[in]; !has {
			continue
		}
		if wf.literal(id, in) {
			bs = append(bs, binding{id, in})
			continue
		}
		src, _, _ := wf.linked(id, in)
		found := false
		for _, name := range []string{"text", "string", "value"} {
			if src != "" && wf.literal(src, name) {
				bs = append(bs, binding{src, name})
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("the %s of %s comes from %s, which has no text lifeos can set", in, wf.describe(id), wf.describeLink(id, in))
		}
	}
	return bs, nil
}

// findModels walks each sampler's model input upstream: the LoRA loaders
// on the way, in chain order, and the checkpoint (or UNET) loader at its
// root. Nodes between them that pass the model through
// (ModelSamplingFlux, ...) are followed.
func (wf workflow) findModels(r *roles, explicit map[string][]string) error {
	for _, s := range r.samplers {
		_, refiner := r.refines[s]
		start := ""
		for _, m := range r.members[s] {
			if src, _, ok := wf.linked(m, "model"); ok {
				start = src
				break
			}
		}
		var chain []string
		id := start
		for seen := map[string]bool{}; id != "" && !seen[id]; {
			seen[id] = true
			if wf.isLoraLoader(id) {
				chain = append([]string{id}, chain...)
			}
			next, _, ok := wf.linked(id, "model")
			if !ok {
				break
			}
			id = next
		}
		for _, l := range chain {
			if !slices.Contains(r.loras, l) {
				r.loras = append(r.loras, l)
			}
		}
		if id != "" && !refiner {
			for _, in := range []string{"ckpt_name", "unet_name"} {
				if wf.literal(id, in) && !slices.Contains(r.checkpoints, binding{id, in}) {
					r.checkpoints = append(r.checkpoints, binding{id, in})
				}
			}
		}
	}
	if ids, ok := explicit["lora"]; ok {
		for _, id := range ids {
			if !wf.isLoraLoader(id) {
				return fmt.Errorf("nodes.lora: node %s is a %s, want LoraLoader or LoraLoaderModelOnly", id, wf[id].ClassType)
			}
		}
		r.loras = ids
	}
	if ids, ok := explicit["checkpoint"]; ok {
		r.checkpoints = nil
		for _, id := range ids {
			b := binding{id, "ckpt_name"}
			if !wf.literal(id, "ckpt_name") {
				b.input = "unet_name"
			}
			if !wf.literal(id, b.input) {
				return fmt.Errorf("nodes.checkpoint: node %s is a %s, which has no ckpt_name or unet_name input; want a loader such as CheckpointLoaderSimple or UNETLoader", id, wf[id].ClassType)
			}
			r.checkpoints = append(r.checkpoints, b)
		}
	}
	return nil
}

// isLoraLoader: a node that loads a LoRA file onto a model.
func (wf workflow) isLoraLoader(id string) bool {
	return wf.literal(id, "lora_name")
}

// loraLoaders returns the ids of every LoRA loader of the workflow, in id
// order.
func (wf workflow) loraLoaders() []string {
	var out []string
	for id := range wf {
		if wf.isLoraLoader(id) {
			out = append(out, id)
		}
	}
	sortIDs(out)
	return out
}

// loaders describes every LoRA loader of the workflow, for messages.
func (wf workflow) loaders() []string {
	var out []string
	for _, id := range wf.loraLoaders() {
		d := wf.describe(id)
		if name, ok := wf[id].Inputs["lora_name"].(string); ok {
			d += " " + name
		}
		out = append(out, d)
	}
	return out
}
