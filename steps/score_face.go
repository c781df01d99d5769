package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"path"
	"strings"
	"sync"

	"github.com/lifeos/lifeos/internal/facedetect"
	"github.com/lifeos/lifeos/internal/facenet"
	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	registerScorer("face", scorerInfo{
		impl:    faceScorer{},
		builtin: true,
		policy:  []string{"face.min_detection_score"},
	})
}

// builtinEmbedderID names the built-in face pipeline in score keys: change
// it when detection, the crop rule or the net changes what it computes.
const builtinEmbedderID = "pigo-v1.4.6 merge-0.3-0.5 turned-12-24 pupils-v1 crop-1.0-0.15-roll dlib-resnet-face-api-1.7.15 v2"

// faceRadius is the "same person" radius: the distance below which two
// faces count as one person. dlib suggests 0.6; on bench/evalmetrics.sh's
// faces 0.6 let 5.6% of different people through and 0.5 none, keeping
// 98.7% of the same person (README, "How well the evaluations work").
// similarity maps a distance d to 0..1 with 1 / (1 + (d/0.5)^2): 1 for the
// same embedding, 0.5 at the radius, 0.2 at 1.0.
const faceRadius = 0.5

func similarity(d float64) float64 { return round4(1 / (1 + (d/faceRadius)*(d/faceRadius))) }

// faceScorer is scorer face: each image's face against the embeddings of
// reference photos, embedded in process or by an external embedder.
type faceScorer struct{}

func (faceScorer) check(s *Score) error {
	if s.Reference == "" {
		return errors.New("scorer face needs reference: a directory of photos of the person")
	}
	if s.Face != "" && s.Face != "largest" && s.Face != "all" {
		return fmt.Errorf("face: %q: want largest or all", s.Face)
	}
	return nil
}

// builtinEmbedder: scorer face without command or url embeds in process.
func (s *Score) builtinEmbedder() bool {
	return s.Scorer == "face" && len(s.Command) == 0 && s.URL == ""
}

// embedderID identifies what turns an image into face embeddings.
func (s *Score) embedderID(root string) (string, error) {
	if s.builtinEmbedder() {
		return builtinEmbedderID, nil
	}
	files, err := digestFiles(root, s.Inputs)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(map[string]any{"command": s.Command, "url": s.URL, "params": s.Params, "inputs": files})
	return string(b), nil
}

func (faceScorer) identity(s *Score, env *Env) (string, error) {
	emb, err := s.embedderID(env.Root)
	if err != nil {
		return "", err
	}
	ref, err := referenceDigest(env.Root, s.Reference)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("face v3 %s face=%s reference=%s min_detection_score=%v", emb, s.Face, ref, minDetectionScore(env)), nil
}

// minDetectionScore is policy.face.min_detection_score: faces the detector
// scored lower are not faces to the scorers.
func minDetectionScore(env *Env) float64 {
	v, _ := number(env.Policy["face.min_detection_score"])
	return v
}

// foundFace is one face of an image as the embedder found it. Detector
// facts are known only for the built-in embedder.
type foundFace struct {
	Embedding []float64 `json:"embedding"`
	Score     *float64  `json:"score,omitempty"`
	Px        int       `json:"px,omitempty"`
	Roll      float64   `json:"roll,omitempty"`
	Eyes      bool      `json:"eyes,omitempty"`
}

// kept drops the faces the detector scored below floor.
func kept(faces []foundFace, floor float64) []foundFace {
	var out []foundFace
	for _, f := range faces {
		if f.Score == nil || *f.Score >= floor {
			out = append(out, f)
		}
	}
	return out
}

// score gives each item faces (found), and for an image with a face its
// distances to the reference faces and the detector's facts about it.
func (faceScorer) score(ctx context.Context, s *Score, env *Env, items []Item) ([]map[string]any, error) {
	floor := minDetectionScore(env)
	refs, err := referenceImages(env.Root, s.Reference)
	if err != nil {
		return nil, err
	}
	refFound, embedded, err := s.embed(ctx, env, refs)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	fmt.Fprintf(env.Log, "reference %s: %d photo(s), %d embedded now\n", s.Reference, len(refs), embedded)
	var refFaces [][]float64
	for i, found := range refFound {
		found = kept(found, floor)
		if len(found) == 0 {
			fmt.Fprintf(env.Log, "warning: no face in reference %s\n", refs[i].Path)
			continue
		}
		refFaces = append(refFaces, found[0].Embedding)
	}
	if len(refFaces) == 0 {
		return nil, fmt.Errorf("no face found in the reference photos of %s", s.Reference)
	}
	centroid := make([]float64, len(refFaces[0]))
	for _, f := range refFaces {
		if len(f) != len(centroid) {
			return nil, errors.New("reference embeddings differ in length")
		}
		for k, v := range f {
			centroid[k] += v / float64(len(refFaces))
		}
	}
	found, _, err := s.embed(ctx, env, items)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(items))
	for i, faces := range found {
		faces = kept(faces, floor)
		m := map[string]any{"faces": float64(len(faces)), "references_used": float64(len(refFaces))}
		out[i] = m
		compared := faces
		if s.Face != "all" && len(faces) > 1 {
			compared = faces[:1] // the largest
		}
		best, nearest := -1, math.Inf(1)
		for k, f := range compared {
			if len(f.Embedding) != len(centroid) {
				return nil, fmt.Errorf("%s: embedding of length %d, the reference's are %d", items[i].Path, len(f.Embedding), len(centroid))
			}
			for _, r := range refFaces {
				if d := l2(f.Embedding, r); d < nearest {
					best, nearest = k, d
				}
			}
		}
		if best < 0 {
			continue
		}
		f := compared[best]
		var sum float64
		for _, r := range refFaces {
			sum += l2(f.Embedding, r)
		}
		m["distance"] = round4(nearest)
		m["distance_mean"] = round4(sum / float64(len(refFaces)))
		m["distance_centroid"] = round4(l2(f.Embedding, centroid))
		m["similarity"] = similarity(nearest)
		if f.Score != nil {
			m["detection_score"] = round4(*f.Score)
			m["face_px"] = float64(f.Px)
			m["roll"] = round4(f.Roll)
			m["eyes_found"] = map[bool]float64{true: 1, false: 0}[f.Eyes]
		}
	}
	return out, nil
}

