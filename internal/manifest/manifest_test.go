package manifest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func hashFile(abs string) (string, error) {
	data, err := os.ReadFile(abs)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
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
	dir := t.TempDir()
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
	m, err := Create(context.Background(), dir, hashFile, Options{Jobs: 2, Previous: &prev})
	if err != nil {
		t.Fatal(err)
	}
	if a := m.Images[0]; a.Width != 400 || a.Caption != "lent caption" {
		t.Errorf("a.png did not reuse the previous entry: %+v", a)
	}
	if b := m.Images[1]; b.Width != 5 || b.Caption != "b caption" {
		t.Errorf("b.png changed but was not read again: %+v", b)
	}
}

func TestCreateCancelled(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), 2, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Create(ctx, dir, hashFile, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// Encode is valid JSON that Read gives back unchanged, byte for byte.
func TestEncodeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "x"), 0o755)
	writePNG(t, filepath.Join(dir, "x", "a.png"), 2, 2)
	os.WriteFile(filepath.Join(dir, "x", "a.txt"), []byte(`a "quoted" <caption> & more`), 0o644)
	writePNG(t, filepath.Join(dir, "x", "b.png"), 3, 2)
	for _, d := range []string{dir, t.TempDir()} { // a dataset, and an empty one
		m, err := Create(context.Background(), d, hashFile, Options{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(t.TempDir(), "m.json")
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
