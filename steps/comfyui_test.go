package steps

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func loadWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := parseWorkflow(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func loadTestWorkflow(t *testing.T) workflow { return loadWorkflow(t, "sdxl_lora_api.json") }

// patched plans and patches a workflow for one image.
func patched(t *testing.T, g *Generate, wf workflow) workflow {
	t.Helper()
	p, err := g.plan(wf)
	if err != nil {
		t.Fatal(err)
	}
	return g.patch(wf, p, genJob{prompt: "portrait", seed: 42})
}

type want struct {
	node, input string
	value       any
}

func checkInputs(t *testing.T, p workflow, wants []want) {
	t.Helper()
	for _, w := range wants {
		if got := p[w.node].Inputs[w.input]; got != w.value {
			t.Errorf("node %s %s = %v (%T), want %v (%T)", w.node, w.input, got, got, w.value, w.value)
		}
	}
}

func TestPatchWorkflow(t *testing.T) {
	wf := loadTestWorkflow(t)
	cfg, strength, clip := 5.5, 0.8, 0.6
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "amira.safetensors", Strength: &strength, StrengthClip: &clip},
		Sampler: &SamplerSpec{Steps: 28, CFG: &cfg, SamplerName: "dpmpp_2m", Scheduler: "karras"},
		Size:    &SizeSpec{Width: 832, Height: 1216}, Checkpoint: "juggernaut.safetensors"}
	p := patched(t, g, wf)
	checkInputs(t, p, []want{
		{"6", "text", "portrait"}, {"7", "text", "blurry"}, {"3", "seed", int64(42)}, {"3", "steps", 28},
		{"3", "cfg", 5.5}, {"3", "sampler_name", "dpmpp_2m"}, {"3", "scheduler", "karras"},
		{"5", "width", 832}, {"5", "height", 1216}, {"4", "ckpt_name", "juggernaut.safetensors"},
		{"10", "lora_name", "amira.safetensors"}, {"10", "strength_model", 0.8}, {"10", "strength_clip", 0.6},
	})
	if wf["6"].Inputs["text"] != "positive" {
		t.Error("patch changed the original workflow")
	}
}

// Only what the step sets is patched: no cfg, sampler or size is forced.
func TestPatchOnlyWhatIsSet(t *testing.T) {
	wf := loadTestWorkflow(t)
	p := patched(t, &Generate{Lora: &LoraSpec{Name: "a.safetensors"}}, wf)
	checkInputs(t, p, []want{
		{"3", "seed", int64(42)}, {"3", "steps", 20.0}, {"3", "cfg", 7.0}, {"3", "sampler_name", "euler"},
		{"5", "width", 1024.0}, {"7", "text", "negative"}, {"10", "strength_model", 1.0}, {"4", "ckpt_name", "sd_xl_base_1.0.safetensors"},
	})
}

// SDXL base + refiner: both samplers get the seed, both sides' encoders
// of both models get the texts, and the steps move together so that the
// refiner starts where the base stops.
func TestPatchSDXLRefiner(t *testing.T) {
	wf := loadWorkflow(t, "sdxl_refiner_api.json")
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "amira.safetensors"}, Sampler: &SamplerSpec{Steps: 28}, Checkpoint: "base2.safetensors"}
	p := patched(t, g, wf)
	checkInputs(t, p, []want{
		{"10", "noise_seed", int64(42)}, {"11", "noise_seed", int64(42)},
		{"6", "text", "portrait"}, {"15", "text", "portrait"}, {"7", "text", "blurry"}, {"16", "text", "blurry"},
		{"10", "steps", 28}, {"11", "steps", 28}, {"10", "end_at_step", 22}, {"11", "start_at_step", 22}, {"11", "end_at_step", 10000.0},
		{"10", "start_at_step", 0}, {"20", "lora_name", "amira.safetensors"},
		{"4", "ckpt_name", "base2.safetensors"}, {"12", "ckpt_name", "sd_xl_refiner_1.0.safetensors"},
	})
	// A refiner that does not start where the base stops is refused with
	// the numbers.
	wf["11"].Inputs["start_at_step"] = 30.0
	_, err := (&Generate{Workflow: "w.json", Lora: &LoraSpec{Name: "a"}}).plan(wf)
	if err == nil || !strings.Contains(err.Error(), `KSamplerAdvanced #11 ("KSampler (Advanced) - REFINER") starts at step 30 of 40, but KSamplerAdvanced #10 ("KSampler (Advanced) - BASE") ends at step 32 of 40`) {
		t.Errorf("inconsistent refiner: err = %v", err)
	}
}

