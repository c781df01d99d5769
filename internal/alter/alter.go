// Package alter makes deterministic altered copies of a photo: the
// smoothing, noise, sharpening, compression, exposure, rotation and
// resampling that AI images and their post-processing show. The
// evaluations are measured against them (bench/evalmetrics, the scorer
// tests): a metric that gates images must tell each family from the real
// photo.
package alter

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// RGB is an image as three float planes on the 0..255 scale.
type RGB struct {
	W, H    int
	R, G, B []float64
}

// FromImage converts img to planes.
func FromImage(img image.Image) *RGB {
	b := img.Bounds()
	m := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Bounds(), img, b.Min, draw.Src)
	p := &RGB{W: b.Dx(), H: b.Dy()}
	n := p.W * p.H
	p.R, p.G, p.B = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		p.R[i], p.G[i], p.B[i] = float64(m.Pix[4*i]), float64(m.Pix[4*i+1]), float64(m.Pix[4*i+2])
	}
	return p
}

// Image rounds and clamps the planes to an opaque NRGBA image.
func (p *RGB) Image() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, p.W, p.H))
	for i := range p.W * p.H {
		m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = clamp(p.R[i]), clamp(p.G[i]), clamp(p.B[i]), 255
	}
	return m
}

func clamp(v float64) uint8 { return uint8(min(max(math.Round(v), 0), 255)) }

func (p *RGB) planes() [3][]float64 { return [3][]float64{p.R, p.G, p.B} }

func (p *RGB) clone() *RGB {
	return &RGB{W: p.W, H: p.H, R: append([]float64(nil), p.R...), G: append([]float64(nil), p.G...), B: append([]float64(nil), p.B...)}
}

// Blur is a Gaussian blur of the given sigma in pixels (separable, edges
// clamped).
func Blur(img image.Image, sigma float64) *image.NRGBA {
	return blur(FromImage(img), sigma).Image()
}

func blur(p *RGB, sigma float64) *RGB {
	if sigma <= 0 {
		return p.clone()
	}
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	out := &RGB{W: p.W, H: p.H}
	res := [3][]float64{}
	for c, pl := range p.planes() {
		tmp := make([]float64, len(pl))
		for y := range p.H {
			for x := range p.W {
				var s float64
				for i, w := range k {
					s += w * pl[y*p.W+min(max(x+i-r, 0), p.W-1)]
				}
				tmp[y*p.W+x] = s
			}
		}
		dst := make([]float64, len(pl))
		for y := range p.H {
			for x := range p.W {
				var s float64
				for i, w := range k {
					s += w * tmp[min(max(y+i-r, 0), p.H-1)*p.W+x]
				}
				dst[y*p.W+x] = s
			}
		}
		res[c] = dst
	}
	out.R, out.G, out.B = res[0], res[1], res[2]
	return out
}

// Bilateral is the edge-preserving smoothing of beauty filters: each pixel
// becomes the mean of its neighbours within sigmaS pixels weighted by how
// close their colour is (sigmaR, on the 0..255 scale). Skin flattens,
// edges stay.
func Bilateral(img image.Image, sigmaS, sigmaR float64) *image.NRGBA {
	p := FromImage(img)
	r := int(math.Ceil(2 * sigmaS))
	out := p.clone()
	spatial := make([]float64, (2*r+1)*(2*r+1))
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			spatial[(dy+r)*(2*r+1)+dx+r] = math.Exp(-float64(dx*dx+dy*dy) / (2 * sigmaS * sigmaS))
		}
	}
	// exp(v) as 2^(v·log2 e): math.Exp's amd64 assembly runs some 50
	// times slower in a GOEXPERIMENT=simd build (AVX-SSE transitions,
	// golang/go#80835), and this loop calls it for every pixel pair;
	// math.Exp2 is Go code.
	inv := -math.Log2E / (2 * sigmaR * sigmaR)
	for y := range p.H {
		for x := range p.W {
			i := y*p.W + x
			var sr, sg, sb, sw float64
			for dy := -r; dy <= r; dy++ {
				yy := min(max(y+dy, 0), p.H-1)
				for dx := -r; dx <= r; dx++ {
					j := yy*p.W + min(max(x+dx, 0), p.W-1)
					d0, d1, d2 := p.R[j]-p.R[i], p.G[j]-p.G[i], p.B[j]-p.B[i]
					w := spatial[(dy+r)*(2*r+1)+dx+r] * math.Exp2((d0*d0+d1*d1+d2*d2)*inv)
					sr, sg, sb, sw = sr+w*p.R[j], sg+w*p.G[j], sb+w*p.B[j], sw+w
				}
			}
			out.R[i], out.G[i], out.B[i] = sr/sw, sg/sw, sb/sw
		}
	}
	return out.Image()
}

