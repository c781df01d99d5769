package facedetect

import (
	"encoding/json"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"testing"

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
