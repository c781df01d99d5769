package steps

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/filehash"
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
	dir := b.TempDir()
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
		res, err := embedBuiltin(context.Background(), env, items)
		if err != nil || len(res[0].Embeddings) == 0 {
			b.Fatalf("no face: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/image")
}
