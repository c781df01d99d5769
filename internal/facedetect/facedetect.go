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
	"runtime"
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
	// Roll is how far the face is turned in the image plane, in degrees,
	// positive when the top of the head leans right on screen: the angle
	// of the search pass that found it best (0, or ±RollStep).
	Roll float64
	// Pass is the angle of the search pass that found the face (0, or a
	// multiple of RollStep).
	Pass float64
	// Eyes says both pupils were located where a face's eyes are; Roll
	// then comes from the line between them, and EyesAt holds them (x, y
	// in image pixels; the one on the image's left first).
	Eyes   bool
	EyesAt [2][2]float64
}

// Box is the face's square, as pigo reports it (upright, around the
// turned face).
func (f Face) Box() image.Rectangle {
	h := f.Scale / 2
	return image.Rect(f.Col-h, f.Row-h, f.Col-h+f.Scale, f.Row-h+f.Scale)
}

var (
	once       sync.Once
	classifier *cascade
	unpackErr  error
)

// maxSearchSide bounds the work of a search: an image whose shorter side
// is longer is searched at 1/k of its size (k x k pixel averages), the
// smallest k that brings it to at most this. A face smaller than k x 20
// pixels is then not found, which at that size is far below what identity
// needs. The sample portraits (at most 600 px) are searched as they are.
const maxSearchSide = 640

// RollStep is the angle between search passes: pigo's frontal cascade
// finds faces within about ±6 to ±10 degrees of upright (less for a weak
// face, such as one with glasses), so passes at 0, ±RollStep and
// ±2 RollStep cover heads tilted up to about ±30 degrees.
const RollStep = 12

// turnedMinScore is the least score of a face found in a turned pass:
// more passes mean more chances for a false face, and a real face found
// in the pass that suits its tilt scores well above this.
const turnedMinScore = 10

// turnedMinSide is the smallest face, as a fraction of the image's
// shorter side, that the turned passes look for. Most of a pass's work is
// in its smallest windows, so the four turned passes together cost about
// a third of the upright one (a 1024 px portrait's faces take 16% longer
// to score than with the upright pass alone); a small tilted face is
// found only if the upright pass finds it.
const turnedMinSide = 0.125

