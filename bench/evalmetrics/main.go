// Command evalmetrics measures lifeos's built-in evaluations against real
// photos and altered copies of them, and prints the README's table:
//
//	go run ./bench/evalmetrics [-groups DIR] [-v]
//
// The subjects are the sample portraits (testdata/images) and, with
// -groups, every face found in the photos of DIR (bench/evalmetrics.sh
// fetches the group photos that ship with the MIT-licensed npm package
// @vladmandic/face-api), each cut out with its surroundings. Every subject
// is altered by each of internal/alter's variants.
//
// What is measured, and against what:
//   - detection: the subject's face found (in every variant, its position
//     moved with the variant), boxes beyond one per face, boxes on no face
//     (also on the non-face sample images);
//   - identity: the distance from a subject's face to the same face in its
//     mild, pose and tilt variants (same person) and to the other faces of
//     its photo and the other portraits (different people), for each crop
//     rule;
//   - skin realism (the skin scorer with the subject's mild variants as the
//     reference photos, leaving the one scored out) and exposure (the
//     exposure scorer's face_luminance), real against each alteration
//     family.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	_ "image/jpeg"

	"github.com/lifeos/lifeos/internal/alter"
	"github.com/lifeos/lifeos/internal/facedetect"
	"github.com/lifeos/lifeos/internal/facenet"
	"github.com/lifeos/lifeos/internal/roc"
	"github.com/lifeos/lifeos/runner"
	"github.com/lifeos/lifeos/steps"
)

var (
	groups  = flag.String("groups", "", "a directory of group photos whose faces become subjects too")
	verbose = flag.Bool("v", false, "print every measurement")
	dump    = flag.String("dump", "", "write every measurement to `FILE`, one JSON object a line")
	root    = flag.String("root", ".", "the repository root (for testdata/images)")
)

// subject is one face to alter: its image, its face there, and the other
// faces of the same photo (different people).
type subject struct {
	name  string
	photo string // subjects of one photo are different people
	img   image.Image
	face  facedetect.Face
	all   []facedetect.Face
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "evalmetrics:", err)
		os.Exit(1)
	}
}

