// Package facenet computes 128-d face descriptors with dlib's face
// recognition ResNet (the 29-layer net of dnn_face_recognition_ex.cpp), in
// pure Go, with the weights npm @vladmandic/face-api 1.7.15 ships (dlib's
// public-domain model; see NOTICE). Input is a 150x150 RGB face crop; two
// crops of the same person are within a Euclidean distance of about 0.6.
package facenet

import (
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"sync"
)

// Size is the side of the square face crop the net takes.
const Size = 150

// Dim is the length of a descriptor.
const Dim = 128

//go:embed model/face_recognition_model.bin
var weightsBin []byte

//go:embed model/face_recognition_model-weights_manifest.json
var manifestJSON []byte

// The digests of the shipped files: a damaged or swapped model is refused
// rather than producing plausible but wrong descriptors.
const (
	weightsSHA256  = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
	manifestSHA256 = "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b"
	paramCount     = 5614592
)

// conv is a convolution with its bias and dlib's affine (folded batch
// norm) folded into the filters: out = conv(x, w) + b.
type conv struct {
	k, cin, cout int
	w            []float32 // HWIO: [k][k][cin][cout]
	b            []float32 // [cout]
}

// Net is the loaded network. It is safe for concurrent use.
type Net struct {
	down32 conv
	res    map[string][2]conv // residual blocks by name: conv1, conv2
	fc     []float32          // [256][128]
}

var (
	loadOnce sync.Once
	loaded   *Net
	loadErr  error
)

// Load returns the embedded network, decoded once.
func Load() (*Net, error) {
	loadOnce.Do(func() { loaded, loadErr = decode(weightsBin, manifestJSON) })
	return loaded, loadErr
}

