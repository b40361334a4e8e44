package torch_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/torch"
)

// ulps is the distance of a and b in float32 steps (same sign assumed).
func ulps(a, b float32) int64 {
	d := int64(math.Float32bits(a)&0x7fffffff) - int64(math.Float32bits(b)&0x7fffffff)
	if (a < 0) != (b < 0) && a != 0 && b != 0 {
		return math.MaxInt64
	}
	if d < 0 {
		d = -d
	}
	return d
}

// TestDynamicMapMatchesBitsandbytes: the maps equal bitsandbytes' create_dynamic_map
// as run under Debian's torch 1.13 (testdata/dynamic_map.py): exactly with that libtorch,
// within one float32 step with another (linspace's rounding may differ by version).
func TestDynamicMapMatchesBitsandbytes(t *testing.T) {
	raw, err := os.ReadFile("testdata/dynamic_map.json")
	require.NoError(t, err)
	var golden struct {
		Torch            string
		Signed, Unsigned []float32
	}
	require.NoError(t, json.Unmarshal(raw, &golden))
	s := torch.NewScope()
	defer s.Close()
	exact := strings.HasPrefix(torch.Version(), "1.13")
	for _, signed := range []bool{true, false} {
		want := golden.Unsigned
		if signed {
			want = golden.Signed
		}
		m := s.DynamicMap(signed)
		assert.Equal(t, []int64{256}, m.Shape())
		assert.Equal(t, torch.F32, m.DType())
		got := m.Float32s()
		require.Len(t, want, 256)
		if exact {
			assert.Equal(t, want, got, "signed=%v", signed)
		}
		for i := range want {
			assert.LessOrEqual(t, ulps(want[i], got[i]), int64(1), "signed=%v [%d]: %g vs %g", signed, i, want[i], got[i])
		}
		// the structure: sorted, 0 and 1 present, [-1, 1]
		for i := 1; i < 256; i++ {
			assert.Less(t, got[i-1], got[i], "signed=%v strictly increasing at %d", signed, i)
		}
		assert.Contains(t, got, float32(0))
		assert.Equal(t, float32(1), got[255])
		if signed {
			assert.InDelta(t, -0.99296875, got[0], 1e-7)
		} else {
			assert.Equal(t, float32(0), got[0])
		}
	}
}

// studentT draws from Student's t with df degrees of freedom (heavy tails for small df).
func studentT(r *rand.Rand, df int) float64 {
	var chi float64
	for i := 0; i < df; i++ {
		z := r.NormFloat64()
		chi += z * z
	}
	return r.NormFloat64() / math.Sqrt(chi/float64(df))
}

// refQuant is an independent block-wise quantisation in Go: per block absmax, the
// scaled value u = clamp(x * float32(1/absmax), -1, 1) in float32 as the kernel computes
// it, and the index of the nearest map value found by a linear scan in float64.
type refQuant struct {
	absmax []float32
	u      []float32
	near   []int     // nearest map index by scan (lowest on ties)
	dist   []float64 // |u - code[near]|
}

func quantRef(x []float32, code []float32, block int) refQuant {
	n := len(x)
	nb := (n + block - 1) / block
	r := refQuant{absmax: make([]float32, nb), u: make([]float32, n), near: make([]int, n), dist: make([]float64, n)}
	for b := 0; b < nb; b++ {
		lo, hi := b*block, min(n, (b+1)*block)
		var a float32
		for _, v := range x[lo:hi] {
			a = max(a, float32(math.Abs(float64(v))))
		}
		r.absmax[b] = a
		inv := 1 / max(a, float32(1e-38))
		for i := lo; i < hi; i++ {
			u := min(max(x[i]*inv, -1), 1)
			r.u[i] = u
			best, bd := 0, math.Inf(1)
			for k, c := range code {
				if d := math.Abs(float64(u) - float64(c)); d < bd {
					best, bd = k, d
				}
			}
			r.near[i], r.dist[i] = best, bd
		}
	}
	return r
}

// maxHalfGap is the largest distance from a point of [-1, 1] (signed) or [0, 1] to its
// nearest map value: the method's bound on |u - code[q]|.
func maxHalfGap(code []float32, signed bool) float64 {
	g := 0.0
	for i := 1; i < len(code); i++ {
		g = math.Max(g, (float64(code[i])-float64(code[i-1]))/2)
	}
	if signed {
		g = math.Max(g, float64(code[0])+1)
	}
	return g
}

