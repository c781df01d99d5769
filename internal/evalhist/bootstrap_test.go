package evalhist

import (
	"math"
	"math/rand/v2"
	"testing"
)

func sample(seed uint64, n int, mu, sigma float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = mu + sigma*r.NormFloat64()
	}
	return out
}

func TestDiffCI(t *testing.T) {
	// Equal versions: the interval holds 0; a clearly better one: it does not.
	a, b := sample(1, 20, 0.7, 0.1), sample(2, 20, 0.7, 0.1)
	lo, hi := DiffCI(a, b)
	if !(lo < 0 && hi > 0) {
		t.Errorf("equal versions: CI [%.4f, %.4f] misses 0", lo, hi)
	}
	c := sample(3, 20, 0.85, 0.1)
	lo, hi = DiffCI(a, c)
	if !(lo > 0) {
		t.Errorf("better version: CI [%.4f, %.4f] holds 0", lo, hi)
	}
	// Seeded: the same numbers every time.
	lo2, hi2 := DiffCI(a, c)
	if lo != lo2 || hi != hi2 {
		t.Error("DiffCI is not reproducible")
	}
	// Its width is near the normal approximation's (2 x 1.96 x SE).
	se := math.Sqrt(variance(a)/20 + variance(c)/20)
	if w := hi - lo; math.Abs(w-2*1.96*se) > 0.25*2*1.96*se {
		t.Errorf("width %.4f, normal approximation %.4f", w, 2*1.96*se)
	}
}

// ImagesNeeded: a difference of one standard deviation needs about 16 per
// group at 80% power, a tenth of one about 1,570.
func TestImagesNeeded(t *testing.T) {
	a := []float64{0, 1, 0, 1, 0, 1, 0, 1}                 // mean 0.5, s² = 2/7
	b := []float64{0.5, 1.5, 0.5, 1.5, 0.5, 1.5, 0.5, 1.5} // mean 1.0
	n := ImagesNeeded(a, b)
	want := int(math.Ceil(7.849 * (2 * 2.0 / 7) / 0.25))
	if n < want-1 || n > want+1 {
		t.Errorf("ImagesNeeded = %d, want about %d", n, want)
	}
	if ImagesNeeded(a, a) != 0 {
		t.Error("equal means: want 0")
	}
}
