package steps

import "image"

func init() {
	registerScorer("exposure", scorerInfo{
		impl:    pixelScorer{version: 2, measure: measureExposure},
		builtin: true,
		policy:  []string{"face.min_detection_score"},
	})
}

// clipLow and clipHigh bound the luminance counted as crushed shadow or
// blown highlight (5/255 and 250/255).
const (
	clipLow  = 5.0 / 255
	clipHigh = 250.0 / 255
)

// measureExposure judges the light where it matters, on the face: a dark
// background is a choice, a dark face is a defect. On the largest face's
// square (the whole image when there is none; `face` says which, 1 or 0):
// face_luminance (mean, 0 black .. 1 white), shadow_clipped and
// highlight_clipped (the shares at or beyond clipLow and clipHigh). Over
// the whole image, as before: mean_luminance and clipped_fraction.
func measureExposure(img image.Image, digest string, env *Env) (map[string]any, error) {
	whole := exposureStats(img)
	m := map[string]any{"mean_luminance": whole.mean, "clipped_fraction": round4(whole.shadow + whole.highlight)}
	region, onFace, err := faceRegion(img, digest, env)
	if err != nil {
		return nil, err
	}
	face := whole
	if onFace {
		face = exposureStats(region)
	}
	m["face_luminance"] = face.mean
	m["shadow_clipped"] = face.shadow
	m["highlight_clipped"] = face.highlight
	m["face"] = map[bool]float64{true: 1, false: 0}[onFace]
	return m, nil
}

type exposure struct{ mean, shadow, highlight float64 }

func exposureStats(img image.Image) exposure {
	lum, _, _ := luminance(img)
	var sum float64
	low, high := 0, 0
	for _, l := range lum {
		sum += l
		if l <= clipLow {
			low++
		} else if l >= clipHigh {
			high++
		}
	}
	n := float64(max(len(lum), 1))
	return exposure{round4(sum / n), round4(float64(low) / n), round4(float64(high) / n)}
}

// faceRegion is the largest face's square within the image (at least
// 16x16 pixels), or the whole image and false.
func faceRegion(img image.Image, digest string, env *Env) (image.Image, bool, error) {
	f, ok, err := mainFace(img, digest, env)
	if err != nil || !ok {
		return img, false, err
	}
	r := f.Square().Intersect(img.Bounds())
	sub, can := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !can || r.Dx() < 16 || r.Dy() < 16 {
		return img, false, nil
	}
	return sub.SubImage(r), true, nil
}
