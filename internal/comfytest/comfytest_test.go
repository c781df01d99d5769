package comfytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// With LoraDir, the LoRAs are that folder's files, read on every request:
// /models/loras lists them and /object_info offers them in LoraLoader's
// combo, as ComfyUI does; an unknown class is {}.
func TestLoraDir(t *testing.T) {
	dir := testdir.New(t)
	_, h := Handler(Options{LoraDir: dir})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	get("/models/loras", &names)
	if len(names) != 0 {
		t.Errorf("an empty folder lists %v", names)
	}
	os.MkdirAll(filepath.Join(dir, "people"), 0o777)
	os.WriteFile(filepath.Join(dir, "people", "b.safetensors"), nil, 0o666)
	os.WriteFile(filepath.Join(dir, "a.safetensors"), nil, 0o666)
	get("/models/loras", &names)
	if want := []string{"a.safetensors", "people/b.safetensors"}; !reflect.DeepEqual(names, want) {
		t.Errorf("loras %v, want %v", names, want)
	}
	var info map[string]struct {
		Input struct {
			Required map[string][]any `json:"required"`
		} `json:"input"`
	}
	get("/object_info/LoraLoader", &info)
	combo := info["LoraLoader"].Input.Required["lora_name"]
	if len(combo) != 2 || !reflect.DeepEqual(combo[0], []any{"a.safetensors", "people/b.safetensors"}) {
		t.Errorf("LoraLoader combo %v", combo)
	}
	var none map[string]any
	get("/object_info/NoSuchNode", &none)
	if len(none) != 0 {
		t.Errorf("an unknown class gave %v", none)
	}
}
