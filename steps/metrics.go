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

// analysisRGB returns the image's sRGB channels (0..1) box-downscaled like
// luminance.
func analysisRGB(img image.Image) (r, g, b []float64, w, h int) {
	bd := img.Bounds()
	f := 1
	for max(bd.Dx(), bd.Dy())/f > analysisSide {
		f++
	}
	w, h = bd.Dx()/f, bd.Dy()/f
	r, g, b = make([]float64, w*h), make([]float64, w*h), make([]float64, w*h)
	rr, gr, br := make([]float64, bd.Dx()), make([]float64, bd.Dx()), make([]float64, bd.Dx())
	inv := 1 / float64(f*f)
	for y := 0; y < h*f; y++ {
		rgbRow(img, bd.Min.Y+y, rr, gr, br)
		o := (y / f) * w
		for x := 0; x < w*f; x++ {
			r[o+x/f] += rr[x] * inv
			g[o+x/f] += gr[x] * inv
			b[o+x/f] += br[x] * inv
		}
	}
	return r, g, b, w, h
}

// rgbRow fills r, g, b (0..1) with image row y, reading the pixel buffers
// of the common image types directly.
func rgbRow(img image.Image, y int, r, g, b []float64) {
	bd := img.Bounds()
	switch m := img.(type) {
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(bd.Min.X, y):]
		for x := range r {
			r[x], g[x], b[x] = float64(p[4*x])/255, float64(p[4*x+1])/255, float64(p[4*x+2])/255
		}
	case *image.RGBA:
		p := m.Pix[m.PixOffset(bd.Min.X, y):]
		for x := range r {
			r[x], g[x], b[x] = float64(p[4*x])/255, float64(p[4*x+1])/255, float64(p[4*x+2])/255
		}
	case *image.Gray:
		p := m.Pix[m.PixOffset(bd.Min.X, y):]
		for x := range r {
			v := float64(p[x]) / 255
			r[x], g[x], b[x] = v, v, v
		}
	default:
		for x := range r {
			c := color.NRGBA64Model.Convert(img.At(bd.Min.X+x, y)).(color.NRGBA64)
			r[x], g[x], b[x] = float64(c.R)/65535, float64(c.G)/65535, float64(c.B)/65535
		}
	}
}

// sharpnessScale is the Laplacian variance (on 0..255 luminance) that
// scores 0.5: below it a picture looks soft, well above it crisp.
const sharpnessScale = 200

// scoreSharpness is the variance of the Laplacian of the luminance at
// analysis size, mapped to 0..1 by v / (v + 200): 0 for a flat image, 0.5 at
// a variance of 200. The sample photographs score 0.47 (a soft brick
// texture) to 0.91; the same blurred with a 7x7 box, 0.02 to 0.38.
func scoreSharpness(img image.Image) map[string]float64 {
	lum, w, h := luminance(img)
	if w < 3 || h < 3 {
		return map[string]float64{"sharpness": 0}
	}
	var sum, sum2 float64
	n := 0
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			l := 255 * (lum[i-1] + lum[i+1] + lum[i-w] + lum[i+w] - 4*lum[i])
			sum += l
			sum2 += l * l
			n++
		}
	}
	mean := sum / float64(n)
	v := sum2/float64(n) - mean*mean
	return map[string]float64{"sharpness": round4(v / (v + sharpnessScale))}
}

// clipLow and clipHigh bound the luminance counted as crushed shadow or
// blown highlight (5/255 and 250/255).
const (
	clipLow  = 5.0 / 255
	clipHigh = 250.0 / 255
)

// scoreExposure gives mean_luminance (0 black .. 1 white) and
// clipped_fraction (0..1, the share of pixels at or beyond clipLow/clipHigh).
func scoreExposure(img image.Image) map[string]float64 {
	lum, _, _ := luminance(img)
	var sum float64
	clipped := 0
	for _, l := range lum {
		sum += l
		if l <= clipLow || l >= clipHigh {
			clipped++
		}
	}
	n := float64(max(len(lum), 1))
	return map[string]float64{"mean_luminance": round4(sum / n), "clipped_fraction": round4(float64(clipped) / n)}
}

// round4 keeps metrics readable and stable across platforms' last bits.
func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// Skin pixels: the YCbCr rule of Chai and Ngan (1999), Cb in [77, 127] and
// Cr in [133, 173] on the 0..255 scale, with luminance above 40 so shadows
// do not count. It holds across skin tones because skin differs mostly in
// luminance, not chroma.
func isSkin(r, g, b float64) bool {
	y := 255 * (0.299*r + 0.587*g + 0.114*b)
	cb := 128 + 255*(-0.168736*r-0.331264*g+0.5*b)
	cr := 128 + 255*(0.5*r-0.418688*g-0.081312*b)
	return y > 40 && cb >= 77 && cb <= 127 && cr >= 133 && cr <= 173
}

// textureScale is the high-frequency energy (0..255 luminance) that scores
// 0.5.
const textureScale = 1.5

// minSkinPixels is the least eroded skin area, in analysis pixels, whose
// texture is judged; below it texture is 0 (see skin_fraction).
const minSkinPixels = 200

// scoreSkin finds skin pixels and measures their texture: the mean absolute
// difference between each skin pixel's luminance and its 3x3 neighbourhood
// mean (high-frequency energy, on the 0..255 scale), over skin pixels whose
// whole neighbourhood is skin, so that the outline of a face is not taken
// for texture. texture = e / (e + 1.5), 0..1: real skin, with pores and
// fine hair, scores well above smoothed, "plastic" skin. skin_fraction is
// the share of the picture that is skin.
func scoreSkin(img image.Image) map[string]float64 {
	r, g, b, w, h := analysisRGB(img)
	skin := make([]bool, w*h)
	n := 0
	for i := range skin {
		if isSkin(r[i], g[i], b[i]) {
			skin[i] = true
			n++
		}
	}
	lum := make([]float64, w*h)
	for i := range lum {
		lum[i] = 0.2126*r[i] + 0.7152*g[i] + 0.0722*b[i]
	}
	// The median residual, from a histogram of 1/64 steps: sorting every
	// skin pixel's residual was most of the scorer's time.
	const binsPerUnit = 64
	hist := make([]int, 256*binsPerUnit)
	count := 0
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			if !skin[i] {
				continue
			}
			var sum float64
			whole := true
			for dy := -1; dy <= 1 && whole; dy++ {
				for dx := -1; dx <= 1; dx++ {
					j := i + dy*w + dx
					if !skin[j] {
						whole = false
						break
					}
					sum += lum[j]
				}
			}
			if !whole {
				continue
			}
			hist[min(int(math.Abs(lum[i]-sum/9)*255*binsPerUnit), len(hist)-1)]++
			count++
		}
	}
	fraction := float64(n) / float64(max(w*h, 1))
	if count < minSkinPixels {
		return map[string]float64{"texture": 0, "skin_fraction": round4(fraction)}
	}
	// The median, not the mean: edges that cross skin-coloured areas (an
	// eyebrow, a red flag's stripe) are few but large, pores many and small.
	var e float64
	for bin, seen := 0, 0; bin < len(hist); bin++ {
		if seen += hist[bin]; seen > count/2 {
			e = (float64(bin) + 0.5) / binsPerUnit
			break
		}
	}
	return map[string]float64{"texture": round4(e / (e + textureScale)), "skin_fraction": round4(fraction)}
}
