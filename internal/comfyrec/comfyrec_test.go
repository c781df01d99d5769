package comfyrec

import (
	"strings"
	"testing"
)

func prompt(t *testing.T, js string) map[string]any {
	t.Helper()
	var p map[string]any
	if err := decode([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Keys keep numbers exact: two seeds a float64 cannot tell apart are two
// prompts.
func TestKeyExact(t *testing.T) {
	a := prompt(t, `{"3": {"class_type": "KSampler", "inputs": {"seed": 9007199254740993}}}`)
	b := prompt(t, `{"3": {"class_type": "KSampler", "inputs": {"seed": 9007199254740992}}}`)
	c := prompt(t, `{"3": {"inputs": {"seed": 9007199254740993}, "class_type": "KSampler"}}`)
	if Key(a) == Key(b) {
		t.Error("seeds 2^53+1 and 2^53 have one key")
	}
	if Key(a) != Key(c) {
		t.Error("the same prompt with its keys in another order has another key")
	}
}

func TestRefusalNamesTheClosest(t *testing.T) {
	recs := map[string]*Exchange{
		"a": {Prompt: prompt(t, `{"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["4", 0]}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}}}`)},
		"b": {Prompt: prompt(t, `{"3": {"class_type": "KSampler", "inputs": {"seed": 2, "steps": 30, "model": ["4", 0]}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog"}}}`)},
	}
	got := prompt(t, `{"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["4", 0]}}, "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cow"}}, "9": {"class_type": "SaveImage", "inputs": {}}}`)
	r := refusal(recs, got)
	ne := r["node_errors"].(map[string]any)
	if len(ne) != 2 {
		t.Fatalf("node_errors %v: want nodes 6 and 9", ne)
	}
	six := ne["6"].(map[string]any)
	details := six["errors"].([]map[string]any)[0]["details"]
	if details != `text: recorded "a cat", got "a cow"` || six["class_type"] != "CLIPTextEncode" {
		t.Errorf("node 6: %v", six)
	}
	if d := ne["9"].(map[string]any)["errors"].([]map[string]any)[0]["details"]; !strings.Contains(d.(string), "not in the recording") {
		t.Errorf("node 9: %v", d)
	}
	// A node only the recording has is named with the recording's class.
	missing := prompt(t, `{"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "model": ["4", 0]}}}`)
	six = refusal(recs, missing)["node_errors"].(map[string]any)["6"].(map[string]any)
	if six["class_type"] != "CLIPTextEncode" {
		t.Errorf("missing node 6: %v", six)
	}
}
