package steps

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lifeos/lifeos/internal/facedetect"
	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/testdir"
)

// BenchmarkFacePortraits1024 runs the built-in face pipeline (decode,
// detect, crop, embed) over 1024x1024 portraits, as a production batch
// would; ns/op is per image, so 100 images take 100 times that.
func BenchmarkFacePortraits1024(b *testing.B) {
	src := loadPNG(b, "portrait-astronaut-eileen-collins.png")
	big := image.NewRGBA(image.Rect(0, 0, 1024, 1024))
	for y := range 1024 {
		for x := range 1024 {
			big.Set(x, y, src.At(x/2, y/2))
		}
	}
	dir := testdir.New(b)
	const n = 8
	var items []Item
	for i := range n {
		name := fmt.Sprintf("p%d.png", i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		big.Pix[i*4] ^= 1 // a distinct file each
		if err := png.Encode(f, big); err != nil {
			b.Fatal(err)
		}
		f.Close()
		sum, err := filehash.Hex(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, Item{Path: name, SHA256: sum, Width: 1024, Height: 1024})
	}
	env := &Env{Root: dir, Log: io.Discard}
	b.ResetTimer()
	for b.Loop() {
		// Each image is searched anew, as in a new run's process.
		detections.Clear()
		res, err := embedBuiltin(context.Background(), env, items)
		if err != nil || len(res[0]) == 0 {
			b.Fatalf("no face: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/image")
}

// An image with two people: by default its largest face (Grace Hopper's)
// is compared with the reference; with face: all, its best-matching one
// (the astronaut's).
func TestFaceAllComparesBestFace(t *testing.T) {
	hopper := loadPNG(t, "portrait-grace-hopper.png")            // 512x600, face scale 222
	astro := loadPNG(t, "portrait-astronaut-eileen-collins.png") // 512x512, face scale 111
	both := image.NewRGBA(image.Rect(0, 0, 1024, 600))
	for y := range 600 {
		for x := range 512 {
			both.Set(x, y, hopper.At(x, y))
			if y < 512 {
				both.Set(512+x, y, astro.At(x, y))
			}
		}
	}
	root := testdir.New(t)
	os.Mkdir(filepath.Join(root, "ref"), 0o755)
	writePNGFile(t, filepath.Join(root, "both.png"), both)
	writePNGFile(t, filepath.Join(root, "ref", "astro.png"), astro)
	sum, err := filehash.Hex(filepath.Join(root, "both.png"))
	if err != nil {
		t.Fatal(err)
	}
	items := []Item{{Path: "both.png", SHA256: sum, Width: 1024, Height: 600}}
	for _, tc := range []struct {
		face  string
		match bool
	}{{"", false}, {"all", true}} {
		s := &Score{Scorer: "face", Reference: "ref", Face: tc.face}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		out, err := s.Run(context.Background(), &Env{Root: root, Log: io.Discard, StepID: "face", Items: items})
		if err != nil {
			t.Fatal(err)
		}
		m := out["items"].([]Item)[0].Fields()["face"].(map[string]any)
		if m["faces"] != 2.0 {
			t.Errorf("face %q: %v faces, want 2", tc.face, m["faces"])
		}
		if sim := m["similarity"].(float64); (sim >= 0.5) != tc.match {
			t.Errorf("face %q: similarity %.3f, want a match: %v", tc.face, sim, tc.match)
		}
	}
}

func writePNGFile(t *testing.T, name string, img image.Image) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// A cancelled run starts no image and says why.
func TestEachImageStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	items := []Item{{Path: "a.png"}, {Path: "b.png"}}
	err := eachImage(ctx, &Env{Root: testdir.New(t), Log: io.Discard}, items, "images", func(int, image.Image) error {
		calls++
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("err %v after %d calls, want context.Canceled and none", err, calls)
	}
}

// The skin and face scorers share one search per image: concurrent callers
// with the same digest get the same result, searched once.
func TestDetectFacesOncePerImage(t *testing.T) {
	img := loadPNG(t, "portrait-grace-hopper.png")
	const digest = "test-digest-hopper"
	res := make([][]facedetect.Face, 4)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], _ = detectFaces(img, digest)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if len(r) != 1 || &r[0] != &res[0][0] {
			t.Fatalf("caller %d got %v, not the one shared search", i, r)
		}
	}
}
