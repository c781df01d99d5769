package facedetect

import (
	"encoding/binary"
	"errors"
	"math"

	pigo "github.com/esimov/pigo/core"
)

// cascade is pigo's face classifier (core.Pigo, v1.4.6) with the same
// trees and the same arithmetic, run faster: pigo computes both pixel
// positions of every node test from the node's codes, the window's place
// and its size, while here they are worked out once per window size, so
// a test is two loads and a compare. (256*r + x) >> 8 is r + x>>8 for any
// integer x (an arithmetic shift floors), so every pixel compared, every
// sum and every detection is pigo's own; TestCascadeMatchesPigo holds
// them to it. pigo's classifier was 87% of a face search.
type cascade struct {
	depth      int       // nodes tested per tree
	leaves     int       // 1 << depth
	codes      []int8    // per tree, 4 per node (row, col, row, col), node 0 unused
	preds      []float32 // per tree, one per leaf
	thresholds []float32 // per tree
}

// unpackCascade reads a cascade in pigo's binary form (what pigo's
// Unpack reads), refusing one that ends early.
func unpackCascade(b []byte) (*cascade, error) {
	bad := errors.New("facedetect: truncated or malformed cascade")
	if len(b) < 16 {
		return nil, bad
	}
	depth := int(binary.LittleEndian.Uint32(b[8:]))
	trees := int(binary.LittleEndian.Uint32(b[12:]))
	if depth < 1 || depth > 16 || trees < 1 {
		return nil, bad
	}
	leaves := 1 << depth
	perTree := 4*leaves - 4 + 4*leaves + 4
	if (len(b)-16)/perTree < trees {
		return nil, bad
	}
	c := &cascade{depth: depth, leaves: leaves,
		codes:      make([]int8, 0, trees*4*leaves),
		preds:      make([]float32, 0, trees*leaves),
		thresholds: make([]float32, 0, trees)}
	pos := 16
	for range trees {
		c.codes = append(c.codes, 0, 0, 0, 0)
		for _, v := range b[pos : pos+4*leaves-4] {
			c.codes = append(c.codes, int8(v))
		}
		pos += 4*leaves - 4
		for range leaves {
			c.preds = append(c.preds, math.Float32frombits(binary.LittleEndian.Uint32(b[pos:])))
			pos += 4
		}
		c.thresholds = append(c.thresholds, math.Float32frombits(binary.LittleEndian.Uint32(b[pos:])))
		pos += 4
	}
	return c, nil
}

// run is pigo's RunCascade(p, 0): every window of every size from
// p.MinSize to p.MaxSize, in pigo's order, kept when it scores above 0.
func (c *cascade) run(p pigo.CascadeParams) []pigo.Detection {
	var found []pigo.Detection
	off := make([]int32, len(c.codes)/2) // per node: the two pixels' offsets from the window's centre
	for scale := p.MinSize; scale <= p.MaxSize; scale = int(float64(scale) + math.Max(2, float64(scale)*p.ScaleFactor-float64(scale))) {
		for i := 0; i < len(c.codes); i += 4 {
			off[i/2] = int32((int(c.codes[i])*scale>>8)*p.Dim + int(c.codes[i+1])*scale>>8)
			off[i/2+1] = int32((int(c.codes[i+2])*scale>>8)*p.Dim + int(c.codes[i+3])*scale>>8)
		}
		step := int(math.Max(p.ShiftFactor*float64(scale), 1))
		half := scale/2 + 1
		for row := half; row <= p.Rows-half; row += step {
			col := half
			// Two windows at a time: each tree is a chain of dependent
			// loads, and two independent chains keep the core busy.
			for ; col+step <= p.Cols-half; col += 2 * step {
				qa, qb := c.classify2(p.Pixels, row*p.Dim+col, row*p.Dim+col+step, off)
				if qa > 0 {
					found = append(found, pigo.Detection{Row: row, Col: col, Scale: scale, Q: qa})
				}
				if qb > 0 {
					found = append(found, pigo.Detection{Row: row, Col: col + step, Scale: scale, Q: qb})
				}
			}
			if col <= p.Cols-half {
				if q := c.classify(p.Pixels, row*p.Dim+col, off, 0, 0); q > 0 {
					found = append(found, pigo.Detection{Row: row, Col: col, Scale: scale, Q: q})
				}
			}
		}
	}
	return found
}

// leaf follows a tree, given by its nodes' offsets, from its root for the
// window centred on pixel at, and returns the leaf's index (leaves to
// 2*leaves-1).
func (c *cascade) leaf(pixels []uint8, at int, tree []int32) int {
	idx := 1
	for range c.depth {
		// Without a branch: which way a test goes is as good as random,
		// and a mispredicted jump per node was most of the time.
		right := 0
		if pixels[at+int(tree[2*idx])] <= pixels[at+int(tree[2*idx+1])] {
			right = 1
		}
		idx = 2*idx + right
	}
	return idx
}

// classify is pigo's classifyRegion for the window centred on pixel at,
// with the nodes' offsets for its size, from tree t0 on with the sum out
// of the trees before it.
func (c *cascade) classify(pixels []uint8, at int, off []int32, t0 int, out float32) float32 {
	nodes := 2 * c.leaves // offsets per tree
	for t := t0; t < len(c.thresholds); t++ {
		out += c.preds[t*c.leaves+c.leaf(pixels, at, off[t*nodes:(t+1)*nodes])-c.leaves]
		if out <= c.thresholds[t] {
			return -1
		}
	}
	return out - c.thresholds[len(c.thresholds)-1]
}

// classify2 is classify for two windows, their trees followed side by side
// while both pass, then the survivor's alone.
func (c *cascade) classify2(pixels []uint8, a, b int, off []int32) (float32, float32) {
	nodes := 2 * c.leaves
	var outA, outB float32
	for t, thr := range c.thresholds {
		tree := off[t*nodes : (t+1)*nodes]
		ia, ib := 1, 1
		for range c.depth {
			ra, rb := 0, 0
			if pixels[a+int(tree[2*ia])] <= pixels[a+int(tree[2*ia+1])] {
				ra = 1
			}
			if pixels[b+int(tree[2*ib])] <= pixels[b+int(tree[2*ib+1])] {
				rb = 1
			}
			ia, ib = 2*ia+ra, 2*ib+rb
		}
		outA += c.preds[t*c.leaves+ia-c.leaves]
		outB += c.preds[t*c.leaves+ib-c.leaves]
		switch deadA, deadB := outA <= thr, outB <= thr; {
		case deadA && deadB:
			return -1, -1
		case deadA:
			return -1, c.classify(pixels, b, off, t+1, outB)
		case deadB:
			return c.classify(pixels, a, off, t+1, outA), -1
		}
	}
	last := c.thresholds[len(c.thresholds)-1]
	return outA - last, outB - last
}