type manifestEntry struct {
	Paths   []string `json:"paths"`
	Weights []struct {
		Name         string `json:"name"`
		Shape        []int  `json:"shape"`
		Quantization *struct {
			Dtype string  `json:"dtype"`
			Scale float64 `json:"scale"`
			Min   float64 `json:"min"`
		} `json:"quantization"`
	} `json:"weights"`
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// decode reads the TF.js weights: tensors in manifest order, uint8
// quantized (q*scale + min) or little-endian float32.
func decode(bin, manifest []byte) (*Net, error) {
	if d := digest(bin); d != weightsSHA256 {
		return nil, fmt.Errorf("facenet: weights sha256 %s, want %s", d, weightsSHA256)
	}
	if d := digest(manifest); d != manifestSHA256 {
		return nil, fmt.Errorf("facenet: manifest sha256 %s, want %s", d, manifestSHA256)
	}
	var m []manifestEntry
	if err := json.Unmarshal(manifest, &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf("facenet: manifest: %v", err)
	}
	tensors := map[string][]float32{}
	off, params := 0, 0
	for _, w := range m[0].Weights {
		n := 1
		for _, d := range w.Shape {
			n *= d
		}
		t := make([]float32, n)
		if q := w.Quantization; q != nil {
			if q.Dtype != "uint8" || off+n > len(bin) {
				return nil, fmt.Errorf("facenet: %s: unsupported or truncated tensor", w.Name)
			}
			for i := range t {
				t[i] = float32(float64(bin[off+i])*q.Scale + q.Min)
			}
			off += n
		} else {
			if off+4*n > len(bin) {
				return nil, fmt.Errorf("facenet: %s: truncated tensor", w.Name)
			}
			for i := range t {
				t[i] = math.Float32frombits(binary.LittleEndian.Uint32(bin[off+4*i:]))
			}
			off += 4 * n
		}
		tensors[w.Name] = t
		params += n
	}
	if off != len(bin) || params != paramCount {
		return nil, fmt.Errorf("facenet: read %d of %d bytes, %d parameters (want %d)", off, len(bin), params, paramCount)
	}
	get := func(prefix string, k, cin, cout int) (conv, error) {
		w, b := tensors[prefix+"/conv/filters"], tensors[prefix+"/conv/bias"]
		sw, sb := tensors[prefix+"/scale/weights"], tensors[prefix+"/scale/biases"]
		if len(w) != k*k*cin*cout || len(b) != cout || len(sw) != cout || len(sb) != cout {
			return conv{}, fmt.Errorf("facenet: %s: unexpected shapes", prefix)
		}
		c := conv{k: k, cin: cin, cout: cout, w: make([]float32, len(w)), b: make([]float32, cout)}
		for i, v := range w {
			c.w[i] = v * sw[i%cout]
		}
		for o := range cout {
			c.b[o] = b[o]*sw[o] + sb[o]
		}
		return c, nil
	}
	net := &Net{res: map[string][2]conv{}}
	var err error
	if net.down32, err = get("conv32_down", 7, 3, 32); err != nil {
		return nil, err
	}
	for _, b := range blocks {
		var c1, c2 conv
		if c1, err = get(b.name+"/conv1", 3, b.cin, b.cout); err != nil {
			return nil, err
		}
		if c2, err = get(b.name+"/conv2", 3, b.cout, b.cout); err != nil {
			return nil, err
		}
		net.res[b.name] = [2]conv{c1, c2}
	}
	if net.fc = tensors["fc"]; len(net.fc) != 256*Dim {
		return nil, fmt.Errorf("facenet: fc: unexpected shape")
	}
	return net, nil
}

// blocks are the residual stages after the stem, in order.
var blocks = []struct {
	name      string
	cin, cout int
	down      bool
}{
	{"conv32_1", 32, 32, false}, {"conv32_2", 32, 32, false}, {"conv32_3", 32, 32, false},
	{"conv64_down", 32, 64, true}, {"conv64_1", 64, 64, false}, {"conv64_2", 64, 64, false}, {"conv64_3", 64, 64, false},
	{"conv128_down", 64, 128, true}, {"conv128_1", 128, 128, false}, {"conv128_2", 128, 128, false},
	{"conv256_down", 128, 256, true}, {"conv256_1", 256, 256, false}, {"conv256_2", 256, 256, false},
	{"conv256_down_out", 256, 256, true},
}

// tensor is an HWC activation.
type tensor struct {
	h, w, c int
	d       []float32
}

func newTensor(h, w, c int) tensor { return tensor{h, w, c, make([]float32, h*w*c)} }

// Embed returns the descriptor of a face crop, which is resampled to
// 150x150 if it has another size (callers should crop to 150x150 already).
// The result is the raw fc output, not normalised: compare descriptors by
// Euclidean distance.
func (n *Net) Embed(img image.Image) [Dim]float32 {
	x := input(img)
	x = n.down32.apply(x, 2, 0, true)
	x = maxPool3s2(x)
	for _, b := range blocks {
		c := n.res[b.name]
		if b.down {
			o := c[0].apply(x, 2, 0, true)
			o = c[1].apply(o, 1, 1, false)
			p := avgPool2s2(x)
			x = addPadded(o, p, b.cout)
		} else {
			o := c[0].apply(x, 1, 1, true)
			o = c[1].apply(o, 1, 1, false)
			for i, v := range x.d {
				o.d[i] = max(o.d[i]+v, 0)
			}
			x = o
		}
	}
	// Mean over H and W, then fc (no bias).
	mean := make([]float32, x.c)
	for i, v := range x.d {
		mean[i%x.c] += v
	}
	for i := range mean {
		mean[i] /= float32(x.h * x.w)
	}
	var out [Dim]float32
	for i, m := range mean {
		row := n.fc[i*Dim : (i+1)*Dim]
		for j, w := range row {
			out[j] += m * w
		}
	}
	return out
}

// input converts a crop to the net's input: RGB, minus the mean, over 255.
func input(img image.Image) tensor {
	b := img.Bounds()
	t := newTensor(Size, Size, 3)
	mean := [3]float32{122.782, 117.001, 104.298}
	for y := range Size {
		for x := range Size {
			sx := b.Min.X + x*b.Dx()/Size
			sy := b.Min.Y + y*b.Dy()/Size
			r, g, bl, _ := img.At(sx, sy).RGBA()
			i := (y*Size + x) * 3
			t.d[i] = (float32(r>>8) - mean[0]) / 255
			t.d[i+1] = (float32(g>>8) - mean[1]) / 255
			t.d[i+2] = (float32(bl>>8) - mean[2]) / 255
		}
	}
	return t
}

// apply convolves x with stride s and padding pad on every side, adds the
// bias and optionally applies ReLU.
func (c *conv) apply(x tensor, s, pad int, relu bool) tensor {
	oh := (x.h+2*pad-c.k)/s + 1
	ow := (x.w+2*pad-c.k)/s + 1
	out := newTensor(oh, ow, c.cout)
	zeros := make([]float32, x.c) // the input of a tap in the padding
	parallelRows(oh, func(y0, y1 int) {
		// Where a row's width is not a multiple of four (35, 17, 3 and 1
		// in this net), the last pixels go through the same four-pixel
		// kernel with sums for the pixels past the row kept here: a
		// one-pixel loop, unvectorised, took half the net's time.
		spare := make([]float32, 3*c.cout)
		for oy := y0; oy < y1; oy++ {
			row := out.d[oy*ow*c.cout : (oy+1)*ow*c.cout]
			for p := 0; p < len(row); p += c.cout {
				copy(row[p:p+c.cout], c.b)
			}
			for ox := 0; ox < ow; ox += 4 {
				c.apply4(x, out, oy, ox, s, pad, zeros, spare)
			}
			if relu {
				for i, v := range row {
					row[i] = max(v, 0)
				}
			}
		}
	})
	return out
}

// taps calls f with the weights of each kernel tap of the output pixels
// ox.. ox+3 of row oy and their inputs, zeros for a tap in the padding (it
// adds nothing). Rows of the kernel wholly in the padding are skipped.
func (c *conv) taps(x tensor, oy, ox, s, pad int, zeros []float32, f func(w []float32, in [4][]float32)) {
	for ky := range c.k {
		iy := oy*s + ky - pad
		if iy < 0 || iy >= x.h {
			continue
		}
		for kx := range c.k {
			var in [4][]float32
			for p := range in {
				ix := (ox+p)*s + kx - pad
				if ix < 0 || ix >= x.w {
					in[p] = zeros
				} else {
					in[p] = x.d[(iy*x.w+ix)*x.c : (iy*x.w+ix+1)*x.c]
				}
			}
			f(c.w[(ky*c.k+kx)*c.cin*c.cout:], in)
		}
	}
}

// apply4 adds the kernel into four adjacent output pixels of row oy, from
// ox (their bias already in place): each weight row is loaded once for
// four pixels instead of once per pixel (the weights of a 3x3x256x256
// layer are 2.4 MB, far past the caches, and were streamed again for
// every pixel). Pixels past the row's end are summed into spare (3 x
// cout) and dropped. Each pixel's sums are added in the same order
// whichever of the four it is.
func (c *conv) apply4(x, out tensor, oy, ox, s, pad int, zeros, spare []float32) {
	var a [4][]float32
	for p := range a {
		if ox+p < out.w {
			base := (oy*out.w + ox + p) * c.cout
			a[p] = out.d[base : base+c.cout]
		} else {
			a[p] = spare[(p-1)*c.cout : p*c.cout]
		}
	}
	a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
	c.taps(x, oy, ox, s, pad, zeros, func(w []float32, in [4][]float32) {
		macs4(a0, a1, a2, a3, in[0], in[1], in[2], in[3], w, c.cout)
	})
}

// macs4 adds in_p[ci] * w[ci][co] over ci into a_p[co] for four pixels p
// sharing the weights. The portable loop takes four input channels at a
// time, so each pass over the sums does four multiply-adds per load and
// store; that is most of the net's time.
func macs4(a0, a1, a2, a3, in0, in1, in2, in3, w []float32, cout int) {
	if macs4Vec != nil {
		macs4Vec(a0, a1, a2, a3, in0, in1, in2, in3, w, cout)
		return
	}
	macs4Go(a0, a1, a2, a3, in0, in1, in2, in3, w, cout)
}

// macs4Vec is a vector macs4, where the build and the CPU have one
// (macs_simd.go: GOEXPERIMENT=simd on amd64 with AVX2 and FMA).
var macs4Vec func(a0, a1, a2, a3, in0, in1, in2, in3, w []float32, cout int)

// macs4Go is the portable macs4.
func macs4Go(a0, a1, a2, a3, in0, in1, in2, in3, w []float32, cout int) {
	n := len(a0)
	a1, a2, a3 = a1[:n], a2[:n], a3[:n]
	ci := 0
	for ; ci+4 <= len(in0); ci += 4 {
		w0 := w[ci*cout : ci*cout+n]
		w1 := w[(ci+1)*cout : (ci+1)*cout+n]
		w2 := w[(ci+2)*cout : (ci+2)*cout+n]
		w3 := w[(ci+3)*cout : (ci+3)*cout+n]
		p0, p1, p2, p3 := in0[ci], in0[ci+1], in0[ci+2], in0[ci+3]
		q0, q1, q2, q3 := in1[ci], in1[ci+1], in1[ci+2], in1[ci+3]
		r0, r1, r2, r3 := in2[ci], in2[ci+1], in2[ci+2], in2[ci+3]
		t0, t1, t2, t3 := in3[ci], in3[ci+1], in3[ci+2], in3[ci+3]
		for co := range a0 {
			x0, x1, x2, x3 := w0[co], w1[co], w2[co], w3[co]
			a0[co] += p0*x0 + p1*x1 + p2*x2 + p3*x3
			a1[co] += q0*x0 + q1*x1 + q2*x2 + q3*x3
			a2[co] += r0*x0 + r1*x1 + r2*x2 + r3*x3
			a3[co] += t0*x0 + t1*x1 + t2*x2 + t3*x3
		}
	}
	for ; ci < len(in0); ci++ {
		wr := w[ci*cout : ci*cout+n]
		p, q, r, t := in0[ci], in1[ci], in2[ci], in3[ci]
		for co := range a0 {
			a0[co] += p * wr[co]
			a1[co] += q * wr[co]
			a2[co] += r * wr[co]
			a3[co] += t * wr[co]
		}
	}
}

// parallelRows splits rows [0, n) over two goroutines.
func parallelRows(n int, f func(y0, y1 int)) {
	if n < 4 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f(0, n/2) }()
	f(n/2, n)
	wg.Wait()
}

