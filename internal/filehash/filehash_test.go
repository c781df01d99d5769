package filehash

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestSumMatchesSHA256(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, size := range []int{0, 1, 128 << 10, 128<<10 + 1, 300 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		name := filepath.Join(t.TempDir(), "f")
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
	if _, _, err := Sum(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
