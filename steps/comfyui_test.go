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
)

func loadTestWorkflow(t *testing.T) workflow {
	t.Helper()
	data, err := os.ReadFile("testdata/sdxl_lora_api.json")
	if err != nil {
		t.Fatal(err)
	}
	wf, err := parseWorkflow("sdxl_lora_api.json", data)
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func TestPatchWorkflow(t *testing.T) {
	wf := loadTestWorkflow(t)
	cfg, strength, clip := 5.5, 0.8, 0.6
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "amira.safetensors", Strength: &strength, StrengthClip: &clip},
		Sampler: &SamplerSpec{Steps: 28, CFG: &cfg, SamplerName: "dpmpp_2m", Scheduler: "karras"},
		Size:    &SizeSpec{Width: 832, Height: 1216}}
	r, err := wf.findRoles(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.sampler != "3" || !slices.Equal(r.positive, []string{"6"}) || !slices.Equal(r.negative, []string{"7"}) || r.latent != "5" || len(r.loras) != 1 || r.loras[0] != "10" {
		t.Fatalf("roles = %+v", r)
	}
	p := g.patch(wf, r, genJob{prompt: "portrait", seed: 42})
	for _, tc := range []struct {
		node, input string
		want        any
	}{
		{"6", "text", "portrait"}, {"7", "text", "blurry"}, {"3", "seed", int64(42)}, {"3", "steps", 28},
		{"3", "cfg", 5.5}, {"3", "sampler_name", "dpmpp_2m"}, {"3", "scheduler", "karras"},
		{"5", "width", 832}, {"5", "height", 1216},
		{"10", "lora_name", "amira.safetensors"}, {"10", "strength_model", 0.8}, {"10", "strength_clip", 0.6},
	} {
		if got := p[tc.node].Inputs[tc.input]; got != tc.want {
			t.Errorf("node %s %s = %v (%T), want %v", tc.node, tc.input, got, got, tc.want)
		}
	}
	if wf["6"].Inputs["text"] != "positive" {
		t.Error("patch changed the original workflow")
	}
}

func TestWorkflowErrors(t *testing.T) {
	ui := `{"last_node_id": 9, "nodes": [], "links": []}`
	if _, err := parseWorkflow("ui.json", []byte(ui)); err == nil || !strings.Contains(err.Error(), "Export (API)") {
		t.Errorf("UI format: err = %v", err)
	}
	wf := loadTestWorkflow(t)
	wf["11"] = &wfNode{ClassType: "KSampler", Inputs: map[string]any{}, Meta: map[string]any{"title": "Refiner"}}
	_, err := wf.findRoles(nil, 0)
	if err == nil || !strings.Contains(err.Error(), `KSampler #3, KSampler #11 ("Refiner")`) || !strings.Contains(err.Error(), "nodes: {sampler: <id>}") {
		t.Errorf("two samplers: err = %v", err)
	}
	if _, err := wf.findRoles(map[string]string{"sampler": "3"}, 0); err != nil {
		t.Errorf("explicit sampler: %v", err)
	}
	if _, err := wf.findRoles(map[string]string{"sampler": "3"}, 2); err == nil || !strings.Contains(err.Error(), "2 LoRA(s) to set (lora: sets one, loras: a list) but 1 LoraLoader") {
		t.Errorf("two loras, one loader: err = %v", err)
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
		{map[string]string{"lora": ""}, `nodes.lora: "": want LoraLoader node ids separated by commas`},
		{map[string]string{"lora": "4"}, "nodes.lora: node 4 is a CheckpointLoaderSimple, want LoraLoader or LoraLoaderModelOnly"},
		{map[string]string{"positive": "5"}, "nodes.positive: node 5 is a EmptyLatentImage, which has no text input"},
		{map[string]string{"negative": "42"}, `nodes.negative: the workflow has no node "42"`},
		{map[string]string{"latent": "6"}, "nodes.latent: node 6 is a CLIPTextEncode, which has no width and height inputs"},
		{map[string]string{"positive": "6,6"}, "nodes.positive: node 6 is listed twice"},
		{map[string]string{"positive": "6,5"}, "nodes.positive: node 5 is a EmptyLatentImage, which has no text input"},
	} {
		if _, err := wf.findRoles(tc.nodes, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nodes %v: err = %v, want %q", tc.nodes, err, tc.want)
		}
	}
}

// Several encoders take one prompt (an SDXL base and refiner's): each
// listed one gets the text.
func TestSeveralEncoders(t *testing.T) {
	wf := loadTestWorkflow(t)
	wf["17"] = &wfNode{ClassType: "CLIPTextEncode", Inputs: map[string]any{"text": "a photo of a cat"}}
	wf["18"] = &wfNode{ClassType: "CLIPTextEncode", Inputs: map[string]any{"text": "old negative"}}
	r, err := wf.findRoles(map[string]string{"positive": "6, 17", "negative": "7,18"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "a.safetensors"}}
	p := g.patch(wf, r, genJob{prompt: "portrait", seed: 1})
	for id, want := range map[string]string{"6": "portrait", "17": "portrait", "7": "blurry", "18": "blurry"} {
		if got := p[id].Inputs["text"]; got != want {
			t.Errorf("node %s text = %v, want %q", id, got, want)
		}
	}
}

// A sampler whose negative comes from ConditioningZeroOut (Flux) has no
// negative prompt: the workflow is accepted and the node left as it is.
func TestZeroOutNegative(t *testing.T) {
	wf := loadTestWorkflow(t)
	wf["20"] = &wfNode{ClassType: "ConditioningZeroOut", Inputs: map[string]any{"conditioning": []any{"6", 0.0}}}
	wf["3"].Inputs["negative"] = []any{"20", 0.0}
	r, err := wf.findRoles(nil, 1)
	if err != nil || !slices.Equal(r.negative, []string{"20"}) {
		t.Fatalf("roles %+v, err %v; want the ZeroOut node as the negative", r, err)
	}
	g := &Generate{Negative: "blurry", Lora: &LoraSpec{Name: "a.safetensors"}}
	p := g.patch(wf, r, genJob{prompt: "portrait", seed: 1})
	if _, has := p["20"].Inputs["text"]; has {
		t.Errorf("patch wrote a text into ConditioningZeroOut: %v", p["20"].Inputs)
	}
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
	if _, err := c.wait(ctx, "mine"); err == nil || !strings.Contains(err.Error(), "answered for another prompt (theirs)") {
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
	dir := t.TempDir()
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