func run() error {
	subs, err := subjects()
	if err != nil {
		return err
	}
	net, err := facenet.Load()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "evalmetrics-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	policy, err := runner.LoadPolicy(*root, "", false, nil)
	if err != nil {
		return err
	}
	floor, _ := policy.Get("face.min_detection_score")
	m := newMeasure(net, tmp)
	m.floor = floor
	switch v := floor.(type) {
	case int:
		m.minScore = float64(v)
	case float64:
		m.minScore = v
	}
	if *dump != "" {
		f, err := os.Create(*dump)
		if err != nil {
			return err
		}
		defer f.Close()
		m.dumpFile = f
	}
	for i, s := range subs {
		fmt.Fprintf(os.Stderr, "subject %d/%d %s\n", i+1, len(subs), s.name)
		if err := m.subject(s); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if err := m.nonFaces(); err != nil {
		return err
	}
	m.report(subs)
	return nil
}

func load(name string) (image.Image, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return img, nil
}

// maxSide bounds a subject's image: the alterations and searches then
// take seconds, not minutes.
const maxSide = 512

func subjects() ([]subject, error) {
	var subs []subject
	for _, n := range []string{"portrait-astronaut-eileen-collins.png", "portrait-grace-hopper.png"} {
		img, err := load(filepath.Join(*root, "testdata", "images", n))
		if err != nil {
			return nil, err
		}
		faces, err := facedetect.Detect(img)
		if err != nil || len(faces) != 1 {
			return nil, fmt.Errorf("%s: want one face, found %d (%v)", n, len(faces), err)
		}
		subs = append(subs, subject{name: n, photo: n, img: img, face: faces[0], all: faces})
	}
	if *groups == "" {
		return subs, nil
	}
	files, _ := filepath.Glob(filepath.Join(*groups, "*.jpg"))
	sort.Strings(files)
	for _, file := range files {
		img, err := load(file)
		if err != nil {
			return nil, err
		}
		faces, err := facedetect.Detect(img)
		if err != nil {
			return nil, err
		}
		for k, f := range faces {
			// The face with its surroundings: 3x its size, within the photo.
			side := 3 * f.Scale
			r := image.Rect(f.Col-side/2, f.Row-side/2, f.Col+side/2, f.Row+side/2).Intersect(img.Bounds())
			crop := alter.FromImage(img.(interface {
				SubImage(image.Rectangle) image.Image
			}).SubImage(r)).Image()
			var sub image.Image = crop
			if max(r.Dx(), r.Dy()) > maxSide {
				sub = alter.Shrink(crop, float64(maxSide)/float64(max(r.Dx(), r.Dy())))
			}
			found, err := facedetect.Detect(sub)
			if err != nil {
				return nil, err
			}
			// The subject is the face nearest the centre.
			b := sub.Bounds()
			best, bd := -1, math.Inf(1)
			for i, g := range found {
				if d := math.Hypot(float64(g.Col-b.Dx()/2), float64(g.Row-b.Dy()/2)); d < bd {
					best, bd = i, d
				}
			}
			if best < 0 || bd > 0.25*float64(b.Dx()) {
				fmt.Fprintf(os.Stderr, "%s face %d: not found again in its crop; left out\n", filepath.Base(file), k)
				continue
			}
			subs = append(subs, subject{name: fmt.Sprintf("%s#%d", filepath.Base(file), k), photo: file, img: sub, face: found[best], all: found})
		}
	}
	return subs, nil
}

// crop rules compared for identity.
var cropModes = []struct {
	name string
	mode facedetect.CropMode
}{{"box", facedetect.CropBox}, {"box+roll", facedetect.CropBoxRoll}, {"eyes", facedetect.CropEyes}}

type measure struct {
	net *facenet.Net
	tmp string

	mu sync.Mutex
	// detection, by family: subject faces, found, extra boxes on a found
	// face, boxes on no face, images.
	det map[string]*detStat
	// embeddings of each subject's base face, by crop rule.
	base map[string][][]float64 // mode -> per subject index
	// same-person distances by crop rule and family.
	same map[string]map[string][]float64
	// realism and face luminance, real and by family.
	realism, realismNoRef, faceLum map[string][]float64
	// distances to other people, by crop rule.
	diff     map[string][]float64
	floor    any
	minScore float64
	subs     []subject
	dumpFile *os.File
}

type detStat struct{ faces, found, extra, falseBoxes, images int }

func newMeasure(net *facenet.Net, tmp string) *measure {
	return &measure{net: net, tmp: tmp, det: map[string]*detStat{}, base: map[string][][]float64{},
		same: map[string]map[string][]float64{}, realism: map[string][]float64{}, realismNoRef: map[string][]float64{},
		faceLum: map[string][]float64{}, diff: map[string][]float64{}}
}

func (m *measure) embed(img image.Image, f facedetect.Face, mode facedetect.CropMode) []float64 {
	d := m.net.Embed(facedetect.CropWith(img, f, mode))
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}

func l2(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += (a[i] - b[i]) * (a[i] - b[i])
	}
	return math.Sqrt(s)
}

// family groups the variants for the tables. Rotations are binned by the
// head's tilt in the result: the variant's angle plus the roll the face
// already had (alter's d turns the head by -d on screen).
func family(v alter.Variant, roll float64) string {
	if v.Family == "rotate" {
		var d float64
		fmt.Sscanf(v.Name, "rotate %g", &d)
		switch t := math.Abs(roll - d); {
		case t <= 15:
			return "tilt up to 15"
		case t <= 25:
			return "tilt 15-25"
		default:
			return "tilt over 25"
		}
	}
	return v.Family
}

