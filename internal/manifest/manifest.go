// Package manifest builds and compares dataset manifests: for every image
// of a kohya-style dataset (10_name/img.png with img.txt beside it), its
// SHA-256, size and caption, with a summary. A manifest's JSON is
// deterministic, so its SHA-256 identifies the dataset's content.
package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	_ "golang.org/x/image/webp"
)

// Version is the manifest format's version.
const Version = 1

// Entry is one image of the dataset.
type Entry struct {
	Path          string `json:"path"` // relative to the dataset, slash-separated
	SHA256        string `json:"sha256"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
	Caption       string `json:"caption,omitempty"`
	CaptionSHA256 string `json:"caption_sha256,omitempty"` // empty: no caption file
}

// Summary describes the dataset as a whole.
type Summary struct {
	Images       int            `json:"images"`
	Resolutions  map[string]int `json:"resolutions"`
	Captioned    int            `json:"captioned"`
	Uncaptioned  []string       `json:"uncaptioned"`
	CaptionWords Words          `json:"caption_words"`
}

// Words is the distribution of caption lengths, in words.
type Words struct {
	Min    int     `json:"min"`
	Mean   float64 `json:"mean"`
	Median int     `json:"median"`
	Max    int     `json:"max"`
}

// Manifest is a dataset's manifest.
type Manifest struct {
	Version int     `json:"version"`
	Images  []Entry `json:"images"`
	Summary Summary `json:"summary"`
}

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true}

// Hasher returns the SHA-256 (hex) of a file, e.g. through a stat cache.
type Hasher func(abs string) (string, error)

// Options tune Create.
type Options struct {
	Jobs int // files hashed at a time (default 1)
	// Previous is an earlier manifest of the same directory (usually the
	// file about to be replaced), or nil. An image whose digest and a
	// caption whose digest are unchanged take their dimensions and text from
	// it, so with a stat cache an unchanged dataset is only stat'ed.
	Previous *Manifest
}

// Create builds the manifest of the images under dir. It stops early when
// ctx is cancelled.
func Create(ctx context.Context, dir string, sum Hasher, o Options) (*Manifest, error) {
	var rels []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && imageExts[strings.ToLower(filepath.Ext(p))] {
			rel, _ := filepath.Rel(dir, p)
			rels = append(rels, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	sort.Strings(rels)
	prev := map[string]*Entry{}
	if o.Previous != nil {
		for i := range o.Previous.Images {
			prev[o.Previous.Images[i].Path] = &o.Previous.Images[i]
		}
	}
	entries := make([]Entry, len(rels))
	errs := make([]error, len(rels))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(o.Jobs, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				entries[i], errs[i] = entry(dir, rels[i], sum, prev[rels[i]])
			}
		}()
	}
feed:
	for i := range rels {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	m := &Manifest{Version: Version, Images: entries}
	m.summarise()
	return m, nil
}

// entry describes one image; prev, when not nil, is its entry in an
// earlier manifest.
func entry(dir, rel string, sum Hasher, prev *Entry) (Entry, error) {
	abs := filepath.Join(dir, filepath.FromSlash(rel))
	e := Entry{Path: rel}
	var err error
	if e.SHA256, err = sum(abs); err != nil {
		return e, fmt.Errorf("manifest: %w", err)
	}
	if prev != nil && prev.SHA256 == e.SHA256 && prev.Width > 0 {
		e.Width, e.Height = prev.Width, prev.Height
	} else {
		f, err := os.Open(abs)
		if err != nil {
			return e, fmt.Errorf("manifest: %w", err)
		}
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil {
			return e, fmt.Errorf("manifest: %s: not a readable image: %w", rel, err)
		}
		e.Width, e.Height = cfg.Width, cfg.Height
	}
	capPath := strings.TrimSuffix(abs, filepath.Ext(abs)) + ".txt"
	capSum, err := sum(capPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return e, nil // no caption
	case err != nil:
		return e, fmt.Errorf("manifest: caption: %w", err)
	}
	e.CaptionSHA256 = capSum
	if prev != nil && prev.CaptionSHA256 == capSum {
		e.Caption = prev.Caption
		return e, nil
	}
	data, err := os.ReadFile(capPath)
	if err != nil {
		return e, fmt.Errorf("manifest: caption: %w", err)
	}
	e.Caption = strings.TrimSpace(string(data))
	return e, nil
}

func (m *Manifest) summarise() {
	s := Summary{Images: len(m.Images), Resolutions: map[string]int{}, Uncaptioned: []string{}}
	var lengths []int
	for _, e := range m.Images {
		s.Resolutions[fmt.Sprintf("%dx%d", e.Width, e.Height)]++
		if e.CaptionSHA256 == "" {
			s.Uncaptioned = append(s.Uncaptioned, e.Path)
			continue
		}
		s.Captioned++
		lengths = append(lengths, len(strings.Fields(e.Caption)))
	}
	if len(lengths) > 0 {
		sort.Ints(lengths)
		total := 0
		for _, n := range lengths {
			total += n
		}
		s.CaptionWords = Words{Min: lengths[0], Max: lengths[len(lengths)-1], Median: lengths[len(lengths)/2],
			Mean: float64(int(float64(total)/float64(len(lengths))*100+0.5)) / 100}
	}
	m.Summary = s
}

// Encode returns the manifest's JSON: keys in a fixed order, no
// timestamps, so the same dataset always gives the same bytes; one image per
// line, which keeps the file quick to write and its diffs readable.
func (m *Manifest) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(200 * (len(m.Images) + 10))
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	fmt.Fprintf(&b, "{\n  \"version\": %d,\n  \"images\": [", m.Version)
	for i := range m.Images {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		if err := enc.Encode(&m.Images[i]); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	if len(m.Images) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("],\n  \"summary\": ")
	summary, err := json.MarshalIndent(m.Summary, "  ", "  ")
	if err != nil {
		return nil, err
	}
	b.Write(summary)
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// Previous is the manifest at name if there is a readable one, else nil:
// the manifest about to be replaced, for Options.Previous. A missing or
// damaged file only means every image is read again.
func Previous(name string) *Manifest {
	m, err := Read(name)
	if err != nil {
		return nil
	}
	return m
}

// Read loads a manifest file.
func Read(name string) (*Manifest, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: not a manifest: %w", name, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("%s: manifest version %d, want %d", name, m.Version, Version)
	}
	return &m, nil
}

// Diff is what changed from one manifest to another.
type Diff struct {
	Added             []string `json:"added"`
	Removed           []string `json:"removed"`
	ContentChanged    []string `json:"content_changed"`
	CaptionChanged    []string `json:"caption_changed"`
	ResolutionChanged []string `json:"resolution_changed"` // "path: 512x512 -> 1024x1024"
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.ContentChanged)+len(d.CaptionChanged)+len(d.ResolutionChanged) == 0
}

// Compare diffs a against b, by image path.
func Compare(a, b *Manifest) Diff {
	d := Diff{Added: []string{}, Removed: []string{}, ContentChanged: []string{}, CaptionChanged: []string{}, ResolutionChanged: []string{}}
	old := map[string]Entry{}
	for _, e := range a.Images {
		old[e.Path] = e
	}
	seen := map[string]bool{}
	for _, e := range b.Images {
		seen[e.Path] = true
		o, ok := old[e.Path]
		switch {
		case !ok:
			d.Added = append(d.Added, e.Path)
			continue
		case o.SHA256 != e.SHA256:
			d.ContentChanged = append(d.ContentChanged, e.Path)
		}
		if o.CaptionSHA256 != e.CaptionSHA256 {
			d.CaptionChanged = append(d.CaptionChanged, e.Path)
		}
		if o.Width != e.Width || o.Height != e.Height {
			d.ResolutionChanged = append(d.ResolutionChanged, fmt.Sprintf("%s: %dx%d -> %dx%d", e.Path, o.Width, o.Height, e.Width, e.Height))
		}
	}
	for _, e := range a.Images {
		if !seen[e.Path] {
			d.Removed = append(d.Removed, e.Path)
		}
	}
	return d
}

// String lists the differences, one line each.
func (d Diff) String() string {
	var b strings.Builder
	for _, g := range []struct {
		label string
		paths []string
	}{{"added", d.Added}, {"removed", d.Removed}, {"image changed", d.ContentChanged}, {"caption changed", d.CaptionChanged}, {"resolution changed", d.ResolutionChanged}} {
		for _, p := range g.paths {
			fmt.Fprintf(&b, "%-18s %s\n", g.label, p)
		}
	}
	return b.String()
}
