package steps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/lifeos/lifeos/internal/jsontext"
	"github.com/tidwall/gjson"
)

const sumA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const sumB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

// withFields is it with fields set, for tests.
func withFields(t testing.TB, it Item, fields map[string]any) Item {
	t.Helper()
	it, err := it.WithFields(fields)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestItemJSON(t *testing.T) {
	it := withFields(t, Item{Path: "a.png", SHA256: sumA, Width: 2, Height: 3}, map[string]any{"seed": 7, "sharp": map[string]any{"sharpness": 0.5}})
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
	if !reflect.DeepEqual(back, it) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, it)
	}
	if seed, _ := back.Field("seed"); seed != 7.0 {
		t.Errorf("seed = %#v, want 7.0 as JSON reads it", seed)
	}
	if err := json.Unmarshal([]byte(`{"path": "x.png"}`), &back); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("item without digest accepted: %v", err)
	}
}

// An item's JSON is the JSON of its flat map, whatever its field names
// (before, between and after the four of its own) and values hold.
func TestItemJSONAsFlatMap(t *testing.T) {
	fields := map[string]any{
		"a": 1.5, "i": "x<y & \"q\"", "q": []any{1.0, "é", nil}, "z": map[string]any{"b": true, "a": "\u2028"},
		"sha": false, "path2": "\x01", "": "empty key", "heigh": 0.1, "wide\"key": "\\", "日本": 1e21,
	}
	for _, path := range []string{"a.png", "dir/é <b>.png", "tab\t.png"} {
		it := withFields(t, Item{Path: path, SHA256: sumA, Width: 640, Height: -1}, fields)
		got, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		flat := map[string]any{"path": path, "sha256": sumA, "width": 640, "height": -1}
		for k, v := range fields {
			flat[k] = v
		}
		want, _ := json.Marshal(flat)
		if !bytes.Equal(got, want) {
			t.Errorf("JSON\n got %s\nwant %s", got, want)
		}
		var back Item
		if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, it) {
			t.Errorf("round trip: %v\n got %+v\nwant %+v", err, back, it)
		}
		if names := it.FieldNames(); len(names) != len(fields) {
			t.Errorf("FieldNames = %q", names)
		}
		var m map[string]any
		json.Unmarshal(want, &m)
		for k := range flat {
			if itemCore[k] {
				delete(m, k)
			}
		}
		if !reflect.DeepEqual(it.Fields(), m) {
			t.Errorf("Fields =\n %#v\nwant %#v", it.Fields(), m)
		}
		for k, v := range m {
			if got, ok := it.Field(k); !ok || !reflect.DeepEqual(got, v) {
				t.Errorf("Field(%q) = %#v, %v; want %#v", k, got, ok, v)
			}
		}
		if _, ok := it.Field("b"); ok {
			t.Error("Field of a missing key found it")
		}
	}
}

