package manifest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

// hashFile is a Hasher that knows every digest without lending the file
// to look, as a full stat cache does: Create must read what it needs itself.
func hashFile(abs string, _ func(io.Reader) error) (Sum, error) {
	data, err := os.ReadFile(abs)
	if err != nil {
		return Sum{}, err
	}
	sum := sha256.Sum256(data)
	return Sum{SHA256: hex.EncodeToString(sum[:])}, nil
}

func writePNG(t *testing.T, name string, w, h int) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
}

// An unchanged image or caption takes its dimensions or text from the
// previous manifest; a changed one is read again.
func TestCreateReusesPrevious(t *testing.T) {
	dir := testdir.New(t)
	writePNG(t, filepath.Join(dir, "a.png"), 4, 3)
	writePNG(t, filepath.Join(dir, "b.png"), 5, 5)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("new caption\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b caption"), 0o644)
	first, err := Create(context.Background(), dir, hashFile, Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if a := first.Images[0]; a.Width != 4 || a.Height != 3 || a.Caption != "new caption" {
		t.Fatalf("a.png: %+v", a)
	}

	// Doctor the previous manifest: values it lends show through.
	prev := *first
	prev.Images = append([]Entry(nil), first.Images...)
	prev.Images[0].Width, prev.Images[0].Caption = 400, "lent caption"
	prev.Images[1].SHA256, prev.Images[1].Width = "stale", 500 // a changed image
	prev.Images[1].CaptionSHA256, prev.Images[1].Caption = "stale", "stale caption"
	m, err := Create(context.Background(), dir, hashFile, Options{Jobs: 2, Previous: func() *Manifest { return &prev }})
	if err != nil {
		t.Fatal(err)
	}
	if a := m.Images[0]; a.Width != 400 || a.Caption != "lent caption" {
		t.Errorf("a.png did not reuse the previous entry: %+v", a)
	}
	if b := m.Images[1]; b.Width != 5 || b.Caption != "b caption" {
		t.Errorf("b.png changed but was not read again: %+v", b)
	}

	// When hashing read every file, the previous manifest is not even read.
	_, err = Create(context.Background(), dir, HashFile, Options{Previous: func() *Manifest {
		t.Error("the previous manifest was read although every file was")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateCancelled(t *testing.T) {
	dir := testdir.New(t)
	writePNG(t, filepath.Join(dir, "a.png"), 2, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Create(ctx, dir, hashFile, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// Encode is valid JSON that Read gives back unchanged, byte for byte.
func TestEncodeRoundTrip(t *testing.T) {
	dir := testdir.New(t)
	os.Mkdir(filepath.Join(dir, "x"), 0o755)
	writePNG(t, filepath.Join(dir, "x", "a.png"), 2, 2)
	os.WriteFile(filepath.Join(dir, "x", "a.txt"), []byte(`a "quoted" <caption> & more`), 0o644)
	writePNG(t, filepath.Join(dir, "x", "b.png"), 3, 2)
	for _, d := range []string{dir, testdir.New(t)} { // a dataset, and an empty one
		m, err := Create(context.Background(), d, hashFile, Options{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(testdir.New(t), "m.json")
		os.WriteFile(name, data, 0o644)
		back, err := Read(name)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		again, _ := back.Encode()
		if string(again) != string(data) {
			t.Errorf("round trip changed the bytes:\n%s\n%s", data, again)
		}
	}
}

// A file read to be hashed lends its header or text in the same pass; the
// manifest is the same as when everything is read separately.
func TestCreateOnePass(t *testing.T) {
	dir := testdir.New(t)
	writePNG(t, filepath.Join(dir, "a.png"), 4, 3)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte(" a caption \n"), 0o644)
	writePNG(t, filepath.Join(dir, "b.png"), 7, 5)
	want, err := Create(context.Background(), dir, hashFile, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Create(context.Background(), dir, HashFile, Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := want.Encode()
	g, _ := got.Encode()
	if string(w) != string(g) {
		t.Errorf("one pass:\n%s\nseparate reads:\n%s", g, w)
	}
	if got.Images[0].Caption != "a caption" || got.Images[1].Width != 7 {
		t.Errorf("one pass lost a caption or a size:\n%s", g)
	}
	// Read once: a hasher that removes each file once it has hashed it
	// leaves nothing to open a second time.
	readOnce := func(abs string, look func(io.Reader) error) (Sum, error) {
		sum, err := HashFile(abs, look)
		os.Remove(abs)
		return sum, err
	}
	once, err := Create(context.Background(), dir, readOnce, Options{})
	if err != nil {
		t.Fatalf("a file was opened again after it was hashed: %v", err)
	}
	if o, _ := once.Encode(); string(o) != string(w) {
		t.Errorf("read once:\n%s\nwant:\n%s", o, w)
	}
	writePNG(t, filepath.Join(dir, "a.png"), 4, 3)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte(" a caption \n"), 0o644)
	writePNG(t, filepath.Join(dir, "b.png"), 7, 5)
	os.WriteFile(filepath.Join(dir, "c.png"), []byte("not a png"), 0o644)
	if _, err := Create(context.Background(), dir, HashFile, Options{}); err == nil || !strings.Contains(err.Error(), "c.png: not a readable image") {
		t.Errorf("a broken image read in one pass: %v", err)
	}
}

// The hasher is asked only for files that exist: an image's caption is
// looked up in the folder's listing, not by a stat that fails (a thousand
// uncaptioned images were a thousand failing stats on every run).
func TestScanAsksOnlyForListedCaptions(t *testing.T) {
	dir := testdir.New(t)
	writePNG(t, filepath.Join(dir, "a.png"), 4, 3)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a caption"), 0o644)
	writePNG(t, filepath.Join(dir, "b.png"), 7, 5)
	var mu sync.Mutex
	var asked []string
	hasher := func(abs string, look func(io.Reader) error) (Sum, error) {
		mu.Lock()
		asked = append(asked, filepath.Base(abs))
		mu.Unlock()
		return HashFile(abs, look)
	}
	m, err := Create(context.Background(), dir, hasher, Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(asked)
	if want := []string{"a.png", "a.txt", "b.png"}; !slices.Equal(asked, want) {
		t.Errorf("asked for %v, want %v", asked, want)
	}
	if m.Images[0].Caption != "a caption" || m.Images[1].CaptionSHA256 != "" || m.Summary.Captioned != 1 {
		t.Errorf("captions: %+v", m.Images)
	}
}

// Links to images and to folders are followed (a dataset assembled from
// photos kept elsewhere); a link to a folder above is an error, not a hang.
func TestCreateFollowsLinks(t *testing.T) {
	photos, dir := testdir.New(t), testdir.New(t)
	writePNG(t, filepath.Join(photos, "a.png"), 2, 3)
	os.Mkdir(filepath.Join(photos, "more"), 0o755)
	writePNG(t, filepath.Join(photos, "more", "b.png"), 4, 5)
	if err := os.Symlink(filepath.Join(photos, "a.png"), filepath.Join(dir, "a.png")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if os.Getenv("LIFEOS_UNDER_WINE") != "" {
		t.Skip("Wine 8 makes the link, but reads it back as neither a link nor its target")
	}
	os.Symlink(filepath.Join(photos, "more"), filepath.Join(dir, "more"))
	m, err := Create(context.Background(), dir, HashFile, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != 2 || m.Images[0].Path != "a.png" || m.Images[1].Path != "more/b.png" || m.Images[1].Width != 4 {
		t.Errorf("linked images: %+v", m.Images)
	}
	os.Symlink(dir, filepath.Join(dir, "loop"))
	if _, err := Create(context.Background(), dir, HashFile, Options{}); err == nil || !strings.Contains(err.Error(), "folders deep") {
		t.Errorf("a link to a folder above: %v", err)
	}
}
