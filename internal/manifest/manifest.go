// Package manifest builds and compares dataset manifests: for every image
// of a kohya-style dataset (10_name/img.png with img.txt beside it), its
// SHA-256, size and caption, with a summary. A manifest's JSON is
// deterministic, so its SHA-256 identifies the dataset's content.
package manifest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	_ "golang.org/x/image/webp"

	"github.com/lifeos/lifeos/internal/filehash"
	"github.com/lifeos/lifeos/internal/par"
	"github.com/lifeos/lifeos/internal/pathglob"
)

// Version is the manifest format's version. It is part of Key: bump it
// when the same files would give a manifest with different bytes.
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

// Hasher returns the SHA-256 of a file, e.g. through a stat cache. When it
// reads the file to hash it, it lets look (when not nil) read the content
// from its start in the same pass and reports Looked: a file that must be
// hashed is read once, not twice. When it knows the digest without reading
// (the stat cache), look is not called.
type Hasher func(abs string, look func(io.Reader) error) (Sum, error)

// A Sum is what a Hasher found of a file.
type Sum struct {
	SHA256 string // hex, as sha256sum prints it
	Looked bool   // look read the file
	// Stamp is the file's stamp taken before it was read, or zero when the
	// Hasher took none; Record keeps it.
	Stamp filehash.Stamp
}

// HashFile is the Hasher without a stat cache: every file is read.
func HashFile(abs string, look func(io.Reader) error) (Sum, error) {
	sum, _, err := filehash.SumLook(abs, look)
	return Sum{SHA256: hex.EncodeToString(sum[:]), Looked: look != nil}, err
}

// Options tune Create.
type Options struct {
	Jobs int // files hashed at a time (default 1)
	// Previous returns an earlier manifest of the same directory (usually
	// the file about to be replaced), or nil; Previous itself may be nil.
	// An image whose digest and a caption whose digest are unchanged take
	// their dimensions and text from it, so with a stat cache an unchanged
	// dataset is only stat'ed. It is called only when hashing did not read
	// every file: decoding a 3 MB manifest for nothing was a sixth of a
	// cold run's time.
	Previous func() *Manifest
}

// Create builds the manifest of the images under dir: Scan, then
// Manifest. It stops early when ctx is cancelled.
func Create(ctx context.Context, dir string, sum Hasher, o Options) (*Manifest, error) {
	s, err := Scan(ctx, dir, sum, o.Jobs)
	if err != nil {
		return nil, err
	}
	return s.Manifest(ctx, o.Previous)
}

// A Scanned dataset is the list of its images with the digests of every
// image and caption: all a manifest depends on (Key), before the
// dimensions and captions are filled in (Manifest).
type Scanned struct {
	dir     string
	jobs    int
	entries []Entry
	sized   []bool // entries[i]'s dimensions are known (its image was read)
	texted  []bool // entries[i]'s caption text is known
	// stamps[i] are the stamps of entries[i]'s image and caption (zero:
	// none), and listed[i] whether its caption was listed, for Record.
	stamps [][2]filehash.Stamp
	listed []bool
	list   listing
}

// A listing is what listing a dataset's folders found besides its images.
type listing struct {
	dir string
	// captions are the caption files the listing found: an image without
	// one costs no failing stat (a tenth of the stats of a dataset with
	// a few uncaptioned images).
	captions map[string]bool
	// folders are the folders listed, each stamped before it was (the
	// dataset's own first), for Record.
	folders []stamped
	linked  bool // a link was followed
}

// stamped is a file or folder (slash-separated, relative to the dataset;
// "." for the dataset itself) and its stamp.
type stamped struct {
	rel string
	st  filehash.Stamp
}

