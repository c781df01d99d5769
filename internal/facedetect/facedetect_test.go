package facedetect

import (
	"encoding/json"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	pigo "github.com/esimov/pigo/core"

	"github.com/lifeos/lifeos/internal/facenet"
)

func readImage(t testing.TB, name string) image.Image {
	t.Helper()
	f, err := os.Open(name)
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

const images = "../../testdata/images"

// Detection finds the faces the reference crops were cut from, at the same
// place and size, and none in the photos without a person.
func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		file            string
		row, col, scale int
	}{
		{"portrait-astronaut-eileen-collins.png", 112, 225, 111},
		{"portrait-grace-hopper.png", 209, 256, 222},
	} {
		faces, err := Detect(readImage(t, filepath.Join(images, tc.file)))
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 0 {
			t.Errorf("%s: no face found", tc.file)
			continue
		}
		f := faces[0]
		if f.Row != tc.row || f.Col != tc.col || f.Scale != tc.scale {
			t.Errorf("%s: face at row %d col %d scale %d, want %d %d %d", tc.file, f.Row, f.Col, f.Scale, tc.row, tc.col, tc.scale)
		}
	}
	for _, file := range []string{"nonface-coffee-cup.png", "texture-brick.png"} {
		faces, err := Detect(readImage(t, filepath.Join(images, file)))
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) != 0 {
			t.Errorf("%s: %d faces found, want none: %+v", file, len(faces), faces)
		}
	}
}

// A crop by this package embeds within a small distance of the reference
// descriptor of the crop the original pipeline cut from the same photo:
// the rule is the same, only the resampling may differ.
func TestCropMatchesReference(t *testing.T) {
	net, err := facenet.Load()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../facenet/testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Crops []struct {
			File, Source, Aug string
			Descriptor        []float32
		}
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range ref.Crops {
		if c.Aug != "none" {
			continue
		}
		img := readImage(t, filepath.Join(images, filepath.Base(c.Source)))
		faces, err := Detect(img)
		if err != nil || len(faces) == 0 {
			t.Fatalf("%s: no face (%v)", c.Source, err)
		}
		var want [facenet.Dim]float32
		copy(want[:], c.Descriptor)
		d := facenet.Distance(net.Embed(Crop(img, faces[0])), want)
		t.Logf("%s: %.4f from the reference", c.File, d)
		if d > 0.05 {
			t.Errorf("%s: crop embeds %.3f from the reference descriptor, want <= 0.05", c.File, d)
		}
		checked++
	}
	if checked != 2 {
		t.Fatalf("checked %d base crops, want 2", checked)
	}
}

// The crop is the reference crop, pixel for pixel (within rounding).
func TestCropPixels(t *testing.T) {
	img := readImage(t, filepath.Join(images, "portrait-grace-hopper.png"))
	got := Crop(img, Face{Row: 209, Col: 256, Scale: 222})
	want := readImage(t, "../facenet/testdata/hopper__base.png")
	worst := 0
	for y := range CropSize {
		for x := range CropSize {
			r1, g1, b1, _ := got.At(x, y).RGBA()
			r2, g2, b2, _ := want.At(x, y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				worst = max(worst, d, -d)
			}
		}
	}
	if worst > 1 {
		t.Errorf("crop differs from the reference crop by up to %d levels, want <= 1", worst)
	}
}

// upscale2 doubles an image's size, to stand for a 1024x1024 generated
// portrait.
func upscale2(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, 2*b.Dx(), 2*b.Dy()))
	for y := range out.Bounds().Dy() {
		for x := range out.Bounds().Dx() {
			out.Set(x, y, img.At(b.Min.X+x/2, b.Min.Y+y/2))
		}
	}
	return out
}

func BenchmarkDetect1024(b *testing.B) {
	img := upscale2(readImage(b, filepath.Join(images, "portrait-astronaut-eileen-collins.png")))
	b.ResetTimer()
	for b.Loop() {
		faces, err := Detect(img)
		if err != nil || len(faces) == 0 {
			b.Fatalf("no face: %v", err)
		}
	}
}

func BenchmarkDetect512(b *testing.B) {
	img := readImage(b, filepath.Join(images, "portrait-astronaut-eileen-collins.png"))
	b.ResetTimer()
	for b.Loop() {
		Detect(img)
	}
}

// Splitting the window sizes over CPUs finds exactly what one pass finds.
func TestRunCascadeSplitIsExact(t *testing.T) {
	img := readImage(t, filepath.Join(images, "portrait-grace-hopper.png"))
	if _, err := Detect(img); err != nil { // loads the classifier
		t.Fatal(err)
	}
	b := img.Bounds()
	p := pigo.CascadeParams{MinSize: minSize, MaxSize: min(b.Dx(), b.Dy()), ShiftFactor: shiftFactor, ScaleFactor: scaleFactor,
		ImageParams: pigo.ImageParams{Pixels: grey(img), Rows: b.Dy(), Cols: b.Dx(), Dim: b.Dx()}}
	one := classifier.run(p)
	for _, parts := range []int{2, 3, 8} {
		split := runCascade(p, parts)
		if len(one) == 0 || !slices.Equal(one, split) {
			t.Errorf("one pass: %d detections; split in %d: %d, or they differ", len(one), parts, len(split))
		}
	}
}

// A large image is searched at a reduced size and its faces are reported in
// its own pixels: the astronaut doubled is found at twice the place and
// size, and her crop still embeds as hers.
func TestDetectLargeImage(t *testing.T) {
	src := readImage(t, filepath.Join(images, "portrait-astronaut-eileen-collins.png"))
	big := upscale2(src)
	faces, err := Detect(big)
	if err != nil || len(faces) == 0 {
		t.Fatalf("no face in the 1024x1024 astronaut (%v)", err)
	}
	f := faces[0]
	if f.Row != 2*112+1 || f.Col != 2*225+1 || f.Scale != 2*111 {
		t.Errorf("face at row %d col %d scale %d, want %d %d %d", f.Row, f.Col, f.Scale, 2*112+1, 2*225+1, 2*111)
	}
	net, err := facenet.Load()
	if err != nil {
		t.Fatal(err)
	}
	small, _ := Detect(src)
	d := facenet.Distance(net.Embed(Crop(big, f)), net.Embed(Crop(src, small[0])))
	if d > 0.1 {
		t.Errorf("the doubled astronaut's crop embeds %.3f from the original's, want <= 0.1", d)
	}
	t.Logf("distance between the crops of the original and the doubled image: %.4f", d)
}