// Detect returns the faces in img, largest first. The image is searched
// upright and turned by ±RollStep and ±2 RollStep; overlapping detections
// of one face (from one pass or several, or a mouth or chin box inside
// the face) are merged into the best-ranked one.
func Detect(img image.Image) ([]Face, error) {
	once.Do(func() { classifier, unpackErr = unpackCascade(facefinder) })
	if unpackErr != nil {
		return nil, unpackErr
	}
	b := img.Bounds()
	rows, cols := b.Dy(), b.Dx()
	pixels := grey(img)
	k := (min(rows, cols) + maxSearchSide - 1) / maxSearchSide
	if k > 1 {
		pixels, rows, cols = shrink(pixels, rows, cols, k)
	}
	found := search(pixels, rows, cols, 0, minSize, runtime.NumCPU())
	// The turned passes look for larger faces only, so they search a
	// half-size copy, all four at once.
	tp, trows, tcols, h := pixels, rows, cols, 1
	if min(rows, cols) >= 400 {
		tp, trows, tcols = shrink(pixels, rows, cols, 2)
		h = 2
	}
	turnedMin := max(minSize, int(turnedMinSide*float64(min(trows, tcols))))
	angles := []float64{-2 * RollStep, -RollStep, RollStep, 2 * RollStep}
	turned := make([][]Face, len(angles))
	var wg sync.WaitGroup
	for i, a := range angles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range search(rotate(tp, trows, tcols, a), trows, tcols, a, turnedMin, 1) {
				if f.Score >= turnedMinScore {
					f.Row, f.Col, f.Scale = f.Row*h+h/2, f.Col*h+h/2, f.Scale*h
					turned[i] = append(turned[i], f)
				}
			}
		}()
	}
	wg.Wait()
	for _, t := range turned {
		found = append(found, t...)
	}
	faces := merge(found)
	if err := findEyes(faces, pixels, rows, cols); err != nil {
		return nil, err
	}
	for i := range faces {
		// Back to the image's pixels: the centre of a k x k block.
		f := &faces[i]
		f.Row, f.Col, f.Scale = f.Row*k+k/2, f.Col*k+k/2, f.Scale*k
		for e := range f.EyesAt {
			f.EyesAt[e] = [2]float64{f.EyesAt[e][0]*float64(k) + float64(k)/2, f.EyesAt[e][1]*float64(k) + float64(k)/2}
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

// search runs the cascade (in parts goroutines), for faces of at least
// least pixels, over a grey image that is the original turned by angle
// degrees, and maps what it finds back to the original's pixels.
func search(pixels []uint8, rows, cols int, angle float64, least, parts int) []Face {
	params := pigo.CascadeParams{
		MinSize:     least,
		MaxSize:     max(min(rows, cols), least),
		ShiftFactor: shiftFactor,
		ScaleFactor: scaleFactor,
		ImageParams: pigo.ImageParams{Pixels: pixels, Rows: rows, Cols: cols, Dim: cols},
	}
	var faces []Face
	for _, d := range new(pigo.Pigo).ClusterDetections(runCascade(params, parts), iouThreshold) {
		if d.Q <= minScore {
			continue
		}
		x, y := turn(float64(d.Col), float64(d.Row), rows, cols, angle)
		faces = append(faces, Face{Row: int(math.Round(y)), Col: int(math.Round(x)), Scale: d.Scale, Score: d.Q, Roll: angle, Pass: angle})
	}
	return faces
}

// turn maps a point of the image turned by angle degrees to the
// original: the original is sampled there (see rotate).
func turn(x, y float64, rows, cols int, angle float64) (float64, float64) {
	if angle == 0 {
		return x, y
	}
	sin, cos := math.Sincos(angle * math.Pi / 180)
	cx, cy := float64(cols-1)/2, float64(rows-1)/2
	u, v := x-cx, y-cy
	return cx + cos*u - sin*v, cy + sin*u + cos*v
}

// rotate turns a grey image by angle degrees about its centre (bilinear;
// what falls outside is mid-grey): a face whose head leans by angle is
// upright in the result.
func rotate(pix []uint8, rows, cols int, angle float64) []uint8 {
	out := make([]uint8, len(pix))
	sin, cos := math.Sincos(angle * math.Pi / 180)
	cx, cy := float64(cols-1)/2, float64(rows-1)/2
	for y := range rows {
		v := float64(y) - cy
		for x := range cols {
			u := float64(x) - cx
			sx, sy := cx+cos*u-sin*v, cy+sin*u+cos*v
			ix, iy := int(math.Floor(sx)), int(math.Floor(sy))
			if ix < 0 || iy < 0 || ix+1 >= cols || iy+1 >= rows {
				out[y*cols+x] = 128
				continue
			}
			tx, ty := sx-float64(ix), sy-float64(iy)
			i := iy*cols + ix
			top := float64(pix[i])*(1-tx) + float64(pix[i+1])*tx
			bottom := float64(pix[i+cols])*(1-tx) + float64(pix[i+cols+1])*tx
			out[y*cols+x] = uint8(top*(1-ty) + bottom*ty + 0.5)
		}
	}
	return out
}

// Two detections are one face when their boxes overlap by this IoU, or
// when this share of the smaller lies inside the larger (a duplicate
// shifted off-centre, a mouth or chin box inside the face).
const (
	mergeIoU    = 0.3
	mergeInside = 0.5
)

// turnedHandicap divides the score of a detection from a turned pass when
// it competes with an upright detection of the same face. pigo's scores
// vary by a factor of two between passes and resolutions on one upright
// face (Hopper's portrait: 16.8 upright, 34.7 in the half-size pass turned
// 12 degrees, with a box a seventh larger), and the upright box is the one
// the reference crops were cut by; a face tilted 25 degrees scores five
// times higher in the pass that suits it (the astronaut: 11 upright, 60
// turned 24 degrees).
const turnedHandicap = 3

// merge keeps, of each group of detections of one face, the best-ranked
// one (see turnedHandicap). Greedy in rank order, as non-maximum
// suppression is.
func merge(found []Face) []Face {
	rank := func(f Face) float32 {
		if f.Pass != 0 {
			return f.Score / turnedHandicap
		}
		return f.Score
	}
	sort.SliceStable(found, func(i, j int) bool { return rank(found[i]) > rank(found[j]) })
	var kept []Face
	for _, f := range found {
		dup := false
		for _, k := range kept {
			a, b := f.Box(), k.Box()
			in := a.Intersect(b)
			ia := float64(in.Dx() * in.Dy())
			if in.Empty() {
				continue
			}
			aa, ab := float64(a.Dx()*a.Dy()), float64(b.Dx()*b.Dy())
			if ia/(aa+ab-ia) >= mergeIoU || ia/min(aa, ab) >= mergeInside {
				dup = true
				break
			}
		}
		if !dup {
			kept = append(kept, f)
		}
	}
	return kept
}

// shrink averages k x k blocks of a grey image; a partial last row or
// column of blocks is dropped.
func shrink(pix []uint8, rows, cols, k int) ([]uint8, int, int) {
	r, c := rows/k, cols/k
	out := make([]uint8, r*c)
	for y := range r {
		for x := range c {
			sum := 0
			for dy := range k {
				row := pix[(y*k+dy)*cols+x*k:]
				for dx := range k {
					sum += int(row[dx])
				}
			}
			out[y*c+x] = uint8((sum + k*k/2) / (k * k))
		}
	}
	return out, r, c
}

// runCascade is RunCascade with the window sizes split into contiguous
// ranges of about equal work, run in parallel. Each range continues pigo's own
// sequence of sizes and the results are joined in size order, so the
// detections are exactly those of a single RunCascade.
func runCascade(p pigo.CascadeParams, parts int) []pigo.Detection {
	var scales []int
	var work []float64
	total := 0.0
	for s := p.MinSize; s <= p.MaxSize; s = int(float64(s) + math.Max(2, float64(s)*p.ScaleFactor-float64(s))) {
		step := math.Max(p.ShiftFactor*float64(s), 1)
		w := (float64(p.Rows-s)/step + 1) * (float64(p.Cols-s)/step + 1)
		scales, work = append(scales, s), append(work, w)
		total += w
	}
	parts = min(parts, len(scales))
	if parts <= 1 {
		return classifier.run(p)
	}
	// Cut the sizes where the running work crosses each 1/parts share.
	var ranges [][2]int
	start, acc := 0, 0.0
	for i, w := range work {
		acc += w
		if acc >= total*float64(len(ranges)+1)/float64(parts) && len(ranges) < parts-1 {
			ranges = append(ranges, [2]int{scales[start], scales[i]})
			start = i + 1
		}
	}
	if start < len(scales) {
		ranges = append(ranges, [2]int{scales[start], p.MaxSize})
	}
	results := make([][]pigo.Detection, len(ranges))
	var wg sync.WaitGroup
	for i, r := range ranges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := p
			q.MinSize, q.MaxSize = r[0], r[1]
			results[i] = classifier.run(q)
		}()
	}
	wg.Wait()
	var all []pigo.Detection
	for _, r := range results {
		all = append(all, r...)
	}
	return all
}

