package fakegen

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/fixture"
	"github.com/lifeos/lifeos/internal/testdir"
)

func prompt(text string, seed int, lora string) map[string]any {
	p := map[string]any{
		"3": map[string]any{"class_type": "KSampler", "inputs": map[string]any{"seed": seed}},
		"6": map[string]any{"class_type": "CLIPTextEncode", "inputs": map[string]any{"text": text}},
	}
	if lora != "" {
		p["10"] = map[string]any{"class_type": "LoraLoader", "inputs": map[string]any{"lora_name": lora}}
	}
	return p
}

func encode(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The same (LoRA content, text, seed) gives the same image; a LoRA that
// states a higher quality gives more images of the person.
func TestRender(t *testing.T) {
	ref, err := fixture.Photo("ecollins")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := fixture.Photo("ghopper")
	dir := testdir.New(t)
	os.WriteFile(filepath.Join(dir, "v1.safetensors"), []byte("lifeos-fake-lora quality=0.2\n"), 0o666)
	os.WriteFile(filepath.Join(dir, "v2.safetensors"), []byte("lifeos-fake-lora quality=0.9\n"), 0o666)
	g := &Generator{References: []image.Image{ref}, Others: []image.Image{other}, LoraDir: dir}
	a, err := g.Render(prompt("photo of ecollins", 1, "v1.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := g.Render(prompt("photo of ecollins", 1, "v1.safetensors"))
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Error("the same prompt gave two images")
	}
	if _, err := g.Render(prompt("x", 1, "missing.safetensors")); err == nil {
		t.Error("a missing LoRA file rendered")
	}
	if testing.Short() {
		t.Skip("the share of good images takes 48 renders")
	}
	// Good images are the reference, varied: count how often an image is
	// close to it (brightness and roughness) over 24 seeds.
	good := func(lora string) int {
		n := 0
		for seed := range 24 {
			img, err := g.Render(prompt("photo of ecollins", seed, lora))
			if err != nil {
				t.Fatal(err)
			}
			if q, _, _ := Quality(filepath.Join(dir, lora)); q > 0 && close(img, ref) {
				n++
			}
		}
		return n
	}
	g1, g2 := good("v1.safetensors"), good("v2.safetensors")
	if g2 <= g1+6 {
		t.Errorf("close to the reference: %d of 24 with quality 0.2, %d with 0.9", g1, g2)
	}
}

// close says img is a mild variation of ref: no defect moved its mean
// brightness by more than a tenth, nor made it noisy.
func close(img, ref image.Image) bool {
	m := func(im image.Image) (mean float64) {
		b := im.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y += 4 {
			for x := b.Min.X; x < b.Max.X; x += 4 {
				r, g, bl, _ := im.At(x, y).RGBA()
				mean += float64(r+g+bl) / 3
			}
		}
		return mean / float64((b.Dx()/4)*(b.Dy()/4))
	}
	d := m(img) / m(ref)
	return d > 0.85 && d < 1.15 && roughness(img) < 1.5*roughness(ref)
}

func roughness(im image.Image) float64 {
	b := im.Bounds()
	var s float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X + 1; x < b.Max.X; x++ {
			r1, _, _, _ := im.At(x, y).RGBA()
			r0, _, _, _ := im.At(x-1, y).RGBA()
			s += abs(float64(r1) - float64(r0))
		}
	}
	return s
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
