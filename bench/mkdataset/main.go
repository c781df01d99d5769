// Command mkdataset writes a kohya-style dataset of small, distinct PNG
// images for benchmarks: mkdataset DIR N [SIDE] writes
// DIR/10_bench/imgNNNNN.png, SIDE x SIDE pixels of noise (default 64, about
// 16 KB), with a caption .txt beside every image but each tenth.
package main

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: mkdataset DIR N [SIDE]")
		os.Exit(2)
	}
	side := 64
	if len(os.Args) == 4 {
		var err error
		if side, err = strconv.Atoi(os.Args[3]); err != nil || side < 1 {
			fmt.Fprintln(os.Stderr, "mkdataset: SIDE: want a number of pixels")
			os.Exit(2)
		}
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdataset: N:", err)
		os.Exit(2)
	}
	if err := write(filepath.Join(os.Args[1], "10_bench"), n, side); err != nil {
		fmt.Fprintln(os.Stderr, "mkdataset:", err)
		os.Exit(1)
	}
}

func write(dir string, n, side int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2)) // the same dataset every time
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	for i := range n {
		for p := 0; p < len(img.Pix); p += 4 {
			v := uint8(rng.IntN(256))
			img.SetRGBA(p/4%side, p/4/side, color.RGBA{v, v / 2, 255 - v, 255})
		}
		name := filepath.Join(dir, fmt.Sprintf("img%05d", i))
		f, err := os.Create(name + ".png")
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		if err := png.Encode(w, img); err != nil {
			f.Close()
			return err
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if i%10 != 9 {
			caption := fmt.Sprintf("photo of benchperson number %d, studio light", i)
			if err := os.WriteFile(name+".txt", []byte(caption), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
