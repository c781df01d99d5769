package steps

import (
	"encoding/json"
	"strings"
	"testing"
)

const sumA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const sumB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func TestItemJSON(t *testing.T) {
	it := Item{Path: "a.png", SHA256: sumA, Width: 2, Height: 3, Fields: map[string]any{"seed": 7, "sharp": map[string]any{"sharpness": 0.5}}}
	b, err := json.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"height":3,"path":"a.png","seed":7,"sha256":"` + sumA + `","sharp":{"sharpness":0.5},"width":2}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back Item
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Path != "a.png" || back.Width != 2 || back.Fields["seed"] != 7.0 {
		t.Errorf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"path": "x.png"}`), &back); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("item without digest accepted: %v", err)
	}
}

func TestMergeItems(t *testing.T) {
	a := Item{Path: "a.png", SHA256: sumA, Fields: map[string]any{"face": 1}}
	b := Item{Path: "b.png", SHA256: sumB, Fields: map[string]any{}}
	a2 := Item{Path: "a.png", SHA256: sumA, Fields: map[string]any{"skin": 2}}
	got := MergeItems([]Item{a, b}, []Item{a2})
	if len(got) != 2 || got[0].Path != "a.png" || got[0].Fields["face"] != 1 || got[0].Fields["skin"] != 2 || got[1].Path != "b.png" {
		t.Errorf("merged: %+v", got)
	}
	if _, ok := a.Fields["skin"]; ok {
		t.Error("merge modified its input")
	}
}

// One list without repeated digests is its own merge; repeated digests
// are still merged, the later fields winning.
func TestMergeItemsOneList(t *testing.T) {
	a := Item{Path: "a.png", SHA256: strings.Repeat("a", 64), Fields: map[string]any{"s": map[string]any{"x": 1.0}}}
	b := Item{Path: "b.png", SHA256: strings.Repeat("b", 64), Fields: map[string]any{}}
	list := []Item{a, b}
	if got := MergeItems(list); len(got) != 2 || &got[0] != &list[0] {
		t.Errorf("a list without repeats was copied or changed: %v", got)
	}
	a2 := Item{Path: "copy-of-a.png", SHA256: a.SHA256, Fields: map[string]any{"t": 2.0}}
	got := MergeItems([]Item{a, b, a2})
	if len(got) != 2 || got[0].Path != "a.png" || got[0].Fields["t"] != 2.0 || got[0].Fields["s"] == nil {
		t.Errorf("repeats not merged: %+v", got)
	}
	if _, changed := a.Fields["t"]; changed {
		t.Error("merging changed an input item")
	}
}
