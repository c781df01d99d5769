package filehash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeos/lifeos/internal/testdir"
)

func TestSumMatchesSHA256(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, size := range []int{0, 1, 128 << 10, 128<<10 + 1, 300 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		name := filepath.Join(testdir.New(t), "f")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(data)
		got, n, err := Sum(name)
		if err != nil || got != want || n != int64(size) {
			t.Errorf("size %d: Sum = %x, %d, %v; want %x, %d", size, got, n, err, want, size)
		}
		if h, _ := Hex(name); h != hex.EncodeToString(want[:]) {
			t.Errorf("size %d: Hex = %s", size, h)
		}
	}
	if _, _, err := Sum(filepath.Join(testdir.New(t), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestSumLookHashesWhatItShows(t *testing.T) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	name := filepath.Join(testdir.New(t), "f")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	for _, peek := range []int{0, 1, 4096, len(data), len(data) + 1} {
		var seen []byte
		got, n, err := SumLook(name, func(r io.Reader) error {
			seen, _ = io.ReadAll(io.LimitReader(r, int64(peek)))
			return nil
		})
		if err != nil || got != want || n != int64(len(data)) {
			t.Errorf("look at %d bytes: SumLook = %x, %d, %v; want %x, %d", peek, got, n, err, want, len(data))
		}
		if !bytes.Equal(seen, data[:min(peek, len(data))]) {
			t.Errorf("look at %d bytes saw %d bytes that differ from the file's start", peek, len(seen))
		}
	}
	stop := errors.New("not an image")
	if _, _, err := SumLook(name, func(io.Reader) error { return stop }); err != stop {
		t.Errorf("look's error: got %v, want it returned as it is", err)
	}
	if _, _, err := Sum(testdir.New(t)); err == nil {
		t.Error("hashing a directory: no error")
	}
}

// SumLookSize reads the size it is given and no further; a shorter file is
// hashed whole.
func TestSumLookSize(t *testing.T) {
	name := filepath.Join(testdir.New(t), "f")
	os.WriteFile(name, []byte("0123456789"), 0o644)
	for _, c := range []struct {
		size int64
		want string
	}{{-1, "0123456789"}, {4, "0123"}, {10, "0123456789"}, {20, "0123456789"}, {0, ""}} {
		var seen []byte
		sum, n, err := SumLookSize(name, c.size, func(r io.Reader) (err error) {
			seen, err = io.ReadAll(r)
			return err
		})
		if err != nil || sum != sha256.Sum256([]byte(c.want)) || n != int64(len(c.want)) || string(seen) != c.want {
			t.Errorf("size %d: read %q (%d bytes, %v), want %q", c.size, seen, n, err, c.want)
		}
	}
}

// SumLookStat stamps the file it opens as Stat does, reads it to that
// size, and reads no folder.
func TestSumLookStat(t *testing.T) {
	dir := testdir.New(t)
	name := filepath.Join(dir, "f")
	os.WriteFile(name, []byte("0123456789"), 0o644)
	var seen []byte
	sum, st, isDir, n, err := SumLookStat(name, func(r io.Reader) (err error) {
		seen, err = io.ReadAll(r)
		return err
	})
	want, _, _ := Stat(name)
	if err != nil || isDir || st != want || sum != sha256.Sum256([]byte("0123456789")) || n != 10 || string(seen) != "0123456789" {
		t.Errorf("file: %x %+v dir=%v n=%d %v; saw %q; want stamp %+v", sum, st, isDir, n, err, seen, want)
	}
	called := false
	if _, _, isDir, _, err := SumLookStat(dir, func(io.Reader) error { called = true; return nil }); err != nil || !isDir || called {
		t.Errorf("folder: dir=%v, %v, look called: %v", isDir, err, called)
	}
	if _, _, _, _, err := SumLookStat(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
