// Package fakegen makes the images of `lifeos comfy serve --fake`: for a
// patched ComfyUI prompt, a picture derived from reference photos of the
// person, the same for the same (LoRA content, prompt text, seed). Most are
// mild variations of a reference photo; a share are the failures a real
// generation has (another face, plastic skin, noise, under-exposure), and
// that share depends on the LoRA file, so a better LoRA grades higher. The
// failures are those the scorers are measured against (internal/alter's
// variants: bilateral 4/40, noise sigma 12, 2 stops under).
package fakegen

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/lifeos/lifeos/internal/alter"
	"github.com/lifeos/lifeos/internal/lazyre"
)

// Generator renders prompts.
type Generator struct {
	// References are photos of the person; Others, of other people (the
	// wrong-face failure).
	References, Others []image.Image
	// LoraDir holds the LoRA files named by the prompts' lora_name.
	LoraDir string
}

// Defects are the failures a bad image shows, in the order drawn.
var Defects = []string{"other face", "smoothed skin", "noise", "under-exposed"}

// qualityLine is how a stand-in LoRA states its quality: a file whose
// first line is "lifeos-fake-lora quality=0.85" gives 85% good images.
// Any other file's quality comes from its content's SHA-256 (0.4-0.9).
var qualityLine = lazyre.New(`^lifeos-fake-lora quality=([0-9.]+)`)

// Quality is the share of good images a LoRA file gives, and its digest.
func Quality(path string) (float64, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, [32]byte{}, err
	}
	sum := sha256.Sum256(data)
	if m := qualityLine().FindSubmatch(data); m != nil {
		q, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil || q < 0 || q > 1 {
			return 0, sum, fmt.Errorf("%s: quality: want 0..1, got %s", path, m[1])
		}
		return q, sum, nil
	}
	return 0.4 + 0.5*float64(sum[0])/255, sum, nil
}

// Render makes the image of a prompt (API format, as patched by lifeos).
func (g *Generator) Render(prompt map[string]any) (image.Image, error) {
	if len(g.References) == 0 {
		return nil, errors.New("no reference photos")
	}
	var texts, seeds, loras []string
	for _, v := range prompt {
		n, _ := v.(map[string]any)
		in, _ := n["inputs"].(map[string]any)
		for _, k := range []string{"text", "text_g", "t5xxl"} {
			if s, ok := in[k].(string); ok {
				texts = append(texts, s)
			}
		}
		for _, k := range []string{"seed", "noise_seed"} {
			if v, ok := in[k]; ok {
				seeds = append(seeds, fmt.Sprint(v))
			}
		}
		if s, ok := in["lora_name"].(string); ok {
			loras = append(loras, s)
		}
	}
	slices.Sort(texts)
	slices.Sort(seeds)
	slices.Sort(loras)
	h := sha256.New()
	fmt.Fprintf(h, "texts %q\nseeds %q\n", texts, seeds)
	quality := 0.5 // no LoRA: the base model does not know the person well
	for i, name := range loras {
		q, sum, err := Quality(filepath.Join(g.LoraDir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("lora %s: %w", name, err)
		}
		h.Write(sum[:])
		if i == 0 {
			quality = q
		}
	}
	var key [32]byte
	h.Sum(key[:0])
	r := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:16])))
	ref := g.References[r.IntN(len(g.References))]
	// A good image varies without resampling (a whole-pixel shift, a
	// mirror, light): interpolation smooths skin, which the realism score
	// rightly calls a defect.
	vary := func(img image.Image) image.Image {
		side := float64(min(img.Bounds().Dx(), img.Bounds().Dy()))
		dx, dy := math.Round((r.Float64()*2-1)*0.03*side), math.Round((r.Float64()*2-1)*0.03*side)
		if r.IntN(2) == 1 {
			img = alter.FlipH(img)
		}
		return alter.Brightness(alter.Affine(img, 0, 1, dx, dy), 0.95+r.Float64()*0.1)
	}
	if r.Float64() < quality {
		return vary(ref), nil
	}
	switch d := Defects[r.IntN(len(Defects))]; {
	case d == "other face" && len(g.Others) > 0:
		return vary(g.Others[r.IntN(len(g.Others))]), nil
	case d == "smoothed skin":
		return alter.Bilateral(vary(ref), 4, 40), nil
	case d == "noise":
		return alter.Noise(vary(ref), 12, r.Uint64()), nil
	default:
		return alter.Stops(vary(ref), -2), nil
	}
}