// Flux with SamplerCustomAdvanced: the seed goes to RandomNoise, the prompt
// through BasicGuider and FluxGuidance to the encoder, the LoRA past
// ModelSamplingFlux, the checkpoint to the UNET loader; a cfg has nowhere
// to go and is refused rather than dropped.
func TestPatchFlux(t *testing.T) {
	wf := loadWorkflow(t, "flux_api.json")
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "amira.safetensors"}, Sampler: &SamplerSpec{Steps: 24, SamplerName: "dpmpp_2m", Scheduler: "beta"},
		Checkpoint: "flux1-schnell.safetensors", Size: &SizeSpec{Width: 832, Height: 1216}}
	p := patched(t, g, wf)
	checkInputs(t, p, []want{
		{"25", "noise_seed", int64(42)}, {"6", "text", "portrait"}, {"31", "lora_name", "amira.safetensors"},
		{"17", "steps", 24}, {"16", "sampler_name", "dpmpp_2m"}, {"17", "scheduler", "beta"},
		{"12", "unet_name", "flux1-schnell.safetensors"}, {"27", "width", 832}, {"27", "height", 1216},
	})
	pl, _ := g.plan(wf)
	if len(pl.notes) != 1 || !strings.Contains(pl.notes[0], "negative is not used") {
		t.Errorf("notes = %q, want one saying the negative is not used", pl.notes)
	}
	cfg := 3.5
	_, err := (&Generate{Workflow: "flux.json", Lora: &LoraSpec{Name: "a"}, Sampler: &SamplerSpec{CFG: &cfg}}).plan(wf)
	if err == nil || !strings.Contains(err.Error(), "sampler.cfg: no sampling node of this workflow has a cfg input") {
		t.Errorf("cfg on Flux: err = %v", err)
	}
}

// Flux through KSampler: the negative comes from ConditioningZeroOut of
// the positive encoder, which means "no negative" and is left alone.
func TestPatchFluxZeroOut(t *testing.T) {
	wf := loadWorkflow(t, "flux_ksampler_api.json")
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "a.safetensors"}}
	p := patched(t, g, wf)
	checkInputs(t, p, []want{{"31", "seed", int64(42)}, {"6", "text", "portrait"}, {"31", "cfg", 1.0}})
	if _, has := p["33"].Inputs["text"]; has {
		t.Errorf("patch wrote a text into ConditioningZeroOut: %v", p["33"].Inputs)
	}
}

// Three chained LoRAs: by position, or each by its loader's title, id or
// current file; a named one may be set alone.
func TestPatchLorasByName(t *testing.T) {
	wf := loadWorkflow(t, "sd15_3loras_api.json")
	p := patched(t, &Generate{Loras: []LoraSpec{{Name: "a"}, {Name: "b"}, {Name: "c"}}}, wf)
	checkInputs(t, p, []want{{"10", "lora_name", "a"}, {"11", "lora_name", "b"}, {"12", "lora_name", "c"}})
	s := 0.9
	p = patched(t, &Generate{Loras: []LoraSpec{{Name: "d", Node: "Detail"}, {Name: "p", Node: "person_v1.safetensors", Strength: &s}, {Name: "s", Node: "11"}}}, wf)
	checkInputs(t, p, []want{{"10", "lora_name", "p"}, {"10", "strength_model", 0.9}, {"11", "lora_name", "s"}, {"12", "lora_name", "d"}, {"12", "strength_model", 0.3}})
	p = patched(t, &Generate{Lora: &LoraSpec{Name: "amira_v4", Node: "Person"}}, wf)
	checkInputs(t, p, []want{{"10", "lora_name", "amira_v4"}, {"11", "lora_name", "film_grain.safetensors"}})
	for _, tc := range []struct {
		g    *Generate
		want string
	}{
		{&Generate{Lora: &LoraSpec{Name: "x"}}, "1 LoRA(s) to set by chain position (lora: sets one, loras: a list) but 3 LoRA loader(s) chained into the samplers' model (all loaders: LoraLoader #10 (\"Person\") person_v1.safetensors"},
		{&Generate{Lora: &LoraSpec{Name: "x", Node: "Face"}}, `lora.node "Face": no LoRA loader has that id, title or lora_name`},
		{&Generate{Loras: []LoraSpec{{Name: "x", Node: "10"}, {Name: "y", Node: "Person"}}}, `loras[1].node "Person": LoraLoader #10 ("Person") is already given another LoRA`},
		{&Generate{Loras: []LoraSpec{{Name: "x", Node: "10"}, {Name: "y"}}}, "1 LoRA(s) to set by chain position (lora: sets one, loras: a list) but 2 LoRA loader(s) chained into the samplers' model besides the named ones"},
	} {
		if _, err := tc.g.plan(wf); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.g.loras(), err, tc.want)
		}
	}
}

