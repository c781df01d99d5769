package facedetect

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/alter"
)

// Heads tilted up to 25 degrees either way are found once each, and the
// roll the eyes give follows the tilt: the portraits turned by d degrees
// (alter's d turns the head the other way on screen) have a roll of the
// upright one's minus d, within 3 degrees.
func TestTiltedFacesFoundOnceWithTheirRoll(t *testing.T) {
	if testing.Short() {
		t.Skip("thirteen searches; run without -short")
	}
	for _, file := range []string{"portrait-astronaut-eileen-collins.png", "portrait-grace-hopper.png"} {
		img := readImage(t, filepath.Join(images, file))
		upright, err := Detect(img)
		if err != nil || len(upright) != 1 || !upright[0].Eyes {
			t.Fatalf("%s: upright: %+v, %v; want one face with eyes", file, upright, err)
		}
		for _, d := range []float64{-25, -15, -5, 5, 15, 25} {
			t.Run(fmt.Sprintf("%s/%g", file, d), func(t *testing.T) {
				faces, err := Detect(alter.Rotate(img, d))
				if err != nil {
					t.Fatal(err)
				}
				if len(faces) != 1 {
					t.Fatalf("%d faces, want 1: %+v", len(faces), faces)
				}
				b := img.Bounds()
				x, y := alter.AffinePoint(float64(upright[0].Col), float64(upright[0].Row), b.Dx(), b.Dy(), d, 1, 0, 0)
				f := faces[0]
				if math.Hypot(float64(f.Col)-x, float64(f.Row)-y) > 0.2*float64(upright[0].Scale) {
					t.Errorf("face at %d,%d, want near %.0f,%.0f", f.Col, f.Row, x, y)
				}
				if !f.Eyes || math.Abs(f.Roll-(upright[0].Roll-d)) > 3 {
					t.Errorf("roll %.1f (eyes %v), want %.1f", f.Roll, f.Eyes, upright[0].Roll-d)
				}
			})
		}
	}
}

// A zoomed copy used to give two boxes of one face; overlapping
// detections are one face.
func TestOverlappingBoxesMerge(t *testing.T) {
	img := readImage(t, filepath.Join(images, "portrait-astronaut-eileen-collins.png"))
	for _, zoom := range []float64{0.95, 1.05, 1.1} {
		faces, err := Detect(alter.Affine(img, 0, zoom, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) != 1 {
			t.Errorf("zoom %g: %d faces, want 1: %+v", zoom, len(faces), faces)
		}
	}
	// Boxes of one face from several passes, and a mouth box inside it.
	got := merge([]Face{
		{Row: 100, Col: 100, Scale: 100, Score: 40},
		{Row: 104, Col: 98, Scale: 90, Score: 60, Pass: 12},
		{Row: 130, Col: 100, Scale: 40, Score: 30},
		{Row: 100, Col: 400, Scale: 100, Score: 20},
	})
	if len(got) != 2 || got[0].Score != 40 || got[1].Col != 400 {
		t.Errorf("merge = %+v, want the upright face and the other one", got)
	}
}

// Pupils are located the same on every run (pigo's own runner perturbs
// with the global random source).
func TestEyesAreDeterministic(t *testing.T) {
	img := alter.Rotate(readImage(t, filepath.Join(images, "portrait-grace-hopper.png")), 10)
	a, _ := Detect(img)
	b, _ := Detect(img)
	if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
		t.Errorf("two searches differ: %+v and %+v", a, b)
	}
}
