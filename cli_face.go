package main

import (
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // decoders for the images given
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"
	_ "golang.org/x/image/webp"

	"github.com/lifeos/lifeos/internal/facedetect"
	"github.com/lifeos/lifeos/internal/facenet"
	"github.com/lifeos/lifeos/runner"
)

// faceResult is one image in `lifeos face --json`.
type faceResult struct {
	File  string      `json:"file"`
	Faces []faceFound `json:"faces"`
}

type faceFound struct {
	Box       [4]int     `json:"box"`             // x, y, w, h
	Score     *float32   `json:"score,omitempty"` // none with --aligned
	Roll      float64    `json:"roll"`            // degrees, + when the head leans right on screen
	Eyes      *[2][2]int `json:"eyes,omitempty"`  // the pupils, x, y, when found
	Embedding []float32  `json:"embedding,omitempty"`
}

func (a *app) faceCmd() *cobra.Command {
	var asJSON, embedding, aligned bool
	cmd := &cobra.Command{
		Use:   "face IMAGE|DIR...",
		Short: "Show the faces the built-in face scorer finds, and their descriptors",
		Long: `Show, per image, the faces the built-in face scorer finds (box x,y,w,h,
detector score, roll in degrees and the pupils when found, largest first) and, with --embedding, each face's 128-d
descriptor. With --aligned, each image is taken as an already-cropped
150x150 face and embedded as it is: how to check a reference set or a crop.
A directory stands for the images below it.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root, err := a.root()
			if err != nil {
				return err
			}
			var net *facenet.Net
			if embedding || aligned {
				if net, err = facenet.Load(); err != nil {
					return err
				}
			}
			if argv, err = a.args(argv); err != nil {
				return err
			}
			names, err := imageFiles(root, argv)
			if err != nil {
				return err
			}
			var results []faceResult
			for _, name := range names {
				if err := a.ctx.Err(); err != nil {
					return err
				}
				r, err := describeFaces(resolve(root, name), net, aligned)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				r.File = name
				if !embedding {
					for i := range r.Faces {
						r.Faces[i].Embedding = nil
					}
				}
				results = append(results, r)
			}
			if asJSON {
				// Compact: indenting would put each of 128 numbers on a line.
				data, err := json.Marshal(results)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "%s\n", data)
				return err
			}
			for _, r := range results {
				fmt.Fprintf(a.stdout, "%s: %d face(s)\n", r.File, len(r.Faces))
				for _, f := range r.Faces {
					line := fmt.Sprintf("  box %d,%d %dx%d", f.Box[0], f.Box[1], f.Box[2], f.Box[3])
					if f.Score != nil {
						line += fmt.Sprintf("  score %.1f  roll %.1f", *f.Score, f.Roll)
					}
					if f.Eyes != nil {
						line += fmt.Sprintf("  eyes %d,%d %d,%d", f.Eyes[0][0], f.Eyes[0][1], f.Eyes[1][0], f.Eyes[1][1])
					}
					fmt.Fprintln(a.stdout, line)
					if f.Embedding != nil {
						fmt.Fprintf(a.stdout, "  embedding %s\n", formatFloats(f.Embedding))
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: [{file, faces: [{box: [x,y,w,h], score, embedding}]}]")
	cmd.Flags().BoolVar(&embedding, "embedding", false, "print each face's 128-d descriptor")
	cmd.Flags().BoolVar(&aligned, "aligned", false, "each image is a 150x150 face crop: embed it as it is, without detection")
	return cmd
}

// readImage decodes an image file the command line was given, refusing a
// decompression bomb from its header before decoding it.
func readImage(name string) (image.Image, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("not a readable image: %w", err)
	}
	if err := runner.CheckPixels(cfg); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("not a readable image: %w", err)
	}
	return img, nil
}

// describeFaces detects the faces of one image (or, aligned, takes the
// image as the crop) and embeds them when net is not nil.
func describeFaces(name string, net *facenet.Net, aligned bool) (faceResult, error) {
	img, err := readImage(name)
	if err != nil {
		return faceResult{}, err
	}
	r := faceResult{Faces: []faceFound{}}
	if aligned {
		b := img.Bounds()
		if b.Dx() != facenet.Size || b.Dy() != facenet.Size {
			return r, fmt.Errorf("--aligned takes %dx%d face crops; this image is %dx%d", facenet.Size, facenet.Size, b.Dx(), b.Dy())
		}
		d := net.Embed(img)
		r.Faces = append(r.Faces, faceFound{Box: [4]int{0, 0, b.Dx(), b.Dy()}, Embedding: d[:]})
		return r, nil
	}
	faces, err := facedetect.Detect(img)
	if err != nil {
		return r, err
	}
	for _, fc := range faces {
		box := fc.Box()
		found := faceFound{Box: [4]int{box.Min.X, box.Min.Y, box.Dx(), box.Dy()}, Score: &fc.Score, Roll: fc.Roll}
		if fc.Eyes {
			e := fc.EyesAt
			found.Eyes = &[2][2]int{{int(math.Round(e[0][0])), int(math.Round(e[0][1]))}, {int(math.Round(e[1][0])), int(math.Round(e[1][1]))}}
		}
		if net != nil {
			d := net.Embed(facedetect.Crop(img, fc))
			found.Embedding = d[:]
		}
		r.Faces = append(r.Faces, found)
	}
	return r, nil
}

func formatFloats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.6f", x)
	}
	return strings.Join(parts, " ")
}