func (m *measure) subject(s subject) error {
	idx := len(m.subs)
	m.subs = append(m.subs, s)
	for _, cm := range cropModes {
		m.base[cm.name] = append(m.base[cm.name], m.embed(s.img, s.face, cm.mode))
	}
	// Different people: the other faces of the photo, and every other
	// photo's subjects when this one is a portrait (or they are).
	for j, o := range m.subs[:idx] {
		if o.photo != s.photo && !strings.HasPrefix(o.name, "portrait-") && !strings.HasPrefix(s.name, "portrait-") {
			continue
		}
		for _, cm := range cropModes {
			m.diff[cm.name] = append(m.diff[cm.name], l2(m.base[cm.name][idx], m.base[cm.name][j]))
		}
	}
	variants := append([]alter.Variant{{Family: "mild", Name: "original", Make: func(i image.Image) *image.NRGBA { return alter.FromImage(i).Image() }}}, alter.Variants()...)
	dir := filepath.Join(m.tmp, fmt.Sprintf("s%02d", idx))
	for _, sub := range []string{"v", "ref"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	var items []steps.Item
	var fams, vnames []string
	b := s.img.Bounds()
	for vi, v := range variants {
		img := v.Make(s.img)
		fam := family(v, s.face.Roll)
		name := fmt.Sprintf("v/%02d.png", vi)
		if err := writePNG(filepath.Join(dir, name), img); err != nil {
			return err
		}
		it, err := describe(dir, name, img)
		if err != nil {
			return err
		}
		items, fams, vnames = append(items, it), append(fams, fam), append(vnames, v.Name)
		if v.Family == "mild" {
			if err := writePNG(filepath.Join(dir, "ref", fmt.Sprintf("%02d.png", vi)), img); err != nil {
				return err
			}
		}
		// Detection: each face of the photo moved as the variant moves it.
		// Only faces at or above the policy's detection floor count, as
		// for the scorers.
		all, err := facedetect.Detect(img)
		if err != nil {
			return err
		}
		var faces []facedetect.Face
		for _, f := range all {
			if float64(f.Score) >= m.minScore {
				faces = append(faces, f)
			}
		}
		st := m.stat(fam)
		st.images++
		matched := make([]int, len(faces))
		for i := range matched {
			matched[i] = -1
		}
		subjectAt := -1
		for ti, t := range s.all {
			x, y := float64(t.Col), float64(t.Row)
			if v.Map != nil {
				x, y = v.Map(x, y, b.Dx(), b.Dy())
			}
			if x < 0 || y < 0 || x >= float64(img.Bounds().Dx()) || y >= float64(img.Bounds().Dy()) {
				continue
			}
			hits := 0
			for i, f := range faces {
				if math.Hypot(float64(f.Col)-x, float64(f.Row)-y) <= 0.35*float64(t.Scale) {
					matched[i] = ti
					hits++
					if t == s.face && subjectAt < 0 {
						subjectAt = i
					}
				}
			}
			if t == s.face {
				st.faces++
				if hits > 0 {
					st.found++
				}
				st.extra += max(hits-1, 0)
			}
		}
		for _, mt := range matched {
			if mt < 0 {
				st.falseBoxes++
			}
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "  %-28s faces %d subject %v\n", v.Name, len(faces), subjectAt >= 0)
		}
		for i, f := range faces {
			m.record(map[string]any{"subject": s.name, "family": fam, "variant": v.Name, "box": i, "score": f.Score,
				"true": matched[i] >= 0, "subject_face": i == subjectAt, "eyes": f.Eyes})
		}
		// Identity: the same face in the benign variants.
		if subjectAt >= 0 && (v.Family == "mild" || v.Family == "pose" || v.Family == "rotate") && v.Name != "original" {
			for _, cm := range cropModes {
				d := l2(m.embed(img, faces[subjectAt], cm.mode), m.base[cm.name][idx])
				if m.same[cm.name] == nil {
					m.same[cm.name] = map[string][]float64{}
				}
				m.same[cm.name][fam] = append(m.same[cm.name][fam], d)
			}
		}
	}
	return m.scores(dir, items, fams, vnames)
}