// Noise adds Gaussian noise of the given sigma (0..255 scale), the same
// on the three channels in proportion to none (luminance grain) and
// independent per channel (colour noise) half and half, from a fixed seed.
func Noise(img image.Image, sigma float64, seed uint64) *image.NRGBA {
	p := FromImage(img)
	rng := rand.New(rand.NewPCG(seed, 0x6c69666530))
	s := sigma / math.Sqrt2
	for i := range p.W * p.H {
		l := rng.NormFloat64() * s
		p.R[i] += l + rng.NormFloat64()*s
		p.G[i] += l + rng.NormFloat64()*s
		p.B[i] += l + rng.NormFloat64()*s
	}
	return p.Image()
}

// Unsharp sharpens: x + amount * (x - blur(x, sigma)).
func Unsharp(img image.Image, sigma, amount float64) *image.NRGBA {
	p := FromImage(img)
	b := blur(p, sigma)
	bp := b.planes()
	for c, pl := range p.planes() {
		for i := range pl {
			pl[i] += amount * (pl[i] - bp[c][i])
		}
	}
	return p.Image()
}

// JPEG encodes at quality q and decodes again.
func JPEG(img image.Image, q int) *image.NRGBA {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		panic(err) // encoding to memory does not fail
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		panic(err)
	}
	return FromImage(dec).Image()
}

// Stops changes exposure by ev stops: linear light times 2^ev, through
// the sRGB curve.
func Stops(img image.Image, ev float64) *image.NRGBA {
	p := FromImage(img)
	g := math.Pow(2, ev)
	var lut [256]float64
	for v := range lut {
		lut[v] = 255 * toSRGB(min(toLinear(float64(v)/255)*g, 1))
	}
	for _, pl := range p.planes() {
		for i := range pl {
			pl[i] = lut[int(pl[i])]
		}
	}
	return p.Image()
}

func toLinear(v float64) float64 {
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.055)/1.055, 2.4)
}

func toSRGB(v float64) float64 {
	if v <= 0.0031308 {
		return 12.92 * v
	}
	return 1.055*math.Pow(v, 1/2.4) - 0.055
}

// Brightness multiplies the sRGB values by f (a mild, non-photometric
// change, as a LoRA's light varies).
func Brightness(img image.Image, f float64) *image.NRGBA {
	p := FromImage(img)
	for _, pl := range p.planes() {
		for i := range pl {
			pl[i] *= f
		}
	}
	return p.Image()
}

// Rotate turns the image by deg degrees (counter-clockwise) about its
// centre, bilinear, the corners filled from the nearest edge pixel.
func Rotate(img image.Image, deg float64) *image.NRGBA {
	return Affine(img, deg, 1, 0, 0)
}

// Affine rotates by deg, scales by zoom about the centre and shifts by
// (dx, dy) pixels, bilinear with edges clamped: the mild augmentations a
// generated image of the same person shows.
func Affine(img image.Image, deg, zoom, dx, dy float64) *image.NRGBA {
	p := FromImage(img)
	out := &RGB{W: p.W, H: p.H, R: make([]float64, len(p.R)), G: make([]float64, len(p.G)), B: make([]float64, len(p.B))}
	sin, cos := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(p.W-1)/2, float64(p.H-1)/2
	src, dst := p.planes(), out.planes()
	for y := range p.H {
		for x := range p.W {
			// The inverse map: the source pixel each output pixel shows.
			u, v := (float64(x)-cx-dx)/zoom, (float64(y)-cy-dy)/zoom
			sx, sy := cos*u-sin*v+cx, sin*u+cos*v+cy
			for c := range 3 {
				dst[c][y*p.W+x] = sample(src[c], p.W, p.H, sx, sy)
			}
		}
	}
	return out.Image()
}

// AffinePoint is where Affine(deg, zoom, dx, dy) moves the point (x, y)
// of a w x h image.
func AffinePoint(x, y float64, w, h int, deg, zoom, dx, dy float64) (float64, float64) {
	sin, cos := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	// Affine samples the source at R(u, v) + c for u, v = (out - c - d) / zoom;
	// the inverse of R is its transpose.
	u := cos*(x-cx) + sin*(y-cy)
	v := -sin*(x-cx) + cos*(y-cy)
	return u*zoom + cx + dx, v*zoom + cy + dy
}

