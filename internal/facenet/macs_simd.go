//go:build goexperiment.simd && amd64

package facenet

import "simd/archsimd"

// With GOEXPERIMENT=simd on amd64, macs4 runs on vector registers: 16
// channels a register with AVX-512, 8 with AVX2 and FMA. Sums are formed
// in another order than the portable loop's (fused multiply-adds, one
// input channel at a time); descriptors stay within 1e-5 of the portable
// ones (macs_simd_test.go).
func init() {
	switch {
	case archsimd.X86.AVX512():
		macs4Vec = macs4AVX512
	case archsimd.X86.AVX2() && archsimd.X86.FMA():
		macs4Vec = macs4AVX2
	}
}

// macs4AVX512 is macs4 with the four pixels' sums for 32 output channels
// held in eight registers over all input channels, then stored once: the
// loop that stores every four channels is bound by those stores.
func macs4AVX512(a0, a1, a2, a3, in0, in1, in2, in3, w []float32, cout int) {
	n := len(a0)
	a1, a2, a3 = a1[:n], a2[:n], a3[:n]
	cin := len(in0)
	in1, in2, in3 = in1[:cin], in2[:cin], in3[:cin]
	co := 0
	for ; co+32 <= n; co += 32 {
		s00, s01 := archsimd.LoadFloat32x16Slice(a0[co:]), archsimd.LoadFloat32x16Slice(a0[co+16:])
		s10, s11 := archsimd.LoadFloat32x16Slice(a1[co:]), archsimd.LoadFloat32x16Slice(a1[co+16:])
		s20, s21 := archsimd.LoadFloat32x16Slice(a2[co:]), archsimd.LoadFloat32x16Slice(a2[co+16:])
		s30, s31 := archsimd.LoadFloat32x16Slice(a3[co:]), archsimd.LoadFloat32x16Slice(a3[co+16:])
		for ci := range cin {
			row := w[ci*cout+co : ci*cout+co+32]
			x0, x1 := archsimd.LoadFloat32x16Slice(row), archsimd.LoadFloat32x16Slice(row[16:])
			p := archsimd.BroadcastFloat32x16(in0[ci])
			s00, s01 = p.MulAdd(x0, s00), p.MulAdd(x1, s01)
			p = archsimd.BroadcastFloat32x16(in1[ci])
			s10, s11 = p.MulAdd(x0, s10), p.MulAdd(x1, s11)
			p = archsimd.BroadcastFloat32x16(in2[ci])
			s20, s21 = p.MulAdd(x0, s20), p.MulAdd(x1, s21)
			p = archsimd.BroadcastFloat32x16(in3[ci])
			s30, s31 = p.MulAdd(x0, s30), p.MulAdd(x1, s31)
		}
		s00.StoreSlice(a0[co:])
		s01.StoreSlice(a0[co+16:])
		s10.StoreSlice(a1[co:])
		s11.StoreSlice(a1[co+16:])
		s20.StoreSlice(a2[co:])
		s21.StoreSlice(a2[co+16:])
		s30.StoreSlice(a3[co:])
		s31.StoreSlice(a3[co+16:])
	}
	if co < n {
		// The last channels (a multiple of 32 in every layer of this net,
		// so rarely): the portable loop over a view of them.
		macs4Go(a0[co:], a1[co:], a2[co:], a3[co:], in0, in1, in2, in3, w[co:], cout)
	}
}

// macs4AVX2 is macs4AVX512 with 8-channel registers: 16 output channels
// per pass.
func macs4AVX2(a0, a1, a2, a3, in0, in1, in2, in3, w []float32, cout int) {
	n := len(a0)
	a1, a2, a3 = a1[:n], a2[:n], a3[:n]
	cin := len(in0)
	in1, in2, in3 = in1[:cin], in2[:cin], in3[:cin]
	co := 0
	for ; co+16 <= n; co += 16 {
		s00, s01 := archsimd.LoadFloat32x8Slice(a0[co:]), archsimd.LoadFloat32x8Slice(a0[co+8:])
		s10, s11 := archsimd.LoadFloat32x8Slice(a1[co:]), archsimd.LoadFloat32x8Slice(a1[co+8:])
		s20, s21 := archsimd.LoadFloat32x8Slice(a2[co:]), archsimd.LoadFloat32x8Slice(a2[co+8:])
		s30, s31 := archsimd.LoadFloat32x8Slice(a3[co:]), archsimd.LoadFloat32x8Slice(a3[co+8:])
		for ci := range cin {
			row := w[ci*cout+co : ci*cout+co+16]
			x0, x1 := archsimd.LoadFloat32x8Slice(row), archsimd.LoadFloat32x8Slice(row[8:])
			p := archsimd.BroadcastFloat32x8(in0[ci])
			s00, s01 = p.MulAdd(x0, s00), p.MulAdd(x1, s01)
			p = archsimd.BroadcastFloat32x8(in1[ci])
			s10, s11 = p.MulAdd(x0, s10), p.MulAdd(x1, s11)
			p = archsimd.BroadcastFloat32x8(in2[ci])
			s20, s21 = p.MulAdd(x0, s20), p.MulAdd(x1, s21)
			p = archsimd.BroadcastFloat32x8(in3[ci])
			s30, s31 = p.MulAdd(x0, s30), p.MulAdd(x1, s31)
		}
		s00.StoreSlice(a0[co:])
		s01.StoreSlice(a0[co+8:])
		s10.StoreSlice(a1[co:])
		s11.StoreSlice(a1[co+8:])
		s20.StoreSlice(a2[co:])
		s21.StoreSlice(a2[co+8:])
		s30.StoreSlice(a3[co:])
		s31.StoreSlice(a3[co+8:])
	}
	if co < n {
		macs4Go(a0[co:], a1[co:], a2[co:], a3[co:], in0, in1, in2, in3, w[co:], cout)
	}
}
