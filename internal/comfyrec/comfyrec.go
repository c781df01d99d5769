// Package comfyrec records what a real ComfyUI server answers, through a
// proxy, and replays it offline: a studio records once on a pod and its
// scenarios run in CI without one. An exchange is keyed by the prompt as
// submitted (canonical JSON, numbers exact); images are stored once, by
// content. A prompt that was not recorded is refused as ComfyUI refuses a
// workflow, naming the fields that differ from the closest recording.
//
// Layout of a recording:
//
//	DIR/prompts/<key>.json   the prompt, its /history entry, its images
//	DIR/images/<sha256>      image bytes
//	DIR/server/<name>.json   /system_stats, /object_info, /models/loras
package comfyrec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lifeos/lifeos/internal/atomicfile"
)

// maxBody bounds what is read of a request or an answer (JSON); images
// get maxImage.
const (
	maxBody  = 16 << 20
	maxImage = 64 << 20
)

// Exchange is one recorded prompt.
type Exchange struct {
	// Prompt is the graph as submitted (the "prompt" field of POST /prompt).
	Prompt map[string]any `json:"prompt"`
	// History is the prompt's /history entry once it finished; nil while
	// it had not.
	History json.RawMessage `json:"history,omitempty"`
	// Images are the image files the entry names, by "type/subfolder/
	// filename", as SHA-256 of their bytes in images/.
	Images map[string]string `json:"images,omitempty"`
}

// decode reads JSON keeping numbers exact (a 64-bit seed does not survive
// a float64).
func decode(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// Key is a prompt's recording key: SHA-256 of its canonical JSON (keys
// sorted, numbers as written).
func Key(prompt map[string]any) string {
	b, _ := json.Marshal(prompt) // maps marshal sorted; json.Number as written
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// viewKey names an image as /view is asked for it.
func viewKey(typ, sub, name string) string {
	if typ == "" {
		typ = "output"
	}
	return typ + "/" + sub + "/" + name
}

// entryImages lists the images a /history entry names.
func entryImages(entry json.RawMessage) []string {
	var e struct {
		Outputs map[string]struct {
			Images []struct {
				Filename  string `json:"filename"`
				Subfolder string `json:"subfolder"`
				Type      string `json:"type"`
			} `json:"images"`
		} `json:"outputs"`
	}
	json.Unmarshal(entry, &e)
	var out []string
	for _, o := range e.Outputs {
		for _, im := range o.Images {
			out = append(out, viewKey(im.Type, im.Subfolder, im.Filename))
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func saveJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(name, append(b, '\n'), 0o666)
}

// serverFiles are the server's own answers a recording keeps, by path.
var serverFiles = map[string]string{
	"/system_stats": "system_stats.json",
	"/object_info":  "object_info.json",
	"/models/loras": "models_loras.json",
}

// Load reads a recording.
func Load(dir string) (map[string]*Exchange, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "prompts"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("not a recording: it has no prompts/ (lifeos comfy record makes one)")
	}
	if err != nil {
		return nil, err
	}
	out := map[string]*Exchange{}
	for _, e := range entries {
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "prompts", e.Name()))
		if err != nil {
			return nil, err
		}
		var x Exchange
		if err := decode(data, &x); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "prompts", e.Name()), err)
		}
		out[key] = &x
	}
	return out, nil
}

// diff names the fields in which got differs from rec, as
// "node 3 (KSampler) seed: recorded 1000, got 2000", by node.
func diff(rec, got map[string]any) map[string][]string {
	out := map[string][]string{}
	ids := map[string]bool{}
	for id := range rec {
		ids[id] = true
	}
	for id := range got {
		ids[id] = true
	}
	for id := range ids {
		r, _ := rec[id].(map[string]any)
		g, _ := got[id].(map[string]any)
		switch {
		case r == nil:
			out[id] = append(out[id], "node not in the recording")
			continue
		case g == nil:
			out[id] = append(out[id], "node missing (the recording has it)")
			continue
		}
		if fmt.Sprint(r["class_type"]) != fmt.Sprint(g["class_type"]) {
			out[id] = append(out[id], fmt.Sprintf("class_type: recorded %v, got %v", r["class_type"], g["class_type"]))
			continue
		}
		ri, _ := r["inputs"].(map[string]any)
		gi, _ := g["inputs"].(map[string]any)
		names := map[string]bool{}
		for k := range ri {
			names[k] = true
		}
		for k := range gi {
			names[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(names)) {
			rv, rok := ri[k]
			gv, gok := gi[k]
			rb, _ := json.Marshal(rv)
			gb, _ := json.Marshal(gv)
			switch {
			case !rok:
				out[id] = append(out[id], fmt.Sprintf("%s: not recorded, got %s", k, short(gb)))
			case !gok:
				out[id] = append(out[id], fmt.Sprintf("%s: recorded %s, got none", k, short(rb)))
			case !bytes.Equal(rb, gb):
				out[id] = append(out[id], fmt.Sprintf("%s: recorded %s, got %s", k, short(rb), short(gb)))
			}
		}
	}
	return out
}

func short(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func count(d map[string][]string) int {
	n := 0
	for _, l := range d {
		n += len(l)
	}
	return n
}

// closest is the recorded prompt that differs from got in the fewest
// fields (the first by key on a tie, so the answer is the same every
// time), with those differences; nil when nothing is recorded.
func closest(recs map[string]*Exchange, got map[string]any) (map[string]any, map[string][]string) {
	var best map[string]any
	var bestDiff map[string][]string
	bestN := 0
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		d := diff(recs[k].Prompt, got)
		if n := count(d); best == nil || n < bestN {
			best, bestDiff, bestN = recs[k].Prompt, d, n
		}
	}
	return best, bestDiff
}

// refusal is ComfyUI's 400 answer for a prompt the recording lacks: one
// node error per node that differs from the closest recorded prompt.
func refusal(recs map[string]*Exchange, got map[string]any) map[string]any {
	rec, d := closest(recs, got)
	ok := rec != nil
	nodeErrors := map[string]any{}
	if ok {
		for id, fields := range d {
			n, _ := got[id].(map[string]any)
			if n == nil { // a node only the recording has
				n, _ = rec[id].(map[string]any)
			}
			class := fmt.Sprint(n["class_type"])
			var errs []map[string]any
			for _, f := range fields {
				errs = append(errs, map[string]any{"type": "not_recorded", "message": "Not in the recording",
					"details": f, "extra_info": map[string]any{}})
			}
			nodeErrors[id] = map[string]any{"errors": errs, "dependent_outputs": []string{}, "class_type": class}
		}
	}
	msg := "Prompt not in the recording"
	if !ok {
		msg = "The recording holds no prompt"
	}
	return map[string]any{
		"error": map[string]any{"type": "prompt_not_recorded", "message": msg,
			"details": fmt.Sprintf("%d recorded prompts; the closest differs as node_errors say", len(recs)), "extra_info": map[string]any{}},
		"node_errors": nodeErrors,
	}
}

// readBody reads a request body up to maxBody.
func readBody(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err == nil && len(data) > maxBody {
		err = fmt.Errorf("body over %d bytes", maxBody)
	}
	return data, err
}
