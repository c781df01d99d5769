package steps

import (
	"image"
	"image/color"
	"math"
)

// analysisSide is the longest side images are reduced to before measuring:
// metrics then describe the picture, not its resolution, and cost the same
// for a 1024 px render and a 4K photo.
const analysisSide = 512

// luminance returns the image's relative luminance (Rec. 709 weights on
// the sRGB values, 0..1), box-downscaled so its longest side is at most
// analysisSide.
func luminance(img image.Image) (lum []float64, w, h int) {
	b := img.Bounds()
	f := 1
	for max(b.Dx(), b.Dy())/f > analysisSide {
		f++
	}
	w, h = b.Dx()/f, b.Dy()/f
	lum = make([]float64, w*h)
	row := make([]float64, b.Dx())
	inv := 1 / float64(f*f)
	for y := 0; y < h*f; y++ {
		lumRow(img, b.Min.Y+y, row)
		out := lum[(y/f)*w : (y/f+1)*w]
		for x := 0; x < w*f; x++ {
			out[x/f] += row[x] * inv
		}
	}
	return lum, w, h
}

// lumRow fills row with the luminance of image row y, reading the pixel
// buffers of the common image types directly (image.At allocates per pixel).
func lumRow(img image.Image, y int, row []float64) {
	b := img.Bounds()
	const kr, kg, kb = 0.2126 / 255, 0.7152 / 255, 0.0722 / 255
	switch m := img.(type) {
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = kr*float64(p[4*x]) + kg*float64(p[4*x+1]) + kb*float64(p[4*x+2])
		}
	case *image.RGBA:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = kr*float64(p[4*x]) + kg*float64(p[4*x+1]) + kb*float64(p[4*x+2])
		}
	case *image.Gray:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = float64(p[x]) / 255
		}
	default:
		for x := range row {
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, y)).(color.NRGBA64)
			row[x] = (0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)) / 65535
		}
	}
}

// round4 keeps metrics readable and stable across platforms' last bits.
func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