func TestWorkflowErrors(t *testing.T) {
	ui := `{"last_node_id": 9, "nodes": [], "links": []}`
	if _, err := parseWorkflow("ui.json", []byte(ui)); err == nil || !strings.Contains(err.Error(), "Export (API)") {
		t.Errorf("UI format: err = %v", err)
	}
	// A conditioning node lifeos cannot follow is named, not skipped.
	wf := loadTestWorkflow(t)
	wf["30"] = &wfNode{ClassType: "CustomConditioner", Inputs: map[string]any{"strength": 1.0}}
	wf["3"].Inputs["positive"] = []any{"30", 0.0}
	if _, err := wf.findRoles(nil); err == nil || !strings.Contains(err.Error(), "the positive prompt of KSampler #3 comes from CustomConditioner #30, which has no text input and no conditioning input lifeos can follow: name the encoders with nodes: {positive: <id>}") {
		t.Errorf("unknown conditioning node: err = %v", err)
	}
	// One encoder on both sides cannot take two texts.
	wf = loadTestWorkflow(t)
	wf["3"].Inputs["negative"] = []any{"6", 0.0}
	if _, err := wf.findRoles(nil); err == nil || !strings.Contains(err.Error(), `CLIPTextEncode #6 ("Positive") feeds both the positive and the negative`) {
		t.Errorf("shared encoder: err = %v", err)
	}
	// A ControlNet between the encoders and the sampler is followed output
	// by output.
	wf = loadTestWorkflow(t)
	wf["40"] = &wfNode{ClassType: "ControlNetApplyAdvanced", Inputs: map[string]any{"positive": []any{"6", 0.0}, "negative": []any{"7", 0.0}, "strength": 1.0}}
	wf["3"].Inputs["positive"] = []any{"40", 0.0}
	wf["3"].Inputs["negative"] = []any{"40", 1.0}
	r, err := wf.findRoles(nil)
	if err != nil || !slices.Equal(r.positive, []binding{{"6", "text"}}) || !slices.Equal(r.negative, []binding{{"7", "text"}}) {
		t.Errorf("through ControlNet: roles %+v, err %v", r, err)
	}
}

// Every id in nodes: names a node of a class its role can use; a wrong
// one is an error at validation, never a nil node at patch time.
func TestExplicitNodesChecked(t *testing.T) {
	wf := loadTestWorkflow(t)
	for _, tc := range []struct {
		nodes map[string]string
		want  string
	}{
		{map[string]string{"lora": "99"}, `nodes.lora: the workflow has no node "99"`},
		{map[string]string{"lora": ""}, `nodes.lora: "": want node ids separated by commas`},
		{map[string]string{"lora": "4"}, "nodes.lora: node 4 is a CheckpointLoaderSimple, want LoraLoader or LoraLoaderModelOnly"},
		{map[string]string{"positive": "5"}, "nodes.positive: node 5 is a EmptyLatentImage, which has no text input"},
		{map[string]string{"negative": "42"}, `nodes.negative: the workflow has no node "42"`},
		{map[string]string{"latent": "6"}, "nodes.latent: node 6 is a CLIPTextEncode, which has no width and height inputs"},
		{map[string]string{"positive": "6,6"}, "nodes.positive: node 6 is listed twice"},
		{map[string]string{"positive": "6,5"}, "nodes.positive: node 5 is a EmptyLatentImage, which has no text input"},
		{map[string]string{"sampler": "6"}, "nodes.sampler: node 6 is a CLIPTextEncode, which has no latent_image input"},
		{map[string]string{"checkpoint": "10"}, "nodes.checkpoint: node 10 is a LoraLoader, which has no ckpt_name or unet_name input"},
		{map[string]string{"vae": "8"}, "nodes.vae: unknown role; want one of sampler, positive, negative, latent, lora, checkpoint"},
	} {
		if _, err := wf.findRoles(tc.nodes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nodes %v: err = %v, want %q", tc.nodes, err, tc.want)
		}
	}
}