// TestQuantizeBlockwise checks the kernel against the independent Go computation on
// normal, heavy-tailed (Student-t, 1 and 3 degrees of freedom: Cauchy and a milder tail)
// and squared (unsigned, like Adam's second moment) data, with a last partial block:
// the block maxima are exact, every code is a nearest map value, the dequantised values
// are code * absmax exactly, and each element's error is within its block's bound
// absmax * (half the largest gap of the map).
func TestQuantizeBlockwise(t *testing.T) {
	const block = 256
	n := 37*block + 101
	r := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		name   string
		signed bool
		draw   func() float64
	}{
		{"normal", true, r.NormFloat64},
		{"student-t1", true, func() float64 { return studentT(r, 1) }},
		{"student-t3", true, func() float64 { return studentT(r, 3) }},
		{"normal-squared", false, func() float64 { z := r.NormFloat64(); return z * z * 1e-4 }},
		{"student-t2-squared", false, func() float64 { z := studentT(r, 2); return z * z }},
	}
	s := torch.NewScope()
	defer s.Close()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(c.draw())
			}
			x[5*block+3] = 0 // exact zeros and a whole zero block
			for i := 9 * block; i < 10*block; i++ {
				x[i] = 0
			}
			code := s.DynamicMap(c.signed).ToDevice(torch.F32, testDevice)
			codes := code.Float32s()
			a := f32(s, x, int64(n))
			q := s.Zeros([]int64{int64(n)}, torch.U8, testDevice)
			am := s.Zeros([]int64{int64((n + block - 1) / block)}, torch.F32, testDevice)
			torch.QuantizeBlockwise(a, code, block, q, am)
			deq := torch.DequantizeBlockwise(q, am, code, block)
			assert.Equal(t, []int64{int64(n)}, deq.Shape())
			assert.Equal(t, torch.F32, deq.DType())

			ref := quantRef(x, codes, block)
			gotAm, gotQ, gotD := am.Float32s(), q.Bytes(), deq.Float32s()
			assert.Equal(t, ref.absmax, gotAm, "block maxima")
			bound := maxHalfGap(codes, c.signed)
			same, worst, sumRel, nRel := 0, 0.0, 0.0, 0
			for i := range x {
				k := int(gotQ[i])
				if k == ref.near[i] {
					same++
				}
				// a nearest value (ties and the midpoint's float32 rounding aside)
				d := math.Abs(float64(ref.u[i]) - float64(codes[k]))
				require.LessOrEqual(t, d, ref.dist[i]+1e-7, "[%d] u=%g: code %d (%g), nearest %d (%g)", i, ref.u[i], k, codes[k], ref.near[i], codes[ref.near[i]])
				A := ref.absmax[i/block]
				require.Equal(t, codes[k]*A, gotD[i], "[%d] dequantised = code * absmax", i)
				err := math.Abs(float64(gotD[i]) - float64(x[i]))
				// |x - code*A| <= A |u - code| + A |x/A - u| + rounding of the product
				require.LessOrEqual(t, err, float64(A)*(bound+1e-6), "[%d] x=%g deq=%g absmax=%g", i, x[i], gotD[i], A)
				if A > 0 {
					worst = math.Max(worst, err/float64(A))
				}
				if math.Abs(float64(x[i])) > 0.01*float64(A) {
					sumRel += err / math.Abs(float64(x[i]))
					nRel++
				}
			}
			assert.GreaterOrEqual(t, same, n-n/10000, "codes equal to the scan's nearest index")
			for i := 9 * block; i < 10*block; i++ {
				assert.Zero(t, gotD[i], "zero block stays zero")
			}
			t.Logf("%s: max |err|/absmax %.5f (bound %.5f), mean relative error %.4f over |x| > absmax/100, %d/%d codes equal to the scan's",
				c.name, worst, bound, sumRel/float64(nRel), same, n)
		})
	}
}