// grey is pigo's RgbToGrayscale for any image, with the bounds' origin
// moved to 0,0. Opaque RGBA and NRGBA pixels (what PNG decoding gives) are
// read straight from Pix: the same values, without an interface call per
// pixel.
func grey(img image.Image) []uint8 {
	b := img.Bounds()
	out := make([]uint8, b.Dx()*b.Dy())
	var pix []uint8
	var stride int
	switch m := img.(type) {
	case *image.RGBA:
		pix, stride = m.Pix, m.Stride
	case *image.NRGBA:
		pix, stride = m.Pix, m.Stride
	}
	i := 0
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			var r, g, bl uint32
			if p := y*stride + 4*x; pix != nil && pix[p+3] == 255 {
				r, g, bl = uint32(pix[p])*0x101, uint32(pix[p+1])*0x101, uint32(pix[p+2])*0x101
			} else {
				r, g, bl, _ = img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			}
			out[i] = uint8((0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 256)
			i++
		}
	}
	return out
}

// CropSize is the side of a face crop.
const CropSize = 150

// CropMode is a rule for cutting a face out of an image.
type CropMode int

const (
	// CropBox is the reference rule on pigo's box (see the package
	// comment), turned by the angle of the pass that found the face.
	CropBox CropMode = iota
	// CropBoxRoll is the same box turned by the roll the eyes give.
	CropBoxRoll
	// CropEyes levels the eyes and scales by their distance: a square of
	// side eyeSide x the distance, centred eyeDrop x the distance below
	// the midpoint between the eyes, along the face's axis. Without eyes,
	// CropBox.
	CropEyes
)