// Explicit encoders replace what the graph says: each listed one gets the
// text.
func TestSeveralEncoders(t *testing.T) {
	wf := loadTestWorkflow(t)
	wf["17"] = &wfNode{ClassType: "CLIPTextEncode", Inputs: map[string]any{"text": "a photo of a cat", "clip": []any{"4", 1.0}}}
	wf["18"] = &wfNode{ClassType: "CLIPTextEncode", Inputs: map[string]any{"text": "old negative", "clip": []any{"4", 1.0}}}
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "a.safetensors"}, Nodes: map[string]string{"positive": "6, 17", "negative": "7,18"}}
	p := patched(t, g, wf)
	checkInputs(t, p, []want{{"6", "text", "portrait"}, {"17", "text", "portrait"}, {"7", "text", "blurry"}, {"18", "text", "blurry"}})
}

func TestJobs(t *testing.T) {
	s := int64(100)
	g := &Generate{Seed: &s, Count: 5}
	jobs := g.jobs([]string{"a", "b"})
	if len(jobs) != 5 || jobs[4].prompt != "a" || jobs[4].seed != 104 || jobs[1].prompt != "b" {
		t.Errorf("seed+count jobs: %+v", jobs)
	}
	g = &Generate{Seeds: []int64{1, 2}}
	jobs = g.jobs([]string{"a", "b", "c"})
	if len(jobs) != 6 || jobs[5].prompt != "c" || jobs[5].seed != 2 {
		t.Errorf("prompts x seeds: %+v", jobs)
	}
}

// A server is not trusted with what it sends back: a body past the cap, a
// redirect to another host, a history entry for another prompt, data
// behind a valid PNG and a decompression bomb are each refused with a
// reason, never read whole or decoded.
func TestHostileComfyAnswers(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(pngBytes(t, 2, 2))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), 4096))
		case "/view":
			http.Redirect(w, r, other.URL+"/view", http.StatusFound)
		case "/history/mine":
			w.Write([]byte(`{"theirs": {"outputs": {}, "status": {"status_str": "success"}}}`))
		}
	}))
	defer srv.Close()
	c := newComfyClient(srv.URL, io.Discard)
	ctx := context.Background()
	if _, _, err := c.doLimit(ctx, http.MethodGet, "/big", nil, 1024); err == nil || !strings.Contains(err.Error(), "answer larger than") {
		t.Errorf("oversized body: err = %v", err)
	}
	if _, err := c.view(ctx, outputImage{Filename: "a.png", Type: "output"}); err == nil || !strings.Contains(err.Error(), "redirect to another host") {
		t.Errorf("redirect to another host: err = %v", err)
	}
	if _, err := c.wait(ctx, "mine", true); err == nil || !strings.Contains(err.Error(), "answered for another prompt (theirs)") {
		t.Errorf("history of another prompt: err = %v", err)
	}

	good := pngBytes(t, 4, 3)
	if w, h, format, err := decodeSize(good); err != nil || w != 4 || h != 3 || format != "png" {
		t.Fatalf("a plain PNG: %dx%d, %v", w, h, err)
	}
	if _, _, _, err := decodeSize(append(good, make([]byte, 1000)...)); err == nil || !strings.Contains(err.Error(), "1000 bytes after the end of the PNG") {
		t.Errorf("junk behind a PNG: err = %v", err)
	}
	bomb := append([]byte{}, good...)
	// IHDR starts at byte 8: length, "IHDR", width, height, ..., CRC.
	binary.BigEndian.PutUint32(bomb[16:], 20000)
	binary.BigEndian.PutUint32(bomb[20:], 20000)
	binary.BigEndian.PutUint32(bomb[29:], crc32.ChecksumIEEE(bomb[12:29]))
	if _, _, _, err := decodeSize(bomb); err == nil || !strings.Contains(err.Error(), "20000x20000 is more than 64 megapixels") {
		t.Errorf("decompression bomb: err = %v", err)
	}
	// The same header in a file: listing and scoring refuse it too.
	dir := testdir.New(t)
	if err := os.WriteFile(dir+"/bomb.png", bomb, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := DescribeImage(dir, "bomb.png"); err == nil || !strings.Contains(err.Error(), "more than 64 megapixels") {
		t.Errorf("listing a bomb: err = %v", err)
	}
	if _, err := loadItemImage(dir, Item{Path: "bomb.png"}); err == nil || !strings.Contains(err.Error(), "more than 64 megapixels") {
		t.Errorf("decoding a bomb: err = %v", err)
	}
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
