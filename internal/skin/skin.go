// Package skin measures skin texture on a face in a way that does not
// depend on the image's resolution and does not count pixel noise as
// texture, and scores how far those measures fall from a person's own
// photos.
//
// Three statistics, each a median of absolute band responses over skin
// pixels (in percent of the skin's mean luminance):
//
//   - Noise: the pixel noise sigma at the image's own resolution, by
//     Immerkaer's estimator (1996), the response to the 3x3 kernel
//     [1 -2 1; -2 4 -2; 1 -2 1] (which cancels any linear shading) with the
//     median in place of the mean, so that a few edges do not count.
//   - Fine: detail at 1/128 to 1/64 of the face's width, after the face is
//     resampled to 128 px (I - G(σ=1)), with the share of the noise that
//     survives the resampling taken out: skin's fine texture, not grain.
//   - Coarse: detail at 1/64 to 1/25 of the face's width (G(1) - G(2.5)):
//     wrinkles, pores in close-ups, the mottling smoothing removes.
//
// Smoothing and upscaling lower all three; noise raises Noise; sharpening
// raises Fine and Coarse. Realism compares the three, in log space, with
// those of reference photos, so that both sides of "real" fail.
package skin

import (
	"image"
	"math"
	"sort"
	"sync"
)

// Side is the width, in pixels, a face is resampled to for Fine and
// Coarse: the statistics then describe the face, not the camera.
const Side = 128

// Stats are one face's (or image's) skin measures.
type Stats struct {
	Noise  float64 `json:"noise"`
	Fine   float64 `json:"fine"`
	Coarse float64 `json:"coarse"`
	// Fraction is the share of the measured region that is skin.
	Fraction float64 `json:"fraction"`
	// Pixels is how many skin pixels (at Side scale) were measured; the
	// statistics mean little below MinPixels.
	Pixels int `json:"pixels"`
}

// MinPixels is the fewest skin pixels (at Side scale, whole 3x3
// neighbourhoods of skin) whose statistics are trusted.
const MinPixels = 300

// Measure measures the skin inside r, clipped to the image: a face's
// square (face true), or the whole image.
func Measure(img image.Image, r image.Rectangle, face bool) Stats {
	r = r.Intersect(img.Bounds())
	w, h := r.Dx(), r.Dy()
	if w < 8 || h < 8 {
		return Stats{}
	}
	lum := make([]float64, w*h)
	mask := make([]bool, w*h)
	nskin := 0
	for y := range h {
		for x := range w {
			cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			R, G, B := float64(cr)/257, float64(cg)/257, float64(cb)/257
			lum[y*w+x] = 0.2126*R + 0.7152*G + 0.0722*B
			if isSkin(R, G, B) {
				mask[y*w+x] = true
				nskin++
			}
		}
	}
	st := Stats{Fraction: round4(float64(nskin) / float64(w*h))}
	if face && float64(nskin) < 0.05*float64(w*h) {
		// A grey photo or an odd colour cast: the middle of the face,
		// where the cheeks and nose are, stands in for skin.
		for y := range h {
			for x := range w {
				dx, dy := (float64(x)+0.5)/float64(w)-0.5, (float64(y)+0.5)/float64(h)-0.45
				mask[y*w+x] = dx*dx/0.09+dy*dy/0.12 < 1
			}
		}
	}
	// Contrast, not level: the statistics are divided by the skin's mean
	// luminance (x100, so they read as percent), so that exposure, which
	// has a scorer of its own, does not move them.
	var sum float64
	n := 0
	for i, in := range mask {
		if in {
			sum += lum[i]
			n++
		}
	}
	if n == 0 || sum == 0 {
		return st
	}
	level := 100 / (sum / float64(n))
	for i := range lum {
		lum[i] *= level
	}
	st.Noise = immerkaer(lum, mask, w, h)

	// Fine and coarse at the face's scale.
	// A face smaller than Side is measured as it is: enlarging invents no
	// detail.
	k := max(float64(max(w, h))/Side, 1)
	cw, ch := max(1, int(math.Round(float64(w)/k))), max(1, int(math.Round(float64(h)/k)))
	clum, cmask := lum, mask
	if k > 1 {
		clum, cmask = resample(lum, mask, w, h, cw, ch)
	}
	g1 := gauss(clum, cw, ch, 1)
	g2 := gauss(clum, cw, ch, 2.5)
	var fine, coarse []float64
	for y := 1; y < ch-1; y++ {
		for x := 1; x < cw-1; x++ {
			i := y*cw + x
			if !cmask[i] || !cmask[i-1] || !cmask[i+1] || !cmask[i-cw] || !cmask[i+cw] {
				continue
			}
			fine = append(fine, math.Abs(clum[i]-g1[i]))
			coarse = append(coarse, math.Abs(g1[i]-g2[i]))
		}
	}
	st.Pixels = len(fine)
	if st.Pixels == 0 {
		return st
	}
	// White noise of sigma s at the native scale is s/k after an area
	// resample by k, and I - G(1) keeps fineNoiseGain of its median
	// absolute value.
	residual := st.Noise / k * fineNoiseGain()
	f := median(fine)
	st.Fine = math.Sqrt(max(f*f-residual*residual, 0))
	st.Coarse = median(coarse)
	st.Noise, st.Fine, st.Coarse = round4(st.Noise), round4(st.Fine), round4(st.Coarse)
	return st
}

