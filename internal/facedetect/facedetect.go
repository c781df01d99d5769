// Package facedetect finds faces with pigo's facefinder cascade (pure Go)
// and cuts the square crop the face recognition net takes.
//
// The crop rule is the one the reference descriptors were made with: a
// square of side 1.0 x pigo's scale, centred 0.15 x scale below pigo's
// centre (pigo's box sits on the eyes; the net was trained on crops that
// include the chin), resampled to 150x150 by averaging bilinear samples,
// with pixels beyond the border clamped.
package facedetect

import (
	_ "embed"
	"image"
	"image/color"
	"math"
	"sort"
	"sync"

	pigo "github.com/esimov/pigo/core"
)

//go:embed cascade/facefinder
var facefinder []byte

// Detector settings: those the reference crops were made with.
const (
	minSize      = 20
	shiftFactor  = 0.1
	scaleFactor  = 1.1
	iouThreshold = 0.2
	minScore     = 5
)

// Face is one detected face.
type Face struct {
	Row, Col, Scale int     // pigo's centre and size, in image pixels
	Score           float32 // pigo's detection score; above 5 here
}

// Box is the face's square, as pigo reports it.
func (f Face) Box() image.Rectangle {
	h := f.Scale / 2
	return image.Rect(f.Col-h, f.Row-h, f.Col-h+f.Scale, f.Row-h+f.Scale)
}

var (
	once       sync.Once
	classifier *pigo.Pigo
	unpackErr  error
)

// Detect returns the faces in img, largest first.
func Detect(img image.Image) ([]Face, error) {
	once.Do(func() { classifier, unpackErr = pigo.NewPigo().Unpack(facefinder) })
	if unpackErr != nil {
		return nil, unpackErr
	}
	b := img.Bounds()
	rows, cols := b.Dy(), b.Dx()
	params := pigo.CascadeParams{
		MinSize:     minSize,
		MaxSize:     max(min(rows, cols), minSize),
		ShiftFactor: shiftFactor,
		ScaleFactor: scaleFactor,
		ImageParams: pigo.ImageParams{Pixels: grey(img), Rows: rows, Cols: cols, Dim: cols},
	}
	dets := classifier.ClusterDetections(classifier.RunCascade(params, 0), iouThreshold)
	var faces []Face
	for _, d := range dets {
		if d.Q > minScore {
			faces = append(faces, Face{Row: d.Row, Col: d.Col, Scale: d.Scale, Score: d.Q})
		}
	}
	sort.SliceStable(faces, func(i, j int) bool {
		if faces[i].Scale != faces[j].Scale {
			return faces[i].Scale > faces[j].Scale
		}
		return faces[i].Score > faces[j].Score
	})
	return faces, nil
}

// grey is pigo's RgbToGrayscale for any image, with the bounds' origin
// moved to 0,0.
func grey(img image.Image) []uint8 {
	b := img.Bounds()
	out := make([]uint8, b.Dx()*b.Dy())
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			out[i] = uint8((0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 256)
			i++
		}
	}
	return out
}

// CropSize is the side of a face crop.
const CropSize = 150

// Crop cuts the face's square (see the package comment) out of img,
// resampled to CropSize x CropSize.
func Crop(img image.Image, f Face) *image.RGBA {
	side := float64(f.Scale)
	cx, cy := float64(f.Col), float64(f.Row)+0.15*side
	return cropSquare(img, cx, cy, side)
}

// cropSquare resamples the square of the given side centred at (cx, cy):
// each output pixel averages ss x ss bilinear samples, enough to cover the
// source pixels it spans when shrinking.
func cropSquare(img image.Image, cx, cy, side float64) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, CropSize, CropSize))
	step := side / CropSize
	ss := max(1, int(math.Ceil(step)))
	x0, y0 := cx-side/2, cy-side/2
	for oy := range CropSize {
		for ox := range CropSize {
			var r, g, b float64
			for sy := range ss {
				for sx := range ss {
					px := x0 + (float64(ox)+(float64(sx)+0.5)/float64(ss))*step - 0.5
					py := y0 + (float64(oy)+(float64(sy)+0.5)/float64(ss))*step - 0.5
					cr, cg, cb := bilinear(img, px, py)
					r, g, b = r+cr, g+cg, b+cb
				}
			}
			n := float64(ss * ss)
			out.SetRGBA(ox, oy, color.RGBA{clamp8(r / n), clamp8(g / n), clamp8(b / n), 255})
		}
	}
	return out
}

// bilinear samples img at (x, y) in pixel-centre coordinates, clamping to
// the border.
func bilinear(img image.Image, x, y float64) (r, g, b float64) {
	bd := img.Bounds()
	fx, fy := math.Floor(x), math.Floor(y)
	tx, ty := x-fx, y-fy
	ix, iy := int(fx), int(fy)
	at := func(x, y int) (float64, float64, float64) {
		x = min(max(x, bd.Min.X), bd.Max.X-1)
		y = min(max(y, bd.Min.Y), bd.Max.Y-1)
		cr, cg, cb, _ := img.At(x, y).RGBA()
		return float64(cr >> 8), float64(cg >> 8), float64(cb >> 8)
	}
	r00, g00, b00 := at(ix, iy)
	r10, g10, b10 := at(ix+1, iy)
	r01, g01, b01 := at(ix, iy+1)
	r11, g11, b11 := at(ix+1, iy+1)
	lerp := func(a, b, c, d float64) float64 {
		return (a*(1-tx)+b*tx)*(1-ty) + (c*(1-tx)+d*tx)*ty
	}
	return lerp(r00, r10, r01, r11), lerp(g00, g10, g01, g11), lerp(b00, b10, b01, b11)
}

func clamp8(v float64) uint8 {
	return uint8(min(max(math.Round(v), 0), 255))
}