func sample(pl []float64, w, h int, x, y float64) float64 {
	fx, fy := math.Floor(x), math.Floor(y)
	tx, ty := x-fx, y-fy
	at := func(x, y int) float64 { return pl[min(max(y, 0), h-1)*w+min(max(x, 0), w-1)] }
	ix, iy := int(fx), int(fy)
	return (at(ix, iy)*(1-tx)+at(ix+1, iy)*tx)*(1-ty) + (at(ix, iy+1)*(1-tx)+at(ix+1, iy+1)*tx)*ty
}

// Rescale shrinks the image by f (0 < f < 1, box average) and enlarges it
// back (bilinear): the detail an upscaler invents is missing.
func Rescale(img image.Image, f float64) *image.NRGBA {
	p := FromImage(img)
	small := p.shrink(max(1, int(float64(p.W)*f)), max(1, int(float64(p.H)*f)))
	w, h := small.W, small.H
	sp := small.planes()
	out := &RGB{W: p.W, H: p.H, R: make([]float64, len(p.R)), G: make([]float64, len(p.G)), B: make([]float64, len(p.B))}
	op := out.planes()
	for c := range 3 {
		for y := range p.H {
			for x := range p.W {
				sx := (float64(x)+0.5)*float64(w)/float64(p.W) - 0.5
				sy := (float64(y)+0.5)*float64(h)/float64(p.H) - 0.5
				op[c][y*p.W+x] = sample(sp[c], w, h, sx, sy)
			}
		}
	}
	return out.Image()
}

// shrink is an area-average resample to w x h (w <= p.W, h <= p.H).
func (p *RGB) shrink(w, h int) *RGB {
	small := &RGB{W: w, H: h, R: make([]float64, w*h), G: make([]float64, w*h), B: make([]float64, w*h)}
	sp, pp := small.planes(), p.planes()
	for c := range 3 {
		for y := range h {
			for x := range w {
				// Each source pixel counts in proportion to its overlap.
				var s, n float64
				fx0, fx1 := float64(x)*float64(p.W)/float64(w), float64(x+1)*float64(p.W)/float64(w)
				fy0, fy1 := float64(y)*float64(p.H)/float64(h), float64(y+1)*float64(p.H)/float64(h)
				for yy := int(fy0); yy < int(math.Ceil(fy1)) && yy < p.H; yy++ {
					wy := math.Min(fy1, float64(yy+1)) - math.Max(fy0, float64(yy))
					for xx := int(fx0); xx < int(math.Ceil(fx1)) && xx < p.W; xx++ {
						wx := math.Min(fx1, float64(xx+1)) - math.Max(fx0, float64(xx))
						s += wx * wy * pp[c][yy*p.W+xx]
						n += wx * wy
					}
				}
				sp[c][y*w+x] = s / n
			}
		}
	}
	return small
}

// Shrink reduces the image by f (0 < f < 1) by area averages, as a camera
// of lower resolution would have taken it.
func Shrink(img image.Image, f float64) *image.NRGBA {
	p := FromImage(img)
	return p.shrink(max(1, int(float64(p.W)*f)), max(1, int(float64(p.H)*f))).Image()
}

// Crop keeps the central fraction f of each side.
func Crop(img image.Image, f float64) *image.NRGBA {
	p := FromImage(img)
	w, h := int(float64(p.W)*f), int(float64(p.H)*f)
	x0, y0 := (p.W-w)/2, (p.H-h)/2
	out := &RGB{W: w, H: h}
	res := [3][]float64{}
	for c, pl := range p.planes() {
		res[c] = make([]float64, w*h)
		for y := range h {
			copy(res[c][y*w:(y+1)*w], pl[(y0+y)*p.W+x0:])
		}
	}
	out.R, out.G, out.B = res[0], res[1], res[2]
	return out.Image()
}

// FlipH mirrors the image left to right.
func FlipH(img image.Image) *image.NRGBA {
	p := FromImage(img)
	for _, pl := range p.planes() {
		for y := range p.H {
			row := pl[y*p.W : (y+1)*p.W]
			for i, j := 0, len(row)-1; i < j; i, j = i+1, j-1 {
				row[i], row[j] = row[j], row[i]
			}
		}
	}
	return p.Image()
}

// Variant is one altered copy: its family (what a metric should tell
// from the real photo, or "mild" for what it should not), a name with the
// setting, and the image.
type Variant struct {
	Family, Name string
	Make         func(image.Image) *image.NRGBA
	// Map takes a point of the original (w x h) to where the variant shows
	// it; nil for the variants that move nothing.
	Map func(x, y float64, w, h int) (float64, float64)
}