// fineNoiseGain is median|n - G(1)*n| for unit white noise n: measured
// once, so the constant matches the filter exactly; when first needed, not
// at start-up, where it cost every command 1.6 ms.
var fineNoiseGain = sync.OnceValue(func() float64 {
	const n = 96
	// A fixed linear congruential sequence: deterministic without a seed.
	x := uint64(1)
	lum := make([]float64, n*n)
	for i := range lum {
		// Sum of 12 uniforms minus 6: close enough to a unit Gaussian.
		var s float64
		for range 12 {
			x = x*6364136223846793005 + 1442695040888963407
			s += float64(x>>11) / (1 << 53)
		}
		lum[i] = s - 6
	}
	g := gauss(lum, n, n, 1)
	var d []float64
	for y := 3; y < n-3; y++ {
		for x := 3; x < n-3; x++ {
			d = append(d, math.Abs(lum[y*n+x]-g[y*n+x]))
		}
	}
	return median(d)
})

// immerkaer estimates the noise sigma from the median absolute response
// of the 3x3 Laplacian-difference kernel over pixels whose neighbourhood
// is all in mask. For Gaussian noise the response has standard deviation
// 6σ, and its median absolute value is 0.6745 of that.
func immerkaer(lum []float64, mask []bool, w, h int) float64 {
	var d []float64
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			if !mask[i] || !mask[i-1] || !mask[i+1] || !mask[i-w] || !mask[i+w] {
				continue
			}
			v := lum[i-w-1] - 2*lum[i-w] + lum[i-w+1] -
				2*lum[i-1] + 4*lum[i] - 2*lum[i+1] +
				lum[i+w-1] - 2*lum[i+w] + lum[i+w+1]
			d = append(d, math.Abs(v))
		}
	}
	if len(d) == 0 {
		return 0
	}
	return median(d) / (0.6745 * 6)
}

// resample shrinks a plane and its mask to cw x ch by area averages. A pixel is in the mask when most of
// what it covers was.
func resample(lum []float64, mask []bool, w, h, cw, ch int) ([]float64, []bool) {
	out := make([]float64, cw*ch)
	om := make([]bool, cw*ch)
	for y := range ch {
		y0, y1 := y*h/ch, max((y+1)*h/ch, y*h/ch+1)
		for x := range cw {
			x0, x1 := x*w/cw, max((x+1)*w/cw, x*w/cw+1)
			var s float64
			in := 0
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					s += lum[yy*w+xx]
					if mask[yy*w+xx] {
						in++
					}
				}
			}
			n := (x1 - x0) * (y1 - y0)
			out[y*cw+x] = s / float64(n)
			om[y*cw+x] = 2*in > n
		}
	}
	return out, om
}

