package evalhist

import (
	"math"
	"math/rand/v2"
	"sort"
)

// resamples is how many bootstrap samples a confidence interval is drawn
// from: the interval's ends move by about 0.1% of its width between seeds.
const resamples = 4000

// DiffCI is a 95% bootstrap confidence interval for mean(b) - mean(a), two
// independent samples (two versions' evaluation images), each resampled
// with replacement. The source is seeded: the same values give the same
// interval on every run.
func DiffCI(a, b []float64) (lo, hi float64) {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(a))<<32|uint64(len(b))))
	diffs := make([]float64, resamples)
	for i := range diffs {
		diffs[i] = resampledMean(rng, b) - resampledMean(rng, a)
	}
	sort.Float64s(diffs)
	return diffs[int(0.025*resamples)], diffs[int(0.975*resamples)-1]
}

func resampledMean(rng *rand.Rand, x []float64) float64 {
	var s float64
	for range x {
		s += x[rng.IntN(len(x))]
	}
	return s / float64(len(x))
}

// ImagesNeeded is how many images per version a two-sided test at 5%
// would need to tell the observed difference apart with 80% power, at the
// observed spread: n = (1.96 + 0.84)² (s1² + s2²) / d². 0 when the means
// are equal (no number would).
func ImagesNeeded(a, b []float64) int {
	d := mean(b) - mean(a)
	if d == 0 || len(a) < 2 || len(b) < 2 {
		return 0
	}
	const z = 1.959964 + 0.841621
	n := z * z * (variance(a) + variance(b)) / (d * d)
	return int(math.Ceil(n))
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func variance(x []float64) float64 {
	m := mean(x)
	var s float64
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return s / float64(len(x)-1)
}
