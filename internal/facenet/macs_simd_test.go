//go:build goexperiment.simd && amd64

package facenet

import (
	"path/filepath"
	"simd/archsimd"
	"testing"
)

// The vector kernels give the portable loop's descriptors within 1e-5, on
// every reference crop, with each kernel the CPU has.
func TestVectorKernelsMatchPortable(t *testing.T) {
	if macs4Vec == nil {
		t.Skip("no AVX2 or AVX-512 here")
	}
	net, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/*__*.png")
	kernels := map[string]func(a0, a1, a2, a3, in0, in1, in2, in3, w []float32, cout int){"AVX2": macs4AVX2}
	if archsimd.X86.AVX512() {
		kernels["AVX-512"] = macs4AVX512
	}
	saved := macs4Vec
	defer func() { macs4Vec = saved }()
	for _, f := range files {
		img := readPNG(t, f)
		macs4Vec = nil
		want := net.Embed(img)
		for name, k := range kernels {
			macs4Vec = k
			if d := Distance(net.Embed(img), want); d > 1e-5 {
				t.Errorf("%s, %s kernel: L2 %.2g from the portable descriptor, want <= 1e-5", f, name, d)
			}
		}
	}
}
