package skin_test

import (
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"testing"

	"github.com/lifeos/lifeos/internal/alter"
	"github.com/lifeos/lifeos/internal/facedetect"
	"github.com/lifeos/lifeos/internal/skin"
)

func load(t *testing.T, name string) image.Image {
	t.Helper()
	f, err := os.Open("../../testdata/images/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// measure measures an image's skin on its largest face, as the skin
// scorer does.
func measure(t *testing.T, img image.Image) skin.Stats {
	t.Helper()
	faces, err := facedetect.Detect(img)
	if err != nil || len(faces) == 0 {
		t.Fatalf("no face (%v)", err)
	}
	return skin.Measure(img, faces[0].Square(), true)
}

func variant(t *testing.T, name string) alter.Variant {
	for _, v := range alter.Variants() {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no variant %q", name)
	return alter.Variant{}
}

// Against a profile of a portrait's own mild copies, another mild copy is
// real and each kind of defect is not: too smooth (blur, beauty filter,
// upscaling, heavy JPEG) and too rough (noise, over-sharpening) alike.
func TestRealismIsTwoSided(t *testing.T) {
	skipShort(t)
	for _, name := range []string{"portrait-astronaut-eileen-collins.png", "portrait-grace-hopper.png"} {
		img := load(t, name)
		refs := []skin.Stats{measure(t, img)}
		for _, v := range []string{"mirror", "brightness x1.1", "jpeg q90", "downscale x0.8"} {
			refs = append(refs, measure(t, variant(t, v).Make(img)))
		}
		p := skin.NewProfile(refs)
		if p.N != len(refs) {
			t.Fatalf("%s: profile of %d photos, want %d", name, p.N, len(refs))
		}
		for _, v := range []string{"shift 6px", "crop 90%", "brightness x0.9"} {
			if r := p.Realism(measure(t, variant(t, v).Make(img))); r < 0.9 {
				t.Errorf("%s, %s: realism %.3f, want a real photo's (>= 0.9)", name, v, r)
			}
		}
		for _, v := range []string{"noise sigma 8", "unsharp sigma 1 amount 2", "blur sigma 2", "bilateral 3/25", "jpeg q20", "down-up x0.33"} {
			if r := p.Realism(measure(t, variant(t, v).Make(img))); r >= 0.5 {
				t.Errorf("%s, %s: realism %.3f, want it rejected (< 0.5)", name, v, r)
			}
		}
	}
}

// Noise is counted as noise, not as skin texture: adding it raises Noise
// several times over and leaves the noise-corrected texture within reach
// of the original's.
func TestNoiseIsNotTexture(t *testing.T) {
	skipShort(t)
	img := load(t, "portrait-grace-hopper.png")
	clean, noisy := measure(t, img), measure(t, variant(t, "noise sigma 8").Make(img))
	if noisy.Noise < 3*clean.Noise {
		t.Errorf("noise %.3f clean, %.3f with sigma 8 added: want it at least 3x", clean.Noise, noisy.Noise)
	}
	if noisy.Fine > 1.3*clean.Fine {
		t.Errorf("texture %.3f clean, %.3f with noise: the noise was counted as texture", clean.Fine, noisy.Fine)
	}
}

// Off a face, a picture without skin has no statistics and no realism.
func TestNoSkinNoRealism(t *testing.T) {
	img := load(t, "texture-brick.png")
	st := skin.Measure(img, img.Bounds(), false)
	if st.Pixels != 0 || skin.Default.Realism(st) != 0 {
		t.Errorf("brick wall: %+v, realism %v; want no skin pixels and 0", st, skin.Default.Realism(st))
	}
}

// BenchmarkMeasureFace1024 measures the skin of the face in a 1024x1024
// portrait (the astronaut, doubled), as the skin scorer does per image
// once the face is found.
func BenchmarkMeasureFace1024(b *testing.B) {
	src := alter.Affine(load(&testing.T{}, "portrait-astronaut-eileen-collins.png"), 0, 1, 0, 0)
	img := image.NewNRGBA(image.Rect(0, 0, 1024, 1024))
	for y := range 1024 {
		for x := range 1024 {
			img.Set(x, y, src.At(x/2, y/2))
		}
	}
	faces, err := facedetect.Detect(img)
	if err != nil || len(faces) == 0 {
		b.Fatal("no face")
	}
	r := faces[0].Square()
	for b.Loop() {
		skin.Measure(img, r, true)
	}
}

// One reference photo says nothing about a person's spread: the
// astronaut's portrait passes against her mirrored, brighter JPEG copy
// alone (the JPEG has 70% less noise), and noise still fails.
func TestOneReferenceIsLenient(t *testing.T) {
	skipShort(t)
	f, err := os.Open("../../testdata/faces/astronaut-mirrored-brighter.jpg")
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := image.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := skin.NewProfile([]skin.Stats{measure(t, ref)})
	img := load(t, "portrait-astronaut-eileen-collins.png")
	if r := p.Realism(measure(t, img)); r < 0.5 {
		t.Errorf("the portrait against its own copy: realism %.3f, want >= 0.5", r)
	}
	if r := p.Realism(measure(t, variant(t, "noise sigma 8").Make(img))); r >= 0.5 {
		t.Errorf("the portrait with noise: realism %.3f, want < 0.5", r)
	}
}

// skipShort skips image-heavy tests under -short (CI's race pass).
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("image processing; run without -short")
	}
}