// scores runs the skin and exposure scorers, as a pipeline would, over a
// subject's variants.
func (m *measure) scores(dir string, items []steps.Item, fams, names []string) error {
	ctx := context.Background()
	env := &steps.Env{Root: dir, Log: io.Discard, StepID: "s", Cache: newMemCache(),
		Policy: map[string]any{"face.min_detection_score": m.floor}}
	expo, _, err := (&steps.Score{Scorer: "exposure"}).Metrics(ctx, env, items)
	if err != nil {
		return err
	}
	noref, _, err := (&steps.Score{Scorer: "skin"}).Metrics(ctx, env, items)
	if err != nil {
		return err
	}
	all, _, err := (&steps.Score{Scorer: "skin", Reference: "ref"}).Metrics(ctx, env, items)
	if err != nil {
		return err
	}
	for i := range items {
		fam := fams[i]
		realism := all[i]["realism"].(float64)
		if fam == "mild" {
			// Scored against the other mild copies: leave this one out.
			ref := filepath.Join(dir, "ref", filepath.Base(items[i].Path))
			aside := ref + ".aside"
			if err := os.Rename(ref, aside); err != nil {
				return err
			}
			one, _, err := (&steps.Score{Scorer: "skin", Reference: "ref"}).Metrics(ctx, env, items[i:i+1])
			if err != nil {
				return err
			}
			if err := os.Rename(aside, ref); err != nil {
				return err
			}
			realism = one[0]["realism"].(float64)
		}
		// Skin realism is judged on a face; an image whose face was not
		// found is rejected for that before its skin matters.
		if all[i]["face"].(float64) == 1 {
			m.realism[fam] = append(m.realism[fam], realism)
			m.realismNoRef[fam] = append(m.realismNoRef[fam], noref[i]["realism"].(float64))
		}
		m.faceLum[fam] = append(m.faceLum[fam], expo[i]["face_luminance"].(float64))
		if *verbose {
			fmt.Fprintf(os.Stderr, "  %-10s %s realism %.3f (no ref %.3f) skin %v face_luminance %.3f\n", fam, items[i].Path,
				realism, noref[i]["realism"], all[i], expo[i]["face_luminance"])
		}
		m.record(map[string]any{"subject": m.subs[len(m.subs)-1].name, "family": fam, "variant": names[i],
			"skin": all[i], "realism": realism, "exposure": expo[i]})
	}
	return nil
}

// nonFaces counts the boxes found on the sample images without a person.
func (m *measure) nonFaces() error {
	for _, n := range []string{"nonface-cat-chelsea.png", "nonface-coffee-cup.png", "texture-brick.png"} {
		img, err := load(filepath.Join(*root, "testdata", "images", n))
		if err != nil {
			return err
		}
		for _, v := range alter.Variants() {
			if v.Family != "mild" && v.Family != "pose" && v.Family != "rotate" {
				continue
			}
			faces, err := facedetect.Detect(v.Make(img))
			if err != nil {
				return err
			}
			st := m.stat("no face")
			st.images++
			for _, f := range faces {
				if float64(f.Score) >= m.minScore {
					st.falseBoxes++
				}
			}
		}
	}
	return nil
}

// record appends one measurement to the -dump file.
func (m *measure) record(v map[string]any) {
	if m.dumpFile == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	json.NewEncoder(m.dumpFile).Encode(v)
}

func (m *measure) stat(fam string) *detStat {
	if m.det[fam] == nil {
		m.det[fam] = &detStat{}
	}
	return m.det[fam]
}

