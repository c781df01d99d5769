package steps

import (
	"context"
	"image"
	"sync"

	"github.com/lifeos/lifeos/internal/facedetect"
	"github.com/lifeos/lifeos/internal/facenet"
)

// builtinEmbedderID names the built-in face pipeline in score keys: change
// it when detection, the crop rule or the net changes what it computes.
const builtinEmbedderID = "pigo-v1.4.6 crop-1.0-0.15 dlib-resnet-face-api-1.7.15 v1"

// builtinEmbedder: scorer face without command or url embeds in process.
func (s *Score) builtinEmbedder() bool {
	return s.Scorer == "face" && len(s.Command) == 0 && s.URL == ""
}

// embedBuiltin finds the faces of each image (largest first), crops each
// by the reference rule and embeds it with the built-in net.
func embedBuiltin(ctx context.Context, env *Env, items []Item) ([]extResult, error) {
	net, err := facenet.Load()
	if err != nil {
		return nil, err
	}
	out := make([]extResult, len(items))
	// Detection and the net are parallel inside; overlapping images as
	// well fills the single-threaded gaps (decoding, cropping).
	err = eachImage(ctx, env, items, "faces", func(i int, img image.Image) error {
		faces, err := detectFaces(img, items[i].SHA256)
		if err != nil {
			return err
		}
		embs := make([][]float64, 0, len(faces))
		for _, f := range faces {
			d := net.Embed(facedetect.Crop(img, f))
			e := make([]float64, len(d))
			for k, v := range d {
				e[k] = float64(v)
			}
			embs = append(embs, e)
		}
		out[i] = extResult{Embeddings: embs}
		return nil
	})
	return out, err
}

// scoreSkinOnFace measures skin (see scoreSkin) inside the largest face's
// square when the image has a face, so that a wooden wall or a fur collar
// does not count as skin realism; otherwise over the whole image. Its
// `face` metric says which: 1 on a face, 0 on the whole image.
func scoreSkinOnFace(img image.Image, digest string) map[string]float64 {
	faces, err := detectFaces(img, digest)
	if err == nil && len(faces) > 0 {
		r := faces[0].Square().Intersect(img.Bounds())
		if sub, ok := img.(interface {
			SubImage(image.Rectangle) image.Image
		}); ok && r.Dx() >= 16 && r.Dy() >= 16 {
			m := scoreSkin(sub.SubImage(r))
			m["face"] = 1
			return m
		}
	}
	m := scoreSkin(img)
	m["face"] = 0
	return m
}

// detections remembers each image's faces by content digest for the life
// of the process: the skin and face scorers of a batch run side by side on
// the same images, and each image is searched once. Callers that arrive
// while a search is under way wait for it.
var detections sync.Map // digest -> *detection

type detection struct {
	once  sync.Once
	faces []facedetect.Face
	err   error
}

// detectFaces is facedetect.Detect through the memo; an empty digest (an
// image nobody identified) is searched every time.
func detectFaces(img image.Image, digest string) ([]facedetect.Face, error) {
	if digest == "" {
		return facedetect.Detect(img)
	}
	v, _ := detections.LoadOrStore(digest, new(detection))
	d := v.(*detection)
	d.once.Do(func() { d.faces, d.err = facedetect.Detect(img) })
	return d.faces, d.err
}