func maxPool3s2(x tensor) tensor {
	oh, ow := (x.h-3)/2+1, (x.w-3)/2+1
	out := newTensor(oh, ow, x.c)
	for oy := range oh {
		for ox := range ow {
			o := out.d[(oy*ow+ox)*x.c : (oy*ow+ox+1)*x.c]
			for c := range o {
				o[c] = float32(math.Inf(-1))
			}
			for ky := range 3 {
				for kx := range 3 {
					in := x.d[((oy*2+ky)*x.w+ox*2+kx)*x.c:]
					for c := range o {
						o[c] = max(o[c], in[c])
					}
				}
			}
		}
	}
	return out
}

func avgPool2s2(x tensor) tensor {
	oh, ow := x.h/2, x.w/2
	out := newTensor(oh, ow, x.c)
	for oy := range oh {
		for ox := range ow {
			o := out.d[(oy*ow+ox)*x.c : (oy*ow+ox+1)*x.c]
			for ky := range 2 {
				for kx := range 2 {
					in := x.d[((oy*2+ky)*x.w+ox*2+kx)*x.c:]
					for c := range o {
						o[c] += in[c]
					}
				}
			}
			for c := range o {
				o[c] *= 0.25
			}
		}
	}
	return out
}

// addPadded is relu(o + p) where o is zero-padded at the bottom and right
// to p's size and p is zero-padded to c channels (dlib's add_prev).
func addPadded(o, p tensor, c int) tensor {
	out := newTensor(p.h, p.w, c)
	for y := range p.h {
		for x := range p.w {
			dst := out.d[(y*p.w+x)*c : (y*p.w+x+1)*c]
			copy(dst, p.d[(y*p.w+x)*p.c:(y*p.w+x+1)*p.c])
			if y < o.h && x < o.w {
				src := o.d[(y*o.w+x)*o.c : (y*o.w+x+1)*o.c]
				for i, v := range src {
					dst[i] += v
				}
			}
			for i, v := range dst {
				dst[i] = max(v, 0)
			}
		}
	}
	return out
}

// Distance is the Euclidean distance between two descriptors.
func Distance(a, b [Dim]float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
