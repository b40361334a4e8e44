package torch_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

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

// TestAdamW8bitStep: the fused call equals its definition spelled out with the public
// ops (dequantise, AdamWStep in float32, quantise) bit for bit, for a float32 and a bf16
// parameter, over several steps; and after 20 steps the parameter stays close to the
// one AdamW with float32 moments gives.
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
	for _, dt := range []torch.DType{torch.F32, torch.BF16} {
		p0 := s.Randn(shape, torch.F32, torch.CPU, g)
		copyOf := func(dt torch.DType) *torch.Tensor {
			c := s.Empty(shape, dt, testDevice)
			c.CopyFrom(p0)
			return c
		}
		pA := copyOf(dt) // fused 8-bit call
		pB := copyOf(dt) // spelled out
		pF := copyOf(dt) // AdamW with float32 moments
		mk := func() (*torch.Tensor, *torch.Tensor, *torch.Tensor, *torch.Tensor) {
			return s.Zeros(shape, torch.U8, testDevice), s.Zeros([]int64{nb}, torch.F32, testDevice),
				s.Zeros(shape, torch.U8, testDevice), s.Zeros([]int64{nb}, torch.F32, testDevice)
		}
		qmA, amA, qvA, avA := mk()
		qmB, amB, qvB, avB := mk()
		mF := s.Zeros(shape, torch.F32, testDevice)
		vF := s.Zeros(shape, torch.F32, testDevice)
		for step := int64(1); step <= 20; step++ {
			grad := s.Randn(shape, torch.F32, torch.CPU, g).ToDevice(dt, testDevice)
			torch.AdamW8bitStep(pA, grad, qmA, amA, qvA, avA, c1, c2, block, lr, b1, b2, eps, wd, step)

			m := torch.DequantizeBlockwise(qmB, amB, c1, block)
			v := torch.DequantizeBlockwise(qvB, avB, c2, block)
			torch.AdamWStep(pB, grad, m, v, lr, b1, b2, eps, wd, step)
			torch.QuantizeBlockwise(m, c1, block, qmB, amB)
			torch.QuantizeBlockwise(v, c2, block, qvB, avB)

			torch.AdamWStep(pF, grad, mF, vF, lr, b1, b2, eps, wd, step)
		}
		assert.Equal(t, pB.Bytes(), pA.Bytes(), "%v: parameter", dt)
		assert.Equal(t, qmB.Bytes(), qmA.Bytes(), "%v: first-moment codes", dt)
		assert.Equal(t, qvB.Bytes(), qvA.Bytes(), "%v: second-moment codes", dt)
		assert.Equal(t, amB.Float32s(), amA.Float32s(), "%v: first-moment maxima", dt)
		assert.Equal(t, avB.Float32s(), avA.Float32s(), "%v: second-moment maxima", dt)
		// 20 steps of lr 1e-2 move each weight by up to ~0.2; the 8-bit moments change
		// each step's size by a few percent at most.
		a, f, p := pA.Float64s(), pF.Float64s(), p0.Float64s()
		var moved, diff float64
		for i := range a {
			moved += math.Abs(f[i] - p[i])
			diff += math.Abs(a[i] - f[i])
		}
		t.Logf("%v weights: mean |8-bit moments - float32 moments| %.2e over a mean movement of %.2e", dt, diff/float64(len(a)), moved/float64(len(a)))
		assert.Less(t, diff, 0.05*moved, "%v: AdamW with 8-bit moments tracks float32 moments", dt)
	}
}