func TestItemWith(t *testing.T) {
	it := Item{Path: "a.png", SHA256: sumA}
	a, err := it.With("s", map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.With("r", 2)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.With("s", "replaced")
	if err != nil {
		t.Fatal(err)
	}
	if len(it.FieldNames()) != 0 || len(a.FieldNames()) != 1 {
		t.Errorf("With changed the item it was called on: %q %q", it.FieldNames(), a.FieldNames())
	}
	want := map[string]any{"r": 2.0, "s": "replaced"}
	if !reflect.DeepEqual(c.Fields(), want) {
		t.Errorf("fields = %v, want %v", c.Fields(), want)
	}
	if _, err := it.With("nan", math.NaN()); err == nil || !strings.Contains(err.Error(), "a.png: field nan") {
		t.Errorf("a NaN field: %v", err)
	}
	if _, err := it.With("path", "b.png"); err == nil {
		t.Error("With set the item's own path as a field")
	}
	if _, err := it.WithFields(map[string]any{"ok": 1, "width": 3}); err == nil {
		t.Error("WithFields set the item's own width as a field")
	}
}

func TestMergeItems(t *testing.T) {
	a := withFields(t, Item{Path: "a.png", SHA256: sumA}, map[string]any{"face": 1})
	b := Item{Path: "b.png", SHA256: sumB}
	a2 := withFields(t, Item{Path: "a.png", SHA256: sumA}, map[string]any{"skin": 2})
	got := MergeItems([]Item{a, b}, []Item{a2})
	want := map[string]any{"face": 1.0, "skin": 2.0}
	if len(got) != 2 || got[0].Path != "a.png" || !reflect.DeepEqual(got[0].Fields(), want) || got[1].Path != "b.png" {
		t.Errorf("merged: %+v", got)
	}
	if _, ok := a.Field("skin"); ok {
		t.Error("merge modified its input")
	}
}

// One list without repeated digests is its own merge; repeated digests
// are still merged, the later fields winning.
func TestMergeItemsOneList(t *testing.T) {
	a := withFields(t, Item{Path: "a.png", SHA256: strings.Repeat("a", 64)}, map[string]any{"s": map[string]any{"x": 1.0}, "t": 1.0})
	b := Item{Path: "b.png", SHA256: strings.Repeat("b", 64)}
	list := []Item{a, b}
	if got := MergeItems(list); len(got) != 2 || &got[0] != &list[0] {
		t.Errorf("a list without repeats was copied or changed: %v", got)
	}
	a2 := withFields(t, Item{Path: "copy-of-a.png", SHA256: a.SHA256}, map[string]any{"t": 2.0, "u": 3.0})
	got := MergeItems([]Item{a, b, a2})
	want := map[string]any{"s": map[string]any{"x": 1.0}, "t": 2.0, "u": 3.0}
	if len(got) != 2 || got[0].Path != "a.png" || !reflect.DeepEqual(got[0].Fields(), want) {
		t.Errorf("repeats not merged: %+v", got)
	}
	if v, _ := a.Field("t"); v != 1.0 {
		t.Error("merging changed an input item")
	}
}

// ItemFromJSON reads an item as ItemFrom reads it decoded, whether its
// JSON is as lifeos writes it or not.
func TestItemFromJSON(t *testing.T) {
	written, _ := json.Marshal(withFields(t, Item{Path: "a.png", SHA256: sumA, Width: 3, Height: 4}, map[string]any{
		"a": 1e-7, "b": 1e21, "c": 123456789.0, "d": math.Copysign(0, -1), "e": "é <&>", "f": []any{}, "g": map[string]any{}, "z": map[string]any{"y": []any{1.5, nil, true, false}}}))
	for _, data := range []string{
		string(written),
		`{"path":"a.png","sha256":"` + sumA + `"}`,
		`{"path":"a.png","sha256":"` + sumA + `","width":1e3,"height":null,"x":1}`,
		`{"path": "a.png", "sha256": "` + sumA + `", "x": 1}`, // spaces
		`{"path":"a.png","sha256":"` + sumA + `","x":{"b":1, "a":2}}`,
		`{"path":"a.png","sha256":"` + sumA + `","y":1,"x":2}`, // unsorted
		`{"path":"a.png","sha256":"` + sumA + `","x":1,"x":2}`, // repeated
		`{"path":"a.png","sha256":"` + sumA + `","x":1.0,"y":1E2,"z":12345678901234567890}`,
		`{"path":"a\u00e9.png","sha256":"` + sumA + `","x":"\n\"","\u0079":"\u2028"}`,
		`{"path":"a.png","sha256":"` + sumA + `","path":"b.png","width":"7"}`,
		`{"path":"a.png","sha256":"short"}`,
		`{"path":"","sha256":"` + sumA + `"}`,
		`{"path":3,"sha256":"` + sumA + `"}`,
		`{"sha256":"` + sumA + `"}`,
		`[1]`, `"x"`, `null`,
	} {
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatal(err)
		}
		want, wantErr := ItemFrom(v)
		got, err := ItemFromJSON(data)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", data, got, err, want, wantErr)
		}
	}
}

// What lifeos writes is read as it is, not decoded and encoded again.
func TestCanonical(t *testing.T) {
	for _, v := range []any{0.0, 1.0, -2.5, 1e-7, 1e21, 1e20, 123456789.123, 5e-324, "", "é <&> \x7f", true, false, nil,
		math.Copysign(0, -1), []any{1.0, "x"}, map[string]any{"b": []any{}, "a": map[string]any{"": 1}, "é": nil}} {
		b, _ := jsontext.Marshal(v)
		if !canonical(gjson.Parse(string(b))) {
			t.Errorf("%s: not seen as canonical", b)
		}
	}
	for _, s := range []string{`1.0`, `1e3`, `"\n"`, `"\u00e9"`, `"\u2028"`, "\"\u2028\"", `[1, 2]`, `{"b":1,"a":2}`, `{"a":1,"a":2}`, `{ "a":1}`, `[1e400]`} {
		if canonical(gjson.Parse(s)) {
			t.Errorf("%s: seen as canonical", s)
		}
	}
}

func FuzzItemFromJSON(f *testing.F) {
	f.Add(`{"path":"a.png","sha256":"` + sumA + `","x":{"a":[1,"é"]}}`)
	f.Add(`{"path":"a.png","sha256":"` + sumA + `","x":1.50}`)
	f.Fuzz(func(t *testing.T, data string) {
		var v any
		if json.Unmarshal([]byte(data), &v) != nil {
			return
		}
		want, wantErr := ItemFrom(v)
		got, err := ItemFromJSON(data)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", data, got, err, want, wantErr)
		}
	})
}

// The per-item costs of a 100,000-image batch: every step after a score
// reads each item back (ItemFromJSON), and a score or filter sets a field
// on each (With).
func BenchmarkItemFromJSON(b *testing.B) {
	data := `{"height":8,"path":"shots/img_000123.png","sha256":"` + sumA + `","sharp":{"sharpness":0.9923},"width":8}`
	for b.Loop() {
		if _, err := ItemFromJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkItemWith(b *testing.B) {
	it := Item{Path: "shots/img_000123.png", SHA256: sumA, Width: 8, Height: 8}
	m := map[string]any{"sharpness": 0.9923}
	for b.Loop() {
		if _, err := it.With("sharp", m); err != nil {
			b.Fatal(err)
		}
	}
}
