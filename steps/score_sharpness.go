package steps

import "image"

func init() {
	registerScorer("sharpness", scorerInfo{
		impl: pixelScorer{version: 1, measure: func(img image.Image, _ string, _ *Env) (map[string]any, error) {
			return map[string]any{"sharpness": scoreSharpness(img)}, nil
		}},
		builtin: true,
	})
}

// sharpnessScale is the Laplacian variance (on 0..255 luminance) that
// scores 0.5: below it a picture looks soft, well above it crisp.
const sharpnessScale = 200

// scoreSharpness is the variance of the Laplacian of the luminance at
// analysis size, mapped to 0..1 by v / (v + 200): 0 for a flat image, 0.5 at
// a variance of 200. The sample photographs score 0.47 (a soft brick
// texture) to 0.91; the same blurred with a 7x7 box, 0.02 to 0.38.
func scoreSharpness(img image.Image) float64 {
	lum, w, h := luminance(img)
	if w < 3 || h < 3 {
		return 0
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
	return round4(v / (v + sharpnessScale))
}