func l2(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}

// embed returns the faces of each image with their embeddings, from the
// cache (keyed by image content and embedder) where possible, and how many
// images it embedded.
func (s *Score) embed(ctx context.Context, env *Env, items []Item) ([][]foundFace, int, error) {
	id, err := s.embedderID(env.Root)
	if err != nil {
		return nil, 0, err
	}
	return perItem(env, "embed "+id+" ", "embedding", items, func(todo []Item) ([][]foundFace, error) {
		if s.builtinEmbedder() {
			return embedBuiltin(ctx, env, todo)
		}
		return s.embedExternal(ctx, env, todo)
	}, nil)
}

// embedExternal asks a command or service for the embeddings.
func (s *Score) embedExternal(ctx context.Context, env *Env, items []Item) ([][]foundFace, error) {
	results, err := s.call(ctx, env, items)
	if err != nil {
		return nil, err
	}
	out := make([][]foundFace, len(items))
	for i, r := range results {
		if r.Error != "" {
			return nil, fmt.Errorf("%s: %s", items[i].Path, r.Error)
		}
		out[i] = []foundFace{}
		for _, e := range r.Embeddings {
			out[i] = append(out[i], foundFace{Embedding: e})
		}
	}
	return out, nil
}

// embedBuiltin finds the faces of each image (largest first), crops each
// by the reference rule and embeds it with the built-in net.
func embedBuiltin(ctx context.Context, env *Env, items []Item) ([][]foundFace, error) {
	net, err := facenet.Load()
	if err != nil {
		return nil, err
	}
	out := make([][]foundFace, len(items))
	// Detection and the net are parallel inside; overlapping images as
	// well fills the single-threaded gaps (decoding, cropping).
	err = eachImage(ctx, env, items, "faces", func(i int, img image.Image) error {
		faces, err := detectFaces(img, items[i].SHA256)
		if err != nil {
			return err
		}
		found := make([]foundFace, 0, len(faces))
		for _, f := range faces {
			d := net.Embed(facedetect.Crop(img, f))
			e := make([]float64, len(d))
			for k, v := range d {
				e[k] = float64(v)
			}
			score := round4(float64(f.Score))
			found = append(found, foundFace{Embedding: e, Score: &score, Px: f.Scale, Roll: f.Roll, Eyes: f.Eyes})
		}
		out[i] = found
		return nil
	})
	return out, err
}

// referenceImages lists the reference photos.
func referenceImages(root, reference string) ([]Item, error) {
	files, err := pathglob.Files(root, []string{reference})
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	var refs []Item
	for _, f := range files {
		if !imageExts[strings.ToLower(path.Ext(f))] {
			continue
		}
		it, err := DescribeImage(root, f)
		if err != nil {
			return nil, err
		}
		refs = append(refs, it)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("reference %s holds no images", reference)
	}
	return refs, nil
}

// referenceDigest identifies the reference set by its images' contents.
func referenceDigest(root, reference string) (string, error) {
	refs, err := referenceImages(root, reference)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, r := range refs {
		io.WriteString(h, r.SHA256+"\n")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// mainFace is the largest face of an image that the detector scored at
// least policy.face.min_detection_score: where skin and exposure are
// measured.
func mainFace(img image.Image, digest string, env *Env) (facedetect.Face, bool, error) {
	faces, err := detectFaces(img, digest)
	if err != nil {
		return facedetect.Face{}, false, err
	}
	floor := minDetectionScore(env)
	for _, f := range faces {
		if float64(f.Score) >= floor {
			return f, true, nil
		}
	}
	return facedetect.Face{}, false, nil
}

// detections remembers each image's faces by content digest for the life
// of the process: the skin, exposure and face scorers of a batch run side
// by side on the same images, and each image is searched once. Callers
// that arrive while a search is under way wait for it.
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