// TestQuantizeBlockwiseShapes: tensors smaller than a block, other block sizes, 2-D
// input, and clear errors for wrong code/absmax sizes and dtypes.
func TestQuantizeBlockwiseShapes(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	code := s.DynamicMap(true).ToDevice(torch.F32, testDevice)
	for _, tc := range []struct {
		shape []int64
		block int64
	}{{[]int64{5}, 256}, {[]int64{3, 70}, 64}, {[]int64{512}, 256}, {[]int64{1}, 1}} {
		a := s.Randn(tc.shape, torch.F32, torch.CPU, nil).ToDevice(torch.F32, testDevice)
		n := a.Numel()
		q := s.Zeros(tc.shape, torch.U8, testDevice)
		am := s.Zeros([]int64{(n + tc.block - 1) / tc.block}, torch.F32, testDevice)
		torch.QuantizeBlockwise(a, code, tc.block, q, am)
		d := torch.DequantizeBlockwise(q, am, code, tc.block)
		assert.Equal(t, tc.shape, d.Shape())
		x, y, amv := a.Float32s(), d.Float32s(), am.Float32s()
		for i := range x {
			assert.LessOrEqual(t, math.Abs(float64(x[i]-y[i])), 0.0071*float64(amv[int64(i)/tc.block]), "%v/%d [%d]", tc.shape, tc.block, i)
		}
	}
	a := s.Zeros([]int64{300}, torch.F32, testDevice)
	q := s.Zeros([]int64{300}, torch.U8, testDevice)
	for _, tc := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"absmax size", func() { torch.QuantizeBlockwise(a, code, 256, q, s.Zeros([]int64{1}, torch.F32, testDevice)) }, "absmax must be"},
		{"codes dtype", func() {
			torch.QuantizeBlockwise(a, code, 256, s.Zeros([]int64{300}, torch.F32, testDevice), s.Zeros([]int64{2}, torch.F32, testDevice))
		}, "uint8"},
		{"map size", func() {
			torch.QuantizeBlockwise(a, s.Zeros([]int64{16}, torch.F32, testDevice), 256, q, s.Zeros([]int64{2}, torch.F32, testDevice))
		}, "256 values"},
		{"block size", func() { torch.DequantizeBlockwise(q, s.Zeros([]int64{2}, torch.F32, testDevice), code, 0) }, "block size"},
	} {
		err := torch.Try(tc.f)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.msg, tc.name)
	}
}