// eyeSide and eyeDrop place CropEyes's square where CropBox puts it on an
// upright face: measured on the sample portraits' eyes and boxes (2.56 and
// 0.585 on the astronaut's, 2.64 and 0.615 on Hopper's).
const (
	eyeSide = 2.6
	eyeDrop = 0.6
)

// Crop cuts the face out of img by the default rule (DefaultCrop),
// resampled to CropSize x CropSize.
func Crop(img image.Image, f Face) *image.RGBA {
	return CropWith(img, f, DefaultCrop)
}

// CropWith cuts the face by the given rule.
func CropWith(img image.Image, f Face, mode CropMode) *image.RGBA {
	cx, cy, side, roll := f.crop(mode)
	return cropSquare(img, cx, cy, side, roll)
}

// Square is the region the box rule cuts, upright, in whole image pixels
// (it may extend past the image's bounds): from the brows to the chin.
func (f Face) Square() image.Rectangle {
	side := float64(f.Scale)
	cx, cy := float64(f.Col), float64(f.Row)+0.15*side
	x0, y0 := int(math.Round(cx-side/2)), int(math.Round(cy-side/2))
	return image.Rect(x0, y0, x0+f.Scale, y0+f.Scale)
}

// crop is a rule's square: centre, side and angle.
func (f Face) crop(mode CropMode) (cx, cy, side, roll float64) {
	side, roll = float64(f.Scale), f.Pass
	switch {
	case mode == CropBoxRoll && f.Eyes:
		roll = f.Roll
	case mode == CropEyes && f.Eyes:
		l, r := f.EyesAt[0], f.EyesAt[1]
		d := math.Hypot(r[0]-l[0], r[1]-l[1])
		sin, cos := math.Sincos(f.Roll * math.Pi / 180)
		mx, my := (l[0]+r[0])/2, (l[1]+r[1])/2
		return mx - sin*eyeDrop*d, my + cos*eyeDrop*d, eyeSide * d, f.Roll
	}
	// 0.15 x side below pigo's centre, "below" along the face's axis.
	sin, cos := math.Sincos(roll * math.Pi / 180)
	d := 0.15 * side
	return float64(f.Col) - sin*d, float64(f.Row) + cos*d, side, roll
}

// cropSquare resamples the square of the given side centred at (cx, cy)
// and turned by roll degrees: each output pixel averages ss x ss bilinear
// samples, enough to cover the source pixels it spans when shrinking.
func cropSquare(img image.Image, cx, cy, side, roll float64) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, CropSize, CropSize))
	step := side / CropSize
	ss := max(1, int(math.Ceil(step)))
	sin, cos := math.Sincos(roll * math.Pi / 180)
	for oy := range CropSize {
		for ox := range CropSize {
			var r, g, b float64
			for sy := range ss {
				for sx := range ss {
					// Offsets from the centre in the face's frame, then
					// turned into the image's.
					u := (float64(ox)+(float64(sx)+0.5)/float64(ss))*step - side/2
					v := (float64(oy)+(float64(sy)+0.5)/float64(ss))*step - side/2
					px := cx + cos*u - sin*v - 0.5
					py := cy + sin*u + cos*v - 0.5
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

// DefaultCrop is the rule Crop uses: the box rule, measured best (see the
// README's evaluation).
const DefaultCrop = CropBox
