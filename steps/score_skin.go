package steps

import (
	"context"
	"fmt"
	"image"

	"github.com/lifeos/lifeos/internal/skin"
)

func init() {
	registerScorer("skin", scorerInfo{
		impl:    skinScorer{},
		builtin: true,
		policy:  []string{"face.min_detection_score"},
	})
}

// skinScorer is scorer skin: skin texture on the face (internal/skin) and
// its realism against the person's reference photos, or against built-in
// bands without them.
type skinScorer struct{}

// skinVersion is part of every skin score's key.
const skinVersion = 6

func (skinScorer) check(s *Score) error {
	if len(s.Command) > 0 || s.URL != "" || len(s.Params) > 0 || s.Face != "" {
		return fmt.Errorf("scorer skin takes no command, url, params or face")
	}
	return nil
}

func (skinScorer) identity(s *Score, env *Env) (string, error) {
	id := fmt.Sprintf("skin v%d min_detection_score=%v", skinVersion, minDetectionScore(env))
	if s.Reference != "" {
		ref, err := referenceDigest(env.Root, s.Reference)
		if err != nil {
			return "", err
		}
		id += " reference=" + ref
	}
	return id, nil
}

// score measures each image's skin and scores its realism against the
// profile of the reference photos.
func (skinScorer) score(ctx context.Context, s *Score, env *Env, items []Item) ([]map[string]any, error) {
	profile := skin.Default
	if s.Reference != "" {
		refs, err := referenceImages(env.Root, s.Reference)
		if err != nil {
			return nil, err
		}
		stats, err := skinStats(ctx, env, refs)
		if err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		// A reference photo whose face was not found would describe
		// whatever skin the picture has, not the face's: left out.
		var list []skin.Stats
		for i, st := range stats {
			if st.OnFace {
				list = append(list, st.Stats)
			} else {
				fmt.Fprintf(env.Log, "warning: no face in reference %s; its skin is not part of the profile\n", refs[i].Path)
			}
		}
		profile = skin.NewProfile(list)
		if profile.N == 0 {
			fmt.Fprintf(env.Log, "warning: no reference photo in %s shows enough skin; realism uses the built-in bands\n", s.Reference)
		}
	}
	stats, err := skinStats(ctx, env, items)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(items))
	for i, st := range stats {
		out[i] = map[string]any{
			"realism":         profile.Realism(st.Stats),
			"texture":         st.Fine,
			"texture_coarse":  st.Coarse,
			"noise":           st.Noise,
			"skin_fraction":   st.Fraction,
			"face":            map[bool]float64{true: 1, false: 0}[st.OnFace],
			"references_used": float64(profile.N),
		}
	}
	return out, nil
}

// faceSkin is one image's skin statistics and whether they were measured
// on a face.
type faceSkin struct {
	skin.Stats
	OnFace bool `json:"on_face"`
}

// skinStats measures each image (on its largest face, or the whole image),
// through the per-item cache: reference photos are measured once.
func skinStats(ctx context.Context, env *Env, items []Item) ([]faceSkin, error) {
	key := fmt.Sprintf("skinstats v%d min_detection_score=%v ", skinVersion, minDetectionScore(env))
	out, _, err := perItem(env, key, "skin", items, func(todo []Item) ([]faceSkin, error) {
		stats := make([]faceSkin, len(todo))
		err := eachImage(ctx, env, todo, "images", func(i int, img image.Image) error {
			f, onFace, err := mainFace(img, todo[i].SHA256, env)
			if err != nil {
				return err
			}
			r := img.Bounds()
			if onFace {
				r = f.Square()
			}
			stats[i] = faceSkin{skin.Measure(img, r, onFace), onFace}
			return nil
		})
		return stats, err
	}, nil)
	return out, err
}