func (m *measure) report(subs []subject) {
	portraits, groupFaces := 0, 0
	for _, s := range subs {
		if strings.HasPrefix(s.name, "portrait-") {
			portraits++
		} else {
			groupFaces++
		}
	}
	fmt.Printf("Subjects: %d portraits and %d faces from group photos, each altered %d ways.\n\n", portraits, groupFaces, len(alter.Variants()))

	fmt.Printf("Detection (the subject's face, moved with each variant; boxes scoring %v or more):\n", m.floor)
	fmt.Println()
	fmt.Println("| variants | images | subject found | extra boxes per face | boxes on no face per image |")
	fmt.Println("|---|--:|--:|--:|--:|")
	for _, fam := range slices.Sorted(maps.Keys(m.det)) {
		st := m.det[fam]
		found, extra := "–", "–"
		if st.faces > 0 {
			found = fmt.Sprintf("%.1f%%", 100*float64(st.found)/float64(st.faces))
			extra = fmt.Sprintf("%.3f", float64(st.extra)/float64(max(st.found, 1)))
		}
		fmt.Printf("| %s | %d | %s | %s | %.3f |\n", fam, st.images, found, extra, float64(st.falseBoxes)/float64(st.images))
	}

	fmt.Println()
	fmt.Println("Identity (distance to the same face in its mild, pose and tilt variants, against the distance to other people):")
	fmt.Println()
	fmt.Println("| crop rule | same-person pairs | median, max | different-person pairs | min, median | AUC | EER at | TAR / FAR at 0.4 | at 0.5 | at 0.6 |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, cm := range cropModes {
		var same []float64
		for _, fam := range slices.Sorted(maps.Keys(m.same[cm.name])) {
			same = append(same, m.same[cm.name][fam]...)
		}
		diff := m.diff[cm.name]
		r := roc.Analyze(same, diff, false)
		at := func(t float64) string {
			p := r.At(same, diff, t)
			return fmt.Sprintf("%.1f%% / %.1f%%", 100*p.TAR, 100*p.FAR)
		}
		fmt.Printf("| %s | %d | %.3f, %.3f | %d | %.3f, %.3f | %.3f | %.3f (EER %.1f%%) | %s | %s | %s |\n", cm.name,
			len(same), quantile(same, 0.5), quantile(same, 1), len(diff), quantile(diff, 0), quantile(diff, 0.5),
			r.AUC, r.EERAt.Value, 100*r.EER, at(0.4), at(0.5), at(0.6))
	}
	fmt.Println()
	fmt.Println("Same-person distance by variant family (median, max), per crop rule:")
	fmt.Println()
	for _, cm := range cropModes {
		var parts []string
		for _, fam := range slices.Sorted(maps.Keys(m.same[cm.name])) {
			d := m.same[cm.name][fam]
			parts = append(parts, fmt.Sprintf("%s %.3f, %.3f", fam, quantile(d, 0.5), quantile(d, 1)))
		}
		fmt.Printf("- %s: %s\n", cm.name, strings.Join(parts, "; "))
	}

	fmt.Println()
	fmt.Println("Skin realism on the face (images whose face was found), real (mild copies, each scored against the others) against each family:")
	fmt.Println()
	fmt.Println("| family | images | AUC with reference photos | AUC without (built-in bands) | median realism |")
	fmt.Println("|---|--:|--:|--:|--:|")
	real, realNo := m.realism["mild"], m.realismNoRef["mild"]
	fmt.Printf("| real (mild) | %d | – | – | %.3f |\n", len(real), quantile(real, 0.5))
	for _, fam := range slices.Sorted(maps.Keys(m.realism)) {
		if fam == "mild" {
			continue
		}
		a := roc.Analyze(real, m.realism[fam], true)
		b := roc.Analyze(realNo, m.realismNoRef[fam], true)
		fmt.Printf("| %s | %d | %.3f | %.3f | %.3f |\n", fam, len(m.realism[fam]), a.AUC, b.AUC, quantile(m.realism[fam], 0.5))
	}

	fmt.Println()
	fmt.Println("Exposure on the face (face_luminance), real (mild) against under- and over-exposed copies:")
	fmt.Println()
	lum := m.faceLum["mild"]
	under := roc.Analyze(lum, m.faceLum["under"], true)
	over := roc.Analyze(lum, m.faceLum["over"], false)
	fmt.Printf("- real: %d images, face_luminance %.3f to %.3f (median %.3f)\n", len(lum), quantile(lum, 0), quantile(lum, 1), quantile(lum, 0.5))
	fmt.Printf("- under (-1, -1.5 stops): AUC %.3f, face_luminance %.3f to %.3f\n", under.AUC, quantile(m.faceLum["under"], 0), quantile(m.faceLum["under"], 1))
	fmt.Printf("- over (+1, +1.5 stops): AUC %.3f, face_luminance %.3f to %.3f\n", over.AUC, quantile(m.faceLum["over"], 0), quantile(m.faceLum["over"], 1))
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64{}, v...)
	sort.Float64s(s)
	return s[int(math.Round(q*float64(len(s)-1)))]
}

func writePNG(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func describe(dir, name string, img image.Image) (steps.Item, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return steps.Item{}, err
	}
	sum := sha256.Sum256(data)
	b := img.Bounds()
	return steps.Item{Path: name, SHA256: hex.EncodeToString(sum[:]), Width: b.Dx(), Height: b.Dy()}, nil
}

// memCache is an in-memory steps.ItemCache: reference photos are
// measured once per subject.
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemCache() *memCache { return &memCache{m: map[string][]byte{}} }

func (c *memCache) Get(k string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *memCache) Put(k string, v []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
	return nil
}

func (c *memCache) PutBatch(keys []string, data [][]byte) error {
	for i, k := range keys {
		c.Put(k, data[i])
	}
	return nil
}