// TestAdamW8bitStep, over 20 steps for f32, bf16 and f16 parameters (with f32 and with
// bf16 gradients for bf16): AdamW8bitStepOps equals its definition spelled out with the
// public ops (dequantise, AdamWStep in float32, quantise) bit for bit; the CPU kernel
// of AdamW8bitStep computes the same (parameters within float rounding, codes equal but
// for a few rounding flips at midpoints); and the parameter stays close to the one
// AdamW with float32 moments gives.
func TestAdamW8bitStep(t *testing.T) {
	const block = 256
	s := torch.NewScope()
	defer s.Close()
	c1 := s.DynamicMap(true).ToDevice(torch.F32, testDevice)
	c2 := s.DynamicMap(false).ToDevice(torch.F32, testDevice)
	g := torch.NewGenerator(3, torch.CPU)
	defer g.Close()
	shape := []int64{7, 100} // 700 values: 2 full blocks and a partial one
	nb := int64(3)
	lr, b1, b2, eps, wd := 1e-2, 0.9, 0.999, 1e-8, 0.1
	type state struct{ p, qm, am, qv, av *torch.Tensor }
	for _, tc := range []struct{ P, G torch.DType }{{torch.F32, torch.F32}, {torch.BF16, torch.BF16}, {torch.BF16, torch.F32}, {torch.F16, torch.F16}} {
		p0 := s.Randn(shape, torch.F32, torch.CPU, g)
		mk := func(dt torch.DType) state {
			c := s.Empty(shape, dt, testDevice)
			c.CopyFrom(p0)
			return state{c, s.Zeros(shape, torch.U8, testDevice), s.Zeros([]int64{nb}, torch.F32, testDevice),
				s.Zeros(shape, torch.U8, testDevice), s.Zeros([]int64{nb}, torch.F32, testDevice)}
		}
		K, O, B, X := mk(tc.P), mk(tc.P), mk(tc.P), mk(tc.P) // kernel, ops, spelled out, scratch
		pF := mk(tc.P).p                                     // AdamW with float32 moments
		mF := s.Zeros(shape, torch.F32, testDevice)
		vF := s.Zeros(shape, torch.F32, testDevice)
		flips, inexact := 0, 0
		for step := int64(1); step <= 20; step++ {
			grad := s.Randn(shape, torch.F32, torch.CPU, g).ToDevice(tc.G, testDevice)
			torch.AdamW8bitStepOps(O.p, grad, O.qm, O.am, O.qv, O.av, c1, c2, block, lr, b1, b2, eps, wd, step)

			m := torch.DequantizeBlockwise(B.qm, B.am, c1, block)
			v := torch.DequantizeBlockwise(B.qv, B.av, c2, block)
			torch.AdamWStep(B.p, grad, m, v, lr, b1, b2, eps, wd, step)
			torch.QuantizeBlockwise(m, c1, block, B.qm, B.am)
			torch.QuantizeBlockwise(v, c2, block, B.qv, B.av)

			torch.AdamWStep(pF, grad, mF, vF, lr, b1, b2, eps, wd, step)

			// the kernel against the ops from the same state (the kernel's)
			for _, pr := range [][2]*torch.Tensor{{X.p, K.p}, {X.qm, K.qm}, {X.am, K.am}, {X.qv, K.qv}, {X.av, K.av}} {
				pr[0].CopyFrom(pr[1])
			}
			torch.AdamW8bitStep(K.p, grad, K.qm, K.am, K.qv, K.av, c1, c2, block, lr, b1, b2, eps, wd, step)
			torch.AdamW8bitStepOps(X.p, grad, X.qm, X.am, X.qv, X.av, c1, c2, block, lr, b1, b2, eps, wd, step)
			for _, pr := range [][2]*torch.Tensor{{K.qm, X.qm}, {K.qv, X.qv}} {
				kq, xq := pr[0].Bytes(), pr[1].Bytes()
				for i := range kq {
					if kq[i] != xq[i] {
						flips++
						require.LessOrEqual(t, absDiff(kq[i], xq[i]), 1, "%v step %d: code %d", tc, step, i)
					}
				}
			}
			require.True(t, torch.AllClose(K.am, X.am, 1e-6, 0), "%v step %d: first-moment maxima", tc, step)
			require.True(t, torch.AllClose(K.av, X.av, 1e-6, 0), "%v step %d: second-moment maxima", tc, step)
			tol := 1e-6
			if tc.P != torch.F32 {
				tol = 1e-2 // one bf16/f16 rounding step
			}
			require.True(t, torch.AllClose(K.p, X.p, tol, 0), "%v step %d: parameter", tc, step)
			if !bytes.Equal(K.p.Bytes(), X.p.Bytes()) || !bytes.Equal(K.am.Bytes(), X.am.Bytes()) || !bytes.Equal(K.av.Bytes(), X.av.Bytes()) {
				inexact++
			}
		}
		for _, pr := range [][2]*torch.Tensor{{B.p, O.p}, {B.qm, O.qm}, {B.am, O.am}, {B.qv, O.qv}, {B.av, O.av}} {
			assert.Equal(t, pr[0].Bytes(), pr[1].Bytes(), "%v: the ops equal their definition", tc)
		}
		t.Logf("%v: %d of %d code updates differ by one between the kernel and the ops; %d of 20 steps not bit-identical", tc, flips, 2*20*700, inexact)
		assert.Less(t, flips, 2*20*700/100)
		a, f, p := K.p.Float64s(), pF.Float64s(), p0.Float64s()
		var moved, diff float64
		for i := range a {
			moved += math.Abs(f[i] - p[i])
			diff += math.Abs(a[i] - f[i])
		}
		t.Logf("%v weights: mean |8-bit moments - float32 moments| %.2e over a mean movement of %.2e", tc, diff/float64(len(a)), moved/float64(len(a)))
		assert.Less(t, diff, 0.05*moved, "%v: AdamW with 8-bit moments tracks float32 moments", tc)
	}
}

