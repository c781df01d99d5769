package steps

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"testing"
)

func loadPNG(t testing.TB, name string) image.Image {
	t.Helper()
	f, err := os.Open("../testdata/images/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// boxBlur returns img blurred with a (2r+1)² box, as an NRGBA image.
func boxBlur(img image.Image, r int) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var sr, sg, sb, n uint32
			for dy := -r; dy <= r; dy++ {
				for dx := -r; dx <= r; dx++ {
					p := image.Pt(x+dx, y+dy)
					if !p.In(b) {
						continue
					}
					c := color.NRGBAModel.Convert(img.At(p.X, p.Y)).(color.NRGBA)
					sr, sg, sb, n = sr+uint32(c.R), sg+uint32(c.G), sb+uint32(c.B), n+1
				}
			}
			out.SetNRGBA(x, y, color.NRGBA{uint8(sr / n), uint8(sg / n), uint8(sb / n), 255})
		}
	}
	return out
}

func TestSharpnessSeparatesBlur(t *testing.T) {
	for _, name := range []string{"portrait-astronaut-eileen-collins.png", "texture-brick.png"} {
		img := loadPNG(t, name)
		sharp := scoreSharpness(img)
		soft := scoreSharpness(boxBlur(img, 3))
		if !(sharp > 0.4 && soft < sharp/2) {
			t.Errorf("%s: sharpness %.3f, blurred %.3f; want the original above 0.4 and the blur under half of it", name, sharp, soft)
		}
	}
	flat := image.NewGray(image.Rect(0, 0, 64, 64))
	if s := scoreSharpness(flat); s != 0 {
		t.Errorf("flat image sharpness %v, want 0", s)
	}
}

func TestExposure(t *testing.T) {
	for _, tc := range []struct {
		grey          uint8
		mean, clipped float64
	}{
		{0, 0, 1},
		{255, 1, 1},
		{128, 0.502, 0},
	} {
		img := image.NewGray(image.Rect(0, 0, 40, 30))
		for i := range img.Pix {
			img.Pix[i] = tc.grey
		}
		m := exposureStats(img)
		if m.mean < tc.mean-0.001 || m.mean > tc.mean+0.001 || m.shadow+m.highlight != tc.clipped {
			t.Errorf("grey %d: %v, want mean %.3f clipped %v", tc.grey, m, tc.mean, tc.clipped)
		}
	}
	// The same picture through image.At and through the pixel buffer.
	img := loadPNG(t, "nonface-coffee-cup.png")
	rgba := image.NewRGBA(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	a, b := exposureStats(img), exposureStats(rgba)
	if a != b {
		t.Errorf("fast path %v differs from generic %v", a, b)
	}
}

func BenchmarkSharpness(b *testing.B) {
	img := loadPNG(b, "portrait-astronaut-eileen-collins.png")
	mp := float64(img.Bounds().Dx()*img.Bounds().Dy()) / 1e6
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scoreSharpness(img)
	}
	b.ReportMetric(mp*float64(b.N)/b.Elapsed().Seconds(), "MP/s")
}

func BenchmarkExposure(b *testing.B) {
	img := loadPNG(b, "portrait-astronaut-eileen-collins.png")
	mp := float64(img.Bounds().Dx()*img.Bounds().Dy()) / 1e6
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exposureStats(img)
	}
	b.ReportMetric(mp*float64(b.N)/b.Elapsed().Seconds(), "MP/s")
}