// Scan lists the images under dir and hashes each image and caption
// through sum. A file sum has to read lends its header or text in the
// same pass; with a stat cache, an unchanged dataset is only stat'ed.
func Scan(ctx context.Context, dir string, sum Hasher, jobs int) (*Scanned, error) {
	l := listing{dir: dir, captions: map[string]bool{}}
	rels, err := l.images(".", 0)
	if errors.Is(err, fs.ErrNotExist) && len(l.folders) == 0 {
		return nil, fmt.Errorf("manifest: no dataset directory %s", dir)
	} else if errors.Is(err, errNotDir) && len(l.folders) == 0 {
		return nil, fmt.Errorf("manifest: dataset %s is not a directory", dir)
	} else if err != nil && len(l.folders) == 0 {
		return nil, fmt.Errorf("manifest: dataset: %w", err)
	} else if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	sort.Strings(rels)
	s := &Scanned{dir: dir, jobs: max(jobs, 1), entries: make([]Entry, len(rels)),
		sized: make([]bool, len(rels)), texted: make([]bool, len(rels)),
		stamps: make([][2]filehash.Stamp, len(rels)), listed: make([]bool, len(rels)), list: l}
	for i, rel := range rels {
		s.entries[i].Path = rel
	}
	err = s.each(ctx, func(i int) error { return s.hash(sum, i) })
	if err != nil {
		return nil, err
	}
	return s, nil
}

var errNotDir = errors.New("not a directory")

// images lists the image files under the folder sub (slash-separated,
// relative to the dataset), unsorted, and adds the .txt files to captions.
// Links are followed, to files and to folders: a dataset is often
// assembled from links to photos kept elsewhere. depth guards against a
// link to a folder above it.
func (l *listing) images(sub string, depth int) ([]string, error) {
	abs := filepath.Join(l.dir, filepath.FromSlash(sub))
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: more than %d folders deep (a link to a folder above it?)", abs, maxDepth)
	}
	// Stamped before it is listed: an entry added after the listing
	// changes the stamp Unchanged compares.
	st, dir, err := filehash.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !dir {
		return nil, fmt.Errorf("%s: %w", abs, errNotDir)
	}
	l.folders = append(l.folders, stamped{sub, st})
	// Unsorted (os.ReadDir sorts every folder): the list is sorted once.
	ents, err := pathglob.ReadDir(abs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range ents {
		rel := path.Join(sub, d.Name)
		typ := d.Type
		if typ&fs.ModeSymlink != 0 {
			l.linked = true
			st, err := os.Stat(filepath.Join(l.dir, filepath.FromSlash(rel)))
			if err != nil {
				return nil, err
			}
			typ = st.Mode().Type()
		}
		switch {
		case typ.IsDir():
			more, err := l.images(rel, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		case typ.IsRegular() && imageExts[strings.ToLower(path.Ext(rel))]:
			out = append(out, rel)
		case typ.IsRegular() && path.Ext(rel) == ".txt":
			l.captions[rel] = true
		}
	}
	return out, nil
}

const maxDepth = 32 // below the kernel's 40 links per path

// each calls f for every entry, on s.jobs goroutines (par.For).
func (s *Scanned) each(ctx context.Context, f func(i int) error) error {
	return par.For(ctx, len(s.entries), s.jobs, f)
}

// headers lends DecodeConfig a buffered reader: it would otherwise allocate
// (and clear) a 4 KiB one per image.
var headers = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

func (s *Scanned) abs(i int) string {
	return filepath.Join(s.dir, filepath.FromSlash(s.entries[i].Path))
}

func captionPath(abs string) string { return strings.TrimSuffix(abs, filepath.Ext(abs)) + ".txt" }

// captionOf is the caption file of the image at p, slash-separated.
func captionOf(p string) string { return strings.TrimSuffix(p, path.Ext(p)) + ".txt" }

// hash fills in the digests of entry i's image and caption, and what
// reading them for hashing showed.
func (s *Scanned) hash(hash Hasher, i int) error {
	e := &s.entries[i]
	abs := s.abs(i)
	var cfgErr error
	decode := func(r io.Reader) error {
		br := headers.Get().(*bufio.Reader)
		br.Reset(r)
		var cfg image.Config
		cfg, _, cfgErr = image.DecodeConfig(br)
		e.Width, e.Height = cfg.Width, cfg.Height
		br.Reset(nil)
		headers.Put(br)
		return nil // hash the whole file anyway; the error is reported below
	}
	sum, err := hash(abs, decode)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	e.SHA256, s.sized[i], s.stamps[i][0] = sum.SHA256, sum.Looked, sum.Stamp
	if cfgErr != nil {
		return fmt.Errorf("manifest: %s: not a readable image: %w", e.Path, cfgErr)
	}
	var text []byte
	readAll := func(r io.Reader) (err error) {
		text, err = io.ReadAll(r)
		return err
	}
	if !s.list.captions[captionOf(e.Path)] {
		e.CaptionSHA256, s.texted[i] = "", true // none was listed
		return nil
	}
	s.listed[i] = true
	sum, err = hash(captionPath(abs), readAll)
	e.CaptionSHA256, s.texted[i], s.stamps[i][1] = sum.SHA256, sum.Looked, sum.Stamp
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.CaptionSHA256, s.texted[i] = "", true // no caption
	case err != nil:
		return fmt.Errorf("manifest: caption: %w", err)
	case s.texted[i]:
		e.Caption = strings.TrimSpace(string(text))
	}
	return nil
}

