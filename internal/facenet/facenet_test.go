package facenet

import (
	"encoding/json"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

type reference struct {
	Crops []struct {
		File       string    `json:"file"`
		Face       string    `json:"face"`
		Descriptor []float32 `json:"descriptor"`
	} `json:"crops"`
}

func readPNG(t testing.TB, name string) image.Image {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The port matches the descriptors the original implementation (face-api,
// TensorFlow.js cpu backend) computed for the same crops.
func TestMatchesReferenceDescriptors(t *testing.T) {
	net, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Crops) < 12 {
		t.Fatalf("%d reference crops, want 12", len(ref.Crops))
	}
	for i, c := range ref.Crops {
		if testing.Short() && i%4 != 0 {
			// Every fourth: all twelve take 20 s under the race detector,
			// and one exercises the net's concurrency (go test without
			// -short checks all).
			continue
		}
		got := net.Embed(readPNG(t, filepath.Join("testdata", c.File)))
		var want [Dim]float32
		copy(want[:], c.Descriptor)
		if d := Distance(got, want); d > 1e-4 {
			t.Errorf("%s: L2 %.2g from the reference descriptor, want <= 1e-4", c.File, d)
		} else {
			t.Logf("%s: L2 %.2g", c.File, d)
		}
	}
}

// One more face, computed by tools/face-reference/reference.js: a profile
// of another person, from a greyscale photo (grey is repeated into RGB).
func TestMatchesOwnReference(t *testing.T) {
	net, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/cameraman.json")
	if err != nil {
		t.Fatal(err)
	}
	var refs []struct {
		File       string    `json:"file"`
		Descriptor []float32 `json:"descriptor"`
	}
	if err := json.Unmarshal(data, &refs); err != nil || len(refs) != 1 {
		t.Fatalf("cameraman.json: %v (%d descriptors)", err, len(refs))
	}
	var want [Dim]float32
	copy(want[:], refs[0].Descriptor)
	got := net.Embed(readPNG(t, filepath.Join("testdata", refs[0].File)))
	if d := Distance(got, want); d > 1e-4 {
		t.Errorf("%s: L2 %.2g from the reference descriptor, want <= 1e-4", refs[0].File, d)
	}
}

// Augmented copies of one face are closer to each other than to the other
// person, and within dlib's 0.6 radius.
func TestSamePersonCloser(t *testing.T) {
	if testing.Short() {
		t.Skip("twelve embeddings, 20 s under the race detector, no concurrency beyond the tests above: go test without -short runs it")
	}
	net, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	augs := []string{"base", "bright", "dark", "flip", "shift", "zoom"}
	emb := map[string][][Dim]float32{}
	for _, p := range []string{"astronaut", "hopper"} {
		for _, a := range augs {
			emb[p] = append(emb[p], net.Embed(readPNG(t, filepath.Join("testdata", p+"__"+a+".png"))))
		}
	}
	var maxSame, minOther float64 = 0, 10
	for _, p := range []string{"astronaut", "hopper"} {
		for i := 1; i < len(augs); i++ {
			maxSame = max(maxSame, Distance(emb[p][0], emb[p][i]))
		}
	}
	for _, a := range emb["astronaut"] {
		for _, h := range emb["hopper"] {
			minOther = min(minOther, Distance(a, h))
		}
	}
	t.Logf("same person <= %.3f, different people >= %.3f", maxSame, minOther)
	if maxSame >= 0.6 || minOther <= maxSame {
		t.Errorf("same person up to %.3f, different people from %.3f: want same < 0.6 and < different", maxSame, minOther)
	}
}

// A damaged model is refused, not used.
func TestDecodeRefusesDamagedWeights(t *testing.T) {
	bad := append([]byte(nil), weightsBin...)
	bad[len(bad)/2] ^= 1
	if _, err := decode(bad, manifestJSON); err == nil {
		t.Fatal("decode accepted weights with a flipped bit")
	}
}

func BenchmarkEmbed(b *testing.B) {
	net, err := Load()
	if err != nil {
		b.Fatal(err)
	}
	img := readPNG(b, "testdata/astronaut__base.png")
	b.ResetTimer()
	for b.Loop() {
		net.Embed(img)
	}
}

// BenchmarkEmbedBatch embeds the 12 reference crops, two at a time (as the
// face scorer overlaps images); ns/face is per crop.
func BenchmarkEmbedBatch(b *testing.B) {
	net, err := Load()
	if err != nil {
		b.Fatal(err)
	}
	names, _ := filepath.Glob("testdata/*__*.png")
	var crops []image.Image
	for _, n := range names {
		crops = append(crops, readPNG(b, n))
	}
	b.ResetTimer()
	for b.Loop() {
		next := make(chan image.Image)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range next {
					net.Embed(c)
				}
			}()
		}
		for _, c := range crops {
			next <- c
		}
		close(next)
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(crops)), "ns/face")
}

// The convolution that computes four pixels at a time adds each pixel's
// products in the order a one-pixel loop does: the same floats, borders
// and strides included.
func TestConvBlockedMatchesNaive(t *testing.T) {
	rnd := func(n int, seed uint32) []float32 {
		out := make([]float32, n)
		for i := range out {
			seed = seed*1664525 + 1013904223
			out[i] = float32(int32(seed>>8)%2000-1000) / 997
		}
		return out
	}
	for _, tc := range []struct{ h, w, cin, cout, k, s, pad int }{
		{11, 13, 5, 7, 3, 1, 1}, {12, 9, 8, 6, 3, 2, 0}, {6, 6, 3, 4, 7, 2, 0}, {5, 7, 4, 5, 3, 1, 1},
	} {
		c := &conv{k: tc.k, cin: tc.cin, cout: tc.cout, w: rnd(tc.k*tc.k*tc.cin*tc.cout, 1), b: rnd(tc.cout, 2)}
		x := tensor{tc.h, tc.w, tc.cin, rnd(tc.h*tc.w*tc.cin, 3)}
		got := c.apply(x, tc.s, tc.pad, true)
		for oy := range got.h {
			for ox := range got.w {
				for co := range tc.cout {
					acc := c.b[co]
					for ky := range tc.k {
						iy := oy*tc.s + ky - tc.pad
						if iy < 0 || iy >= x.h {
							continue
						}
						for kx := range tc.k {
							ix := ox*tc.s + kx - tc.pad
							var in []float32
							if ix >= 0 && ix < x.w {
								in = x.d[(iy*x.w+ix)*x.c : (iy*x.w+ix+1)*x.c]
							} else {
								in = make([]float32, x.c)
							}
							w := c.w[(ky*tc.k+kx)*tc.cin*tc.cout:]
							ci := 0
							for ; ci+4 <= tc.cin; ci += 4 {
								acc += in[ci]*w[ci*tc.cout+co] + in[ci+1]*w[(ci+1)*tc.cout+co] + in[ci+2]*w[(ci+2)*tc.cout+co] + in[ci+3]*w[(ci+3)*tc.cout+co]
							}
							for ; ci < tc.cin; ci++ {
								acc += in[ci] * w[ci*tc.cout+co]
							}
						}
					}
					want := max(acc, 0)
					if g := got.d[(oy*got.w+ox)*tc.cout+co]; g != want {
						t.Fatalf("%+v: pixel %d,%d channel %d = %v, want %v", tc, oy, ox, co, g, want)
					}
				}
			}
		}
	}
}