// TestAdamW8bitKernelCodes: with beta1 = beta2 = 0 and zero moments a step stores
// m = g and v = g*g, so the kernel's codes and maxima must equal QuantizeBlockwise's
// (bucketize over the midpoints) exactly, on data spanning many magnitudes (normal
// and Cauchy values scaled by 10^-12 to 10^3, exact zeros, a partial block).
func TestAdamW8bitKernelCodes(t *testing.T) {
	const block = 256
	n := 41*block + 77
	r := rand.New(rand.NewPCG(11, 12))
	x := make([]float32, n)
	for i := range x {
		v := r.NormFloat64()
		if i%2 == 1 {
			v = studentT(r, 1)
		}
		x[i] = float32(v * math.Pow(10, float64(r.IntN(16)-12)))
		if i%97 == 0 {
			x[i] = 0
		}
	}
	s := torch.NewScope()
	defer s.Close()
	c1 := s.DynamicMap(true).ToDevice(torch.F32, testDevice)
	c2 := s.DynamicMap(false).ToDevice(torch.F32, testDevice)
	g := f32(s, x, int64(n))
	nb := []int64{int64((n + block - 1) / block)}
	p := s.Zeros([]int64{int64(n)}, torch.F32, testDevice)
	qm, qv := s.Zeros([]int64{int64(n)}, torch.U8, testDevice), s.Zeros([]int64{int64(n)}, torch.U8, testDevice)
	am, av := s.Zeros(nb, torch.F32, testDevice), s.Zeros(nb, torch.F32, testDevice)
	torch.AdamW8bitStep(p, g, qm, am, qv, av, c1, c2, block, 0, 0, 0, 1e-8, 0, 1)

	wq, wa := s.Zeros([]int64{int64(n)}, torch.U8, testDevice), s.Zeros(nb, torch.F32, testDevice)
	torch.QuantizeBlockwise(g, c1, block, wq, wa)
	assert.Equal(t, wq.Bytes(), qm.Bytes(), "first-moment codes")
	assert.Equal(t, wa.Float32s(), am.Float32s(), "first-moment maxima")
	torch.QuantizeBlockwise(g.Mul(g), c2, block, wq, wa)
	assert.Equal(t, wq.Bytes(), qv.Bytes(), "second-moment codes")
	assert.Equal(t, wa.Float32s(), av.Float32s(), "second-moment maxima")
	distinct := map[byte]bool{}
	for _, c := range qm.Bytes() {
		distinct[c] = true
	}
	assert.Greater(t, len(distinct), 200, "the data reach most of the map's codes")
}

func absDiff(a, b byte) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// BenchmarkAdamWStep8bit compares one AdamW update of a 4M-value float32 tensor with
// float32 moments, with 8-bit moments by the CPU kernel, and by libtorch ops (the path
// of other devices), side by side: each iteration runs the three in turn, so that they
// share the machine's load; ns/value of each is reported.
func BenchmarkAdamWStep8bit(b *testing.B) {
	const n = 1 << 22
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(1, torch.CPU)
	defer g.Close()
	p := s.Randn([]int64{n}, torch.F32, torch.CPU, g).ToDevice(torch.F32, testDevice)
	grad := s.Randn([]int64{n}, torch.F32, torch.CPU, g).ToDevice(torch.F32, testDevice)
	m, v := s.Zeros([]int64{n}, torch.F32, testDevice), s.Zeros([]int64{n}, torch.F32, testDevice)
	qm, qv := s.Zeros([]int64{n}, torch.U8, testDevice), s.Zeros([]int64{n}, torch.U8, testDevice)
	am, av := s.Zeros([]int64{n / 256}, torch.F32, testDevice), s.Zeros([]int64{n / 256}, torch.F32, testDevice)
	c1, c2 := s.DynamicMap(true).ToDevice(torch.F32, testDevice), s.DynamicMap(false).ToDevice(torch.F32, testDevice)
	var spent [3]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step := int64(i + 1)
		for k, f := range []func(){
			func() { torch.AdamWStep(p, grad, m, v, 1e-4, 0.9, 0.999, 1e-8, 0, step) },
			func() { torch.AdamW8bitStep(p, grad, qm, am, qv, av, c1, c2, 256, 1e-4, 0.9, 0.999, 1e-8, 0, step) },
			func() { torch.AdamW8bitStepOps(p, grad, qm, am, qv, av, c1, c2, 256, 1e-4, 0.9, 0.999, 1e-8, 0, step) },
		} {
			start := time.Now()
			f()
			torch.Synchronize(testDevice)
			spent[k] += time.Since(start)
		}
	}
	for k, name := range []string{"float32", "8bit", "8bit-ops"} {
		b.ReportMetric(float64(spent[k].Nanoseconds())/float64(b.N)/n, name+"-ns/value")
	}
}