// Key is the SHA-256 of what the manifest depends on: every image's path
// and digest and its caption's digest. Two scans with the same key give
// the same manifest, byte for byte.
func (s *Scanned) Key() [sha256.Size]byte {
	h := sha256.New()
	b := fmt.Appendf(nil, "lifeos manifest %d\n", Version)
	// By pointer: Record reads the digests while Manifest fills in the
	// other fields.
	for i := range s.entries {
		e := &s.entries[i]
		// Length-prefixed, so no path can pass for another's fields.
		b = strconv.AppendInt(b, int64(len(e.Path)), 10)
		b = append(b, ' ')
		b = append(b, e.Path...)
		b = append(b, ' ')
		b = append(b, e.SHA256...)
		b = append(b, ' ')
		b = append(b, e.CaptionSHA256...)
		b = append(b, '\n')
		if len(b) > 32<<10 {
			h.Write(b)
			b = b[:0]
		}
	}
	h.Write(b)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// Images is the number of images scanned.
func (s *Scanned) Images() int { return len(s.entries) }

// Manifest completes the scan into the manifest: the dimensions and
// caption text hashing did not show come from the manifest previous
// returns (an earlier manifest of the same directory, or nil; previous
// may be nil, and is not called when hashing read every file) where the
// digests match, else from the files.
func (s *Scanned) Manifest(ctx context.Context, previous func() *Manifest) (*Manifest, error) {
	old := map[string]*Entry{}
	var prev *Manifest
	if previous != nil && (slices.Contains(s.sized, false) || slices.Contains(s.texted, false)) {
		prev = previous()
	}
	if prev != nil {
		for i := range prev.Images {
			old[prev.Images[i].Path] = &prev.Images[i]
		}
	}
	err := s.each(ctx, func(i int) error {
		e := &s.entries[i]
		p := old[e.Path]
		if !s.sized[i] {
			if p != nil && p.SHA256 == e.SHA256 && p.Width > 0 {
				e.Width, e.Height = p.Width, p.Height
			} else if err := s.decode(i); err != nil {
				return err
			}
		}
		if !s.texted[i] {
			if p != nil && p.CaptionSHA256 == e.CaptionSHA256 {
				e.Caption = p.Caption
			} else {
				text, err := os.ReadFile(captionPath(s.abs(i)))
				if err != nil {
					return fmt.Errorf("manifest: caption: %w", err)
				}
				e.Caption = strings.TrimSpace(string(text))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := &Manifest{Version: Version, Images: s.entries}
	m.summarise()
	return m, nil
}

// decode reads entry i's dimensions from its image.
func (s *Scanned) decode(i int) error {
	e := &s.entries[i]
	f, err := os.Open(s.abs(i))
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Errorf("manifest: %s: not a readable image: %w", e.Path, err)
	}
	e.Width, e.Height = cfg.Width, cfg.Height
	return nil
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
