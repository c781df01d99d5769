package facedetect

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"sync"
)

// pigo's pupil localisation cascade (Markuš et al., "Eye pupil
// localization with an ensemble of randomized trees", 2014), from the same
// module version as facefinder. pigo's own runner perturbs its start with
// the global math/rand, so two runs on one image disagree; this one runs
// the same trees from a fixed set of perturbations, so a face's eyes, and
// the crop they turn, are the same on every run.
//
//go:embed cascade/puploc
var puplocData []byte

type pupilCascade struct {
	stages, trees, depth int
	scale                float32
	codes                []int8
	preds                []float32
}

var (
	pupilOnce sync.Once
	pupils    *pupilCascade
	pupilErr  error
)

func loadPupils() (*pupilCascade, error) {
	pupilOnce.Do(func() { pupils, pupilErr = unpackPupils(puplocData) })
	return pupils, pupilErr
}

func unpackPupils(b []byte) (*pupilCascade, error) {
	if len(b) < 16 {
		return nil, errors.New("puploc cascade: short header")
	}
	c := &pupilCascade{
		stages: int(binary.LittleEndian.Uint32(b[0:])),
		scale:  math.Float32frombits(binary.LittleEndian.Uint32(b[4:])),
		trees:  int(binary.LittleEndian.Uint32(b[8:])),
		depth:  int(binary.LittleEndian.Uint32(b[12:])),
	}
	leaves := 1 << c.depth
	per := 4*leaves - 4 + 8*leaves
	if c.stages*c.trees*per != len(b)-16 {
		return nil, errors.New("puploc cascade: size does not match its header")
	}
	pos := 16
	for range c.stages * c.trees {
		for _, v := range b[pos : pos+4*leaves-4] {
			c.codes = append(c.codes, int8(v))
		}
		pos += 4*leaves - 4
		for range 2 * leaves {
			c.preds = append(c.preds, math.Float32frombits(binary.LittleEndian.Uint32(b[pos:])))
			pos += 4
		}
	}
	return c, nil
}

// locate refines a pupil guess (row, col, size) on a grey image, as pigo's
// classifyRegion does for one start.
func (c *pupilCascade) locate(r, col, s float32, pix []uint8, rows, cols int) (float32, float32) {
	leaves := 1 << c.depth
	root := 0
	for i := range c.stages {
		var dr, dc float32
		for j := range c.trees {
			idx := 0
			si := int(math.Round(float64(s)))
			for range c.depth {
				code := c.codes[root+4*idx:]
				r1 := min(rows-1, max(0, (256*int(r)+int(code[0])*si)>>8))
				c1 := min(cols-1, max(0, (256*int(col)+int(code[1])*si)>>8))
				r2 := min(rows-1, max(0, (256*int(r)+int(code[2])*si)>>8))
				c2 := min(cols-1, max(0, (256*int(col)+int(code[3])*si)>>8))
				bit := 0
				if pix[r1*cols+c1] > pix[r2*cols+c2] {
					bit = 1
				}
				idx = 2*idx + 1 + bit
			}
			lut := 2 * (c.trees*leaves*i + leaves*j + idx - (leaves - 1))
			dr += c.preds[lut]
			dc += c.preds[lut+1]
			root += 4*leaves - 4
		}
		r += dr * s
		col += dc * s
		s *= c.scale
	}
	return r, col
}

// perturbs are the fixed starting offsets (fractions of the eye window)
// and scales a pupil search takes the median over: a low-discrepancy
// spread over pigo's random range (±7.5% offset, 0.925..1.075 scale).
var perturbs = func() [][3]float32 {
	const n = 31
	out := make([][3]float32, n)
	for i := range n {
		// Additive recurrences with the plastic number's fractions.
		a := math.Mod(0.5+float64(i)*0.7548776662466927, 1)
		b := math.Mod(0.5+float64(i)*0.5698402909980532, 1)
		c := math.Mod(0.5+float64(i)*0.6180339887498949, 1)
		out[i] = [3]float32{float32(0.15 * (0.5 - a)), float32(0.15 * (0.5 - b)), float32(0.925 + 0.15*c)}
	}
	return out
}()

// pupil is the median of the refined positions from every perturbation.
func (c *pupilCascade) pupil(r, col, s float32, pix []uint8, rows, cols int) (float32, float32) {
	rs := make([]float64, len(perturbs))
	cs := make([]float64, len(perturbs))
	for i, p := range perturbs {
		pr, pc := c.locate(r+s*p[0], col+s*p[1], s*p[2], pix, rows, cols)
		rs[i], cs[i] = float64(pr), float64(pc)
	}
	sort.Float64s(rs)
	sort.Float64s(cs)
	return float32(rs[len(rs)/2]), float32(cs[len(cs)/2])
}

// maxEyeTurn is how far the line between the pupils may turn from the
// search pass that found the face: an upright pass finds faces tilted up
// to about 20 degrees (the upright box of a face wins unless a turned one
// scores far better, see merge), and pupils found beyond that are taken
// for a miss.
const maxEyeTurn = 25

// findEyes locates the pupils of each face on the grey image the faces
// were found in, in a copy turned so that the face is upright, and when
// both are where a face's eyes are, takes the face's roll from them.
func findEyes(faces []Face, pix []uint8, rows, cols int) error {
	c, err := loadPupils()
	if err != nil {
		return err
	}
	turned := map[float64][]uint8{0: pix}
	view := func(angle float64) []uint8 {
		img, ok := turned[angle]
		if !ok {
			img = rotate(pix, rows, cols, angle)
			turned[angle] = img
		}
		return img
	}
	for i := range faces {
		f := &faces[i]
		eyes, roll, ok := c.eyes(f, f.Pass, view(f.Pass), rows, cols)
		if ok && math.Abs(roll-f.Pass) > RollStep/2 {
			// Far from the pass's angle: the pupils were found on a turned
			// face. Look again with the face upright.
			a := math.Round(roll)
			if e2, r2, ok2 := c.eyes(f, a, view(a), rows, cols); ok2 {
				eyes, roll = e2, r2
			}
		}
		if ok {
			f.Eyes = true
			f.Roll = math.Round(roll*10) / 10
			f.EyesAt = eyes
		}
	}
	return nil
}

// eyes locates a face's pupils on img, the grey image turned by angle
// degrees, and returns them in the original's pixels with the roll of the
// line between them, and whether they are where a face's eyes are: 0.2 to
// 0.6 of the face apart, the line within maxEyeTurn of the face's pass.
func (c *pupilCascade) eyes(f *Face, angle float64, img []uint8, rows, cols int) ([2][2]float64, float64, bool) {
	// The face's centre in the turned copy, then pigo's eye guesses.
	x, y := turn(float64(f.Col), float64(f.Row), rows, cols, -angle)
	s := float32(f.Scale)
	r := float32(y) - 0.075*s
	lr, lc := c.pupil(r, float32(x)-0.175*s, 0.25*s, img, rows, cols)
	rr, rc := c.pupil(r, float32(x)+0.185*s, 0.25*s, img, rows, cols)
	lx, ly := turn(float64(lc), float64(lr), rows, cols, angle)
	rx, ry := turn(float64(rc), float64(rr), rows, cols, angle)
	d := math.Hypot(rx-lx, ry-ly)
	roll := math.Atan2(ry-ly, rx-lx) * 180 / math.Pi
	ok := d >= 0.2*float64(f.Scale) && d <= 0.6*float64(f.Scale) && math.Abs(roll-f.Pass) <= maxEyeTurn
	return [2][2]float64{{lx, ly}, {rx, ry}}, roll, ok
}
