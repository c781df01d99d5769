package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for image.DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
	"path"
	"strings"

	"github.com/lifeos/lifeos/internal/pathglob"
)

func init() {
	Register(&Type{
		Name:    "images",
		Version: 1,
		Summary: "existing images (a directory or a glob) as items",
		New:     func() Step { return new(Images) },
	})
}

// Images turns existing image files into items, so that images made
// elsewhere go through the same scoring, filter and reports as generated
// ones.
type Images struct {
	// From is a directory (every image below it) or a glob.
	From string `yaml:"from" doc:"a directory (every image below it) or a glob such as shots/*.png"`
}

// imageExts are the formats Go decodes without cgo.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true}

// maxImagePixels is the most pixels an image may declare in its header
// for lifeos to decode it: a 20000x20000 "decompression bomb" would take
// 1.6 GB. 64 MP is a 8192x8192 render.
const maxImagePixels = 64 << 20

// CheckPixels refuses an image whose header declares more than
// maxImagePixels, before anything decodes it.
func CheckPixels(cfg image.Config) error {
	if int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return fmt.Errorf("%dx%d is more than %d megapixels: refused", cfg.Width, cfg.Height, maxImagePixels>>20)
	}
	return nil
}

// IsImageFile says whether a file's name is one of the image formats the
// steps read.
func IsImageFile(name string) bool { return imageExts[strings.ToLower(path.Ext(name))] }

// Validate checks the pattern.
func (s *Images) Validate() error {
	if s.From == "" {
		return errors.New("images needs from: a directory or a glob")
	}
	return pathglob.CheckRead(s.From)
}

// Deps reads the directory or glob: adding, removing or changing an image
// changes the key.
func (s *Images) Deps(map[string]Outputs) Deps { return Deps{Reads: []string{s.From}} }

// Run lists the images with their digest and size.
func (s *Images) Run(ctx context.Context, env *Env) (Outputs, error) {
	files, err := pathglob.Files(env.Root, []string{s.From})
	if err != nil {
		return nil, err
	}
	var items []Item
	for _, f := range files {
		if !imageExts[strings.ToLower(path.Ext(f))] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it, err := DescribeImage(env.Root, f)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("no images (png, jpeg, gif) in %s", s.From)
	}
	fmt.Fprintf(env.Log, "%d images from %s\n", len(items), s.From)
	return Outputs{"items": items, "count": len(items), "summary": plural(len(items), "image")}, nil
}

// DescribeImage hashes an image and reads its size from its header: the
// item of an image file (rel is under root, or absolute).
func DescribeImage(root, rel string) (Item, error) {
	f, err := os.Open(itemFile(root, Item{Path: rel}))
	if err != nil {
		return Item{}, err
	}
	defer f.Close()
	h := sha256.New()
	cfg, _, err := image.DecodeConfig(io.TeeReader(f, h))
	if err != nil {
		return Item{}, fmt.Errorf("%s: not a readable image: %w", rel, err)
	}
	if err := CheckPixels(cfg); err != nil {
		return Item{}, fmt.Errorf("%s: %w", rel, err)
	}
	if _, err := io.Copy(h, f); err != nil {
		return Item{}, fmt.Errorf("%s: %w", rel, err)
	}
	return Item{Path: rel, SHA256: hex.EncodeToString(h.Sum(nil)), Width: cfg.Width, Height: cfg.Height}, nil
}