// gauss is a separable Gaussian blur with clamped edges.
func gauss(p []float64, w, h int, sigma float64) []float64 {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	tmp := make([]float64, len(p))
	for y := range h {
		for x := range w {
			var s float64
			for i, kv := range k {
				s += kv * p[y*w+min(max(x+i-r, 0), w-1)]
			}
			tmp[y*w+x] = s / sum
		}
	}
	out := make([]float64, len(p))
	for y := range h {
		for x := range w {
			var s float64
			for i, kv := range k {
				s += kv * tmp[min(max(y+i-r, 0), h-1)*w+x]
			}
			out[y*w+x] = s / sum
		}
	}
	return out
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// isSkin is the YCbCr rule of Chai and Ngan (1999), Cb in [77, 127] and
// Cr in [133, 173] (0..255), with luminance above 40 so shadows do not
// count. It holds across skin tones: skin differs mostly in luminance,
// not chroma.
func isSkin(r, g, b float64) bool {
	y := 0.299*r + 0.587*g + 0.114*b
	cb := 128 - 0.168736*r - 0.331264*g + 0.5*b
	cr := 128 + 0.5*r - 0.418688*g - 0.081312*b
	return y > 40 && cb >= 77 && cb <= 127 && cr >= 133 && cr <= 173
}

// Profile is the distribution of the statistics over a person's reference
// photos, in log space: what "real" looks like for that person, in their
// photos' light and resolution.
type Profile struct {
	Mean [3]float64 `json:"mean"`
	SD   [3]float64 `json:"sd"`
	N    int        `json:"n"`
}

// minSD is the least spread a profile assumes, in natural log units (about
// ±16%): a handful of photos from one shoot vary less than a person's
// photos do. Below fewRefs photos the spread cannot be estimated and the
// floor widens by sqrt(fewRefs/n): one reference photo allows ±30%
// (a portrait and its own JPEG copy differ by 70% in noise).
const (
	minSD   = 0.15
	fewRefs = 4
)

// slack is how many standard deviations from the references' mean still
// count as fully real. With minSD, the loosest pair that kept every real
// copy of bench/evalmetrics.sh's 23 faces at 0.5 or more and separated
// every defect family at an AUC of 0.95 or more (see the README).
const slack = 1.25

func features(s Stats) [3]float64 {
	// The offset keeps a perfectly flat (0) statistic finite.
	return [3]float64{math.Log(s.Noise + 0.05), math.Log(s.Fine + 0.05), math.Log(s.Coarse + 0.05)}
}

// NewProfile summarises the statistics of reference photos; those with
// fewer than MinPixels skin pixels are left out. With none left it returns
// Default.
func NewProfile(refs []Stats) Profile {
	var p Profile
	var xs [][3]float64
	for _, r := range refs {
		if r.Pixels >= MinPixels {
			xs = append(xs, features(r))
		}
	}
	if len(xs) == 0 {
		return Default
	}
	p.N = len(xs)
	for j := range 3 {
		for _, x := range xs {
			p.Mean[j] += x[j] / float64(len(xs))
		}
		var v float64
		for _, x := range xs {
			v += (x[j] - p.Mean[j]) * (x[j] - p.Mean[j])
		}
		if len(xs) > 1 {
			v /= float64(len(xs) - 1)
		}
		p.SD[j] = max(math.Sqrt(v), minSD*math.Sqrt(max(1, float64(fewRefs)/float64(len(xs)))))
	}
	return p
}

// Default is the profile used without reference photos: the band each
// statistic spans over the 22 real faces of bench/evalmetrics.sh (the
// sample portraits, a scan and a photo, and group photos at a party),
// every value in it fully real. Real faces differ more between people and
// cameras than defects move one photo, so without references realism is a
// guard against noise and little else (see the README's measurements).
var Default = band(Stats{Noise: 0.134, Fine: 0.415, Coarse: 1.077}, Stats{Noise: 1.604, Fine: 3.408, Coarse: 4.839})

// band is the profile within which every value from lo to hi is fully real.
func band(lo, hi Stats) Profile {
	a, b := features(lo), features(hi)
	var p Profile
	for j := range 3 {
		p.Mean[j] = (a[j] + b[j]) / 2
		p.SD[j] = (b[j] - a[j]) / 2 / slack
	}
	return p
}

// Realism is 1 when every statistic lies within slack standard deviations
// of the profile's mean, and falls off as a Gaussian beyond, on both sides:
// too smooth (plastic, blurred, upscaled) and too rough (noise,
// over-sharpening) alike.
func (p Profile) Realism(s Stats) float64 {
	if s.Pixels < MinPixels {
		return 0
	}
	x := features(s)
	var e2 float64
	for j := range 3 {
		z := math.Abs(x[j]-p.Mean[j]) / p.SD[j]
		e := max(z-slack, 0)
		e2 += e * e
	}
	return round4(math.Exp(-0.5 * e2))
}