// Variants are the alterations the evaluations are measured against: the
// issue's list, each family at several strengths. "mild" ones are the
// changes a faithful generation of the same person shows; the rest are
// defects.
func Variants() []Variant {
	var v []Variant
	add := func(family, name string, f func(image.Image) *image.NRGBA) {
		v = append(v, Variant{Family: family, Name: name, Make: f})
	}
	// geo adds a geometric variant with its point map.
	geo := func(family, name string, f func(image.Image) *image.NRGBA, m func(x, y float64, w, h int) (float64, float64)) {
		v = append(v, Variant{Family: family, Name: name, Make: f, Map: m})
	}
	affine := func(family, name string, deg, zoom, dx, dy float64) {
		geo(family, name, func(m image.Image) *image.NRGBA { return Affine(m, deg, zoom, dx, dy) },
			func(x, y float64, w, h int) (float64, float64) { return AffinePoint(x, y, w, h, deg, zoom, dx, dy) })
	}
	// Mild: what a real photo of the person goes through without losing
	// its texture (framing, light, mirroring, a good JPEG, a smaller
	// camera resolution).
	affine("mild", "shift 6px", 0, 1, 6, 4)
	geo("mild", "crop 90%", func(m image.Image) *image.NRGBA { return Crop(m, 0.9) },
		func(x, y float64, w, h int) (float64, float64) {
			return x - float64((w-int(float64(w)*0.9))/2), y - float64((h-int(float64(h)*0.9))/2)
		})
	add("mild", "brightness x0.9", func(m image.Image) *image.NRGBA { return Brightness(m, 0.9) })
	add("mild", "brightness x1.1", func(m image.Image) *image.NRGBA { return Brightness(m, 1.1) })
	geo("mild", "mirror", FlipH, func(x, y float64, w, h int) (float64, float64) { return float64(w) - 1 - x, y })
	add("mild", "jpeg q90", func(m image.Image) *image.NRGBA { return JPEG(m, 90) })
	geo("mild", "downscale x0.8", func(m image.Image) *image.NRGBA { return Shrink(m, 0.8) },
		func(x, y float64, w, h int) (float64, float64) {
			fx, fy := float64(int(float64(w)*0.8))/float64(w), float64(int(float64(h)*0.8))/float64(h)
			return (x+0.5)*fx - 0.5, (y+0.5)*fy - 0.5
		})
	// Pose: small geometric changes, resampled (which smooths a little):
	// the same person for identity, not a texture defect.
	affine("pose", "zoom 1.05", 0, 1.05, 0, 0)
	affine("pose", "zoom 0.95", 0, 0.95, 0, 0)
	affine("pose", "rotate 3", 3, 1, 0, 0)
	for _, s := range []float64{0.5, 1, 1.5, 2, 3, 4} {
		add("blur", fmt.Sprintf("blur sigma %g", s), func(m image.Image) *image.NRGBA { return Blur(m, s) })
	}
	for _, p := range [][2]float64{{2, 15}, {3, 25}, {4, 40}, {6, 30}} {
		add("smooth", fmt.Sprintf("bilateral %g/%g", p[0], p[1]), func(m image.Image) *image.NRGBA { return Bilateral(m, p[0], p[1]) })
	}
	for i, s := range []float64{4, 6, 8, 12, 16} {
		add("noise", fmt.Sprintf("noise sigma %g", s), func(m image.Image) *image.NRGBA { return Noise(m, s, uint64(i)) })
	}
	for _, p := range [][2]float64{{1, 1}, {1, 2}, {2, 1.5}} {
		add("sharpen", fmt.Sprintf("unsharp sigma %g amount %g", p[0], p[1]), func(m image.Image) *image.NRGBA { return Unsharp(m, p[0], p[1]) })
	}
	for _, q := range []int{20, 30, 40} {
		add("jpeg", fmt.Sprintf("jpeg q%d", q), func(m image.Image) *image.NRGBA { return JPEG(m, q) })
	}
	for _, ev := range []float64{-1.5, -1} {
		add("under", fmt.Sprintf("%g stops", ev), func(m image.Image) *image.NRGBA { return Stops(m, ev) })
	}
	for _, ev := range []float64{1, 1.5} {
		add("over", fmt.Sprintf("+%g stops", ev), func(m image.Image) *image.NRGBA { return Stops(m, ev) })
	}
	for _, d := range []float64{5, 10, 15, 20, 25, -10, -25} {
		affine("rotate", fmt.Sprintf("rotate %g", d), d, 1, 0, 0)
	}
	for _, f := range []float64{0.5, 0.33, 0.25} {
		add("rescale", fmt.Sprintf("down-up x%g", f), func(m image.Image) *image.NRGBA { return Rescale(m, f) })
	}
	return v
}
