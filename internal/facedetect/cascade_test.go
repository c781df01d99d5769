package facedetect

import (
	"path/filepath"
	"slices"
	"testing"

	pigo "github.com/esimov/pigo/core"
)

// The cascade finds exactly what pigo's own finds, window for window and
// score for score: on portraits, on photos without a person, turned, and
// from the smallest window size up.
func TestCascadeMatchesPigo(t *testing.T) {
	if testing.Short() {
		// A minute under the race detector, for a comparison with no
		// concurrency in it: go test without -short runs it.
		t.Skip("compares the cascade with pigo's on every sample image, sequentially")
	}
	ref, err := pigo.NewPigo().Unpack(facefinder)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := unpackCascade(facefinder)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(images, "*.png"))
	if len(names) < 4 {
		t.Fatalf("%d sample images", len(names))
	}
	compared := 0
	for _, name := range names {
		img := readImage(t, name)
		b := img.Bounds()
		pixels, rows, cols := grey(img), b.Dy(), b.Dx()
		if k := (min(rows, cols) + maxSearchSide - 1) / maxSearchSide; k > 1 {
			pixels, rows, cols = shrink(pixels, rows, cols, k)
		}
		for _, angle := range []float64{0, 2 * RollStep} {
			pix := pixels
			if angle != 0 {
				pix = rotate(pixels, rows, cols, angle)
			}
			for _, least := range []int{minSize, 9} {
				p := pigo.CascadeParams{MinSize: least, MaxSize: min(rows, cols), ShiftFactor: shiftFactor, ScaleFactor: scaleFactor,
					ImageParams: pigo.ImageParams{Pixels: pix, Rows: rows, Cols: cols, Dim: cols}}
				want, got := ref.RunCascade(p, 0), ours.run(p)
				if !slices.Equal(got, want) {
					t.Errorf("%s turned %v, from %d px: %d detections, pigo %d, or they differ", filepath.Base(name), angle, least, len(got), len(want))
				}
				compared += len(want)
			}
		}
	}
	if compared == 0 {
		t.Fatal("pigo found nothing to compare")
	}
}

// A cascade cut short is refused, not read past its end.
func TestUnpackCascadeRefusesTruncated(t *testing.T) {
	for _, n := range []int{0, 15, 16 + 100, len(facefinder) - 1} {
		if _, err := unpackCascade(facefinder[:n]); err == nil {
			t.Errorf("%d of %d bytes accepted", n, len(facefinder))
		}
	}
}
