package torch_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/torch"
)

func f32(s *torch.Scope, v []float32, shape ...int64) *torch.Tensor {
	return s.FromFloat32(v, shape...).ToDevice(torch.F32, testDevice)
}

func near(t *testing.T, want []float64, got []float64, tol float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), msg)
	for i := range want {
		if math.IsInf(want[i], 0) {
			assert.Equal(t, want[i], got[i], "%s [%d]", msg, i)
			continue
		}
		assert.InDelta(t, want[i], got[i], tol, "%s [%d]", msg, i)
	}
}

func TestCreation(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	assert.Equal(t, []float64{0, 0, 0, 0}, s.Zeros([]int64{2, 2}, torch.F32, testDevice).Float64s())
	assert.Equal(t, []float64{1, 1, 1}, s.Ones([]int64{3}, torch.F64, testDevice).Float64s())
	assert.Equal(t, []float64{2.5, 2.5}, s.Full([]int64{2}, 2.5, torch.F32, testDevice).Float64s())
	assert.Equal(t, []int64{0, 2, 4}, s.Arange(0, 6, 2, torch.I64, testDevice).Int64s())
	assert.Equal(t, 3.0, s.Scalar(3, torch.F32, testDevice).Item())
	x := s.FromInt64([]int64{1, 2, 3, 4, 5, 6}, 2, 3)
	assert.Equal(t, []int64{2, 3}, x.Shape())
	assert.Equal(t, torch.I64, x.DType())
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6}, x.Int64s())
	assert.Equal(t, []bool{true, false}, s.FromBool([]bool{true, false}, 2).Bools())
	assert.Equal(t, []float64{1.5, -2}, s.FromFloat64([]float64{1.5, -2}, 2).Float64s())
	assert.Equal(t, []int64{7, -1}, s.FromInt32([]int32{7, -1}, 2).Int64s())
	// raw bytes of every dtype: bf16 1.0 = 0x3F80, f16 1.0 = 0x3C00
	assert.Equal(t, []float64{1, -2}, s.FromBytes([]byte{0x80, 0x3f, 0x00, 0xc0}, []int64{2}, torch.BF16).Float64s())
	assert.Equal(t, []float64{1}, s.FromBytes([]byte{0x00, 0x3c}, []int64{1}, torch.F16).Float64s())
	assert.Equal(t, []float64{255, 1}, s.FromBytes([]byte{255, 1}, []int64{2}, torch.U8).Float64s())
	assert.Equal(t, []float64{-1, 1}, s.FromBytes([]byte{255, 1}, []int64{2}, torch.I8).Float64s())
	b := s.FromFloat32([]float32{1, 2}, 2).To(torch.BF16)
	assert.Equal(t, []byte{0x80, 0x3f, 0x00, 0x40}, b.Bytes())
	assert.Equal(t, int64(4), b.NBytes())

	// seeded generators reproduce; different seeds differ
	g1 := torch.NewGenerator(7, torch.CPU)
	defer g1.Close()
	g2 := torch.NewGenerator(7, torch.CPU)
	defer g2.Close()
	a1 := s.Randn([]int64{16}, torch.F32, torch.CPU, g1).Float64s()
	a2 := s.Randn([]int64{16}, torch.F32, torch.CPU, g2).Float64s()
	assert.Equal(t, a1, a2)
	state := g1.State()
	r1 := s.Rand([]int64{8}, torch.F32, torch.CPU, g1).Float64s()
	g1.SetState(state)
	r2 := s.Rand([]int64{8}, torch.F32, torch.CPU, g1).Float64s()
	assert.Equal(t, r1, r2, "restored generator state reproduces the stream")
	for _, v := range r1 {
		assert.True(t, v >= 0 && v < 1)
	}
	ri := s.RandInt(3, 6, []int64{100}, torch.CPU, g2).Int64s()
	for _, v := range ri {
		assert.True(t, v >= 3 && v < 6)
	}
	// Randn moments are plausible
	big := s.Randn([]int64{20000}, torch.F64, torch.CPU, g2)
	assert.InDelta(t, 0, big.Mean().Item(), 0.05)
	assert.InDelta(t, 1, big.Var(nil, true, false).Item(), 0.05)
}

func TestElementwise(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := f32(s, []float32{1, 4, 9, 16}, 2, 2)
	b := f32(s, []float32{1, 2}, 2) // broadcasts over rows
	near(t, []float64{2, 6, 10, 18}, a.Add(b).Float64s(), 0, "add")
	near(t, []float64{0, 2, 8, 14}, a.Sub(b).Float64s(), 0, "sub")
	near(t, []float64{1, 8, 9, 32}, a.Mul(b).Float64s(), 0, "mul")
	near(t, []float64{1, 2, 9, 8}, a.Div(b).Float64s(), 0, "div")
	near(t, []float64{1, 16, 9, 256}, a.Pow(b).Float64s(), 1e-4, "pow")
	near(t, []float64{3, 6, 11, 18}, a.AddScalar(2).Float64s(), 0, "add scalar")
	near(t, []float64{-1, 2, 7, 14}, a.SubScalar(2).Float64s(), 0, "sub scalar")
	near(t, []float64{0.5, 2, 4.5, 8}, a.MulScalar(0.5).Float64s(), 0, "mul scalar")
	near(t, []float64{0.25, 1, 2.25, 4}, a.DivScalar(4).Float64s(), 0, "div scalar")
	near(t, []float64{1, 2, 3, 4}, a.PowScalar(0.5).Float64s(), 1e-6, "pow scalar")
	near(t, []float64{9, 6, 1, -6}, a.RSub(10).Float64s(), 0, "rsub")
	near(t, []float64{-1, -4, -9, -16}, a.Neg().Float64s(), 0, "neg")
	near(t, []float64{1, 2, 3, 4}, a.Sqrt().Float64s(), 1e-6, "sqrt")
	near(t, []float64{1, 0.5, 1.0 / 3, 0.25}, a.Rsqrt().Float64s(), 1e-6, "rsqrt")
	near(t, []float64{1, 0.25, 1.0 / 9, 1.0 / 16}, a.Reciprocal().Float64s(), 1e-6, "reciprocal")
	near(t, []float64{0, math.Log(4), math.Log(9), math.Log(16)}, a.Log().Float64s(), 1e-6, "log")
	x := f32(s, []float32{-2, -0.5, 0, 1.5}, 4)
	xs := []float64{-2, -0.5, 0, 1.5}
	apply := func(f func(float64) float64) []float64 {
		out := make([]float64, len(xs))
		for i, v := range xs {
			out[i] = f(v)
		}
		return out
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	near(t, apply(math.Exp), x.Exp().Float64s(), 1e-5, "exp")
	near(t, apply(math.Abs), x.Abs().Float64s(), 0, "abs")
	near(t, apply(math.Tanh), x.Tanh().Float64s(), 1e-6, "tanh")
	near(t, apply(sig), x.Sigmoid().Float64s(), 1e-6, "sigmoid")
	near(t, apply(func(v float64) float64 { return v * sig(v) }), x.Silu().Float64s(), 1e-6, "silu")
	near(t, apply(func(v float64) float64 { return math.Max(v, 0) }), x.Relu().Float64s(), 0, "relu")
	near(t, apply(func(v float64) float64 { return 0.5 * v * (1 + math.Erf(v/math.Sqrt2)) }), x.Gelu().Float64s(), 1e-6, "gelu")
	near(t, apply(func(v float64) float64 {
		return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
	}), x.GeluTanh().Float64s(), 1e-6, "gelu tanh")
	near(t, apply(math.Sin), x.Sin().Float64s(), 1e-6, "sin")
	near(t, apply(math.Cos), x.Cos().Float64s(), 1e-6, "cos")
	near(t, apply(func(v float64) float64 { return v * v }), x.Square().Float64s(), 1e-6, "square")
	near(t, []float64{-1, -1, 0, 1}, x.Sign().Float64s(), 0, "sign")
	near(t, []float64{-2, -1, 0, 1}, x.Floor().Float64s(), 0, "floor")
	near(t, []float64{-1, -0.5, 0, 1}, x.Clamp(-1, 1).Float64s(), 0, "clamp")
	near(t, []float64{0, 0, 0, 1.5}, x.ClampMin(0).Float64s(), 0, "clamp min")
	near(t, []float64{-2, -0.5, 0, 0}, x.ClampMax(0).Float64s(), 0, "clamp max")
	y := f32(s, []float32{0, 0, 0, 0}, 4)
	near(t, []float64{0, 0, 0, 1.5}, x.Maximum(y).Float64s(), 0, "maximum")
	near(t, []float64{-2, -0.5, 0, 0}, x.Minimum(y).Float64s(), 0, "minimum")
	assert.Equal(t, []bool{true, true, false, false}, x.Lt(y).Bools())
	assert.Equal(t, []bool{true, true, true, false}, x.Le(y).Bools())
	assert.Equal(t, []bool{false, false, false, true}, x.Gt(y).Bools())
	assert.Equal(t, []bool{false, false, true, true}, x.Ge(y).Bools())
	assert.Equal(t, []bool{false, false, true, false}, x.Eq(y).Bools())
	assert.Equal(t, []bool{true, true, false, true}, x.Ne(y).Bools())
	assert.Equal(t, []bool{false, false, false, true}, x.GtScalar(1).Bools())
	assert.Equal(t, []bool{true, false, false, false}, x.LtScalar(-1).Bools())
	assert.Equal(t, []bool{false, true, false, false}, x.EqScalar(-0.5).Bools())
	assert.Equal(t, []bool{true, false, true, true}, x.NeScalar(-0.5).Bools())
	m := x.GtScalar(-1)
	assert.Equal(t, []bool{true, false, false, false}, m.LogicalNot().Bools())
	assert.Equal(t, []bool{false, false, false, true}, m.LogicalAnd(x.GtScalar(0)).Bools())
	assert.Equal(t, []bool{false, true, true, true}, m.LogicalOr(x.GtScalar(0)).Bools())
	inf := f32(s, []float32{1, float32(math.Inf(1)), float32(math.NaN())}, 3)
	assert.Equal(t, []bool{true, false, false}, inf.IsFinite().Bools())
	near(t, []float64{-2, 100, 0, 100}, x.MaskedFill(x.GtScalar(-1).LogicalAnd(x.NeScalar(0)), 100).Float64s(), 0, "masked fill")
	near(t, []float64{-2, 0, 0, 1.5}, torch.Where(x.LtScalar(-1).LogicalOr(x.GtScalar(1)), x, y).Float64s(), 0, "where")
	near(t, []float64{0, 0, 0, 0}, x.ZerosLike().Float64s(), 0, "zeros like")
	near(t, []float64{1, 1, 1, 1}, x.OnesLike().Float64s(), 0, "ones like")
	assert.InDelta(t, (16+2.25+4+0)/4.0, x.MSELoss(f32(s, []float32{2, 1, 2, 1.5}, 4)).Item(), 1e-6)
}

func TestLinearAlgebraAndReductions(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := f32(s, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := f32(s, []float32{1, 0, 0, 1, 1, 1}, 3, 2)
	near(t, []float64{4, 5, 10, 11}, a.Matmul(b).Float64s(), 1e-5, "matmul")
	near(t, []float64{4, 5, 10, 11, 4, 5, 10, 11}, torch.Stack([]*torch.Tensor{a, a}, 0).Bmm(torch.Stack([]*torch.Tensor{b, b}, 0)).Float64s(), 1e-5, "bmm")
	w := f32(s, []float32{1, 0, 1, 0, 1, 0}, 2, 3)
	bias := f32(s, []float32{10, 20}, 2)
	near(t, []float64{14, 22, 20, 25}, a.Linear(w, bias).Float64s(), 1e-5, "linear")
	near(t, []float64{4, 2, 10, 5}, a.Linear(w, nil).Float64s(), 1e-5, "linear no bias")
	assert.InDelta(t, 21.0, a.Sum().Item(), 1e-6)
	near(t, []float64{5, 7, 9}, a.SumDims([]int64{0}, false).Float64s(), 1e-6, "sum dim")
	assert.Equal(t, []int64{2, 1}, a.SumDims([]int64{1}, true).Shape())
	assert.InDelta(t, 3.5, a.Mean().Item(), 1e-6)
	near(t, []float64{2, 5}, a.MeanDims([]int64{1}, false).Float64s(), 1e-6, "mean dim")
	assert.Equal(t, 6.0, a.Max().Item())
	assert.Equal(t, 1.0, a.Min().Item())
	near(t, []float64{3, 6}, a.AmaxDims([]int64{1}, false).Float64s(), 0, "amax")
	assert.InDelta(t, math.Sqrt(91), a.Norm(2).Item(), 1e-5)
	near(t, []float64{math.Sqrt(14), math.Sqrt(77)}, a.NormDims(2, []int64{1}, false).Float64s(), 1e-5, "norm dim")
	assert.InDelta(t, 720.0, a.Prod().Item(), 1e-3)
	near(t, []float64{math.Log(math.Exp(1) + math.Exp(2) + math.Exp(3)), math.Log(math.Exp(4) + math.Exp(5) + math.Exp(6))},
		a.LogSumExp([]int64{1}, false).Float64s(), 1e-5, "logsumexp")
	v, i := a.MaxDim(1, false)
	near(t, []float64{3, 6}, v.Float64s(), 0, "max dim")
	assert.Equal(t, []int64{2, 2}, i.Int64s())
	v, i = a.MinDim(0, false)
	near(t, []float64{1, 2, 3}, v.Float64s(), 0, "min dim")
	assert.Equal(t, []int64{0, 0, 0}, i.Int64s())
	assert.Equal(t, []int64{1, 1, 1}, a.Argmax(0, false).Int64s())
	c := f32(s, []float32{3, 1, 4, 1, 5, 9, 2, 6}, 8)
	tv, ti := c.TopK(3, 0, true)
	near(t, []float64{9, 6, 5}, tv.Float64s(), 0, "topk")
	assert.Equal(t, []int64{5, 7, 4}, ti.Int64s())
	tv, ti = c.TopK(2, 0, false)
	near(t, []float64{1, 1}, tv.Float64s(), 0, "topk smallest")
	assert.ElementsMatch(t, []int64{1, 3}, ti.Int64s())
	sm := a.Softmax(1).Float64s()
	e := []float64{math.Exp(1), math.Exp(2), math.Exp(3)}
	z := e[0] + e[1] + e[2]
	near(t, []float64{e[0] / z, e[1] / z, e[2] / z}, sm[:3], 1e-6, "softmax")
	near(t, []float64{math.Log(e[0] / z), math.Log(e[1] / z), math.Log(e[2] / z)}, a.LogSoftmax(1).Float64s()[:3], 1e-5, "log softmax")
	near(t, sm, a.To(torch.BF16).SoftmaxAs(1, torch.F32).Float64s(), 1e-2, "softmax in f32 from bf16")
	assert.Equal(t, torch.F32, a.To(torch.BF16).SoftmaxAs(1, torch.F32).DType())
	assert.InDelta(t, 3.5, a.Var(nil, true, false).Item(), 1e-5)
	near(t, []float64{1, 2, 3, 0, 5, 6}, a.Triu(0).Float64s(), 0, "triu")
	near(t, []float64{1, 0, 0, 4, 5, 0}, a.Tril(0).Float64s(), 0, "tril")
	near(t, []float64{0, 2, 3, 0, 0, 6}, a.Triu(1).Float64s(), 0, "triu k=1")
}

func TestShapeOps(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.Arange(0, 24, 1, torch.F32, testDevice).Reshape(2, 3, 4)
	assert.Equal(t, []int64{6, 4}, a.View(6, 4).Shape())
	assert.Equal(t, []int64{4, 6}, a.Reshape(4, -1).Shape())
	tr := a.Transpose(0, 2)
	assert.Equal(t, []int64{4, 3, 2}, tr.Shape())
	assert.Equal(t, []float64{0, 12, 4, 16, 8, 20}, tr.Contiguous().Float64s()[:6])
	p := a.Permute(1, 0, 2)
	assert.Equal(t, []int64{3, 2, 4}, p.Shape())
	assert.Equal(t, []float64{0, 1, 2, 3, 12, 13, 14, 15}, p.Contiguous().Float64s()[:8])
	assert.Equal(t, []float64{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}, a.Narrow(2, 1, 2).Float64s())
	assert.Equal(t, []float64{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22}, a.Slice(2, 0, 100, 2).Float64s())
	assert.Equal(t, []float64{12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}, a.Select(0, 1).Flatten(0, -1).Float64s())
	idx := s.FromInt64([]int64{2, 0}, 2).ToDevice(torch.I64, testDevice)
	assert.Equal(t, []float64{8, 9, 10, 11, 0, 1, 2, 3}, a.Select(0, 0).IndexSelect(0, idx).Float64s())
	g := s.FromInt64([]int64{3, 0, 1, 1}, 2, 2).ToDevice(torch.I64, testDevice)
	m := a.Select(0, 0).Narrow(0, 0, 2) // [[0..3],[4..7]]
	assert.Equal(t, []float64{3, 0, 5, 5}, m.Gather(1, g).Float64s())
	c := torch.Cat([]*torch.Tensor{m, m}, 0)
	assert.Equal(t, []int64{4, 4}, c.Shape())
	st := torch.Stack([]*torch.Tensor{m, m}, 1)
	assert.Equal(t, []int64{2, 2, 4}, st.Shape())
	parts := s.Arange(0, 10, 1, torch.F32, testDevice).Split(4, 0)
	require.Len(t, parts, 3)
	assert.Equal(t, []float64{8, 9}, parts[2].Float64s())
	ch := s.Arange(0, 10, 1, torch.F32, testDevice).Chunk(2, 0)
	require.Len(t, ch, 2)
	assert.Equal(t, []float64{5, 6, 7, 8, 9}, ch[1].Float64s())
	e := s.FromFloat32([]float32{1, 2}, 2, 1).ToDevice(torch.F32, testDevice).Expand(2, 3)
	assert.Equal(t, []float64{1, 1, 1, 2, 2, 2}, e.Float64s())
	assert.Equal(t, []int64{2, 1, 3}, e.Unsqueeze(1).Shape())
	assert.Equal(t, []int64{2, 3}, e.Unsqueeze(1).Squeeze(1).Shape())
	assert.Equal(t, []int64{2}, s.Zeros([]int64{1, 2, 1}, torch.F32, testDevice).SqueezeAll().Shape())
	assert.Equal(t, []int64{3, 2}, m.Narrow(1, 0, 3).T().Shape())
	assert.Equal(t, torch.F64, m.To(torch.F64).DType())
}

func TestNeuralOps(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	w := f32(s, []float32{0, 0, 1, 1, 2, 2}, 3, 2)
	ids := s.FromInt64([]int64{2, 0, 1}, 3).ToDevice(torch.I64, testDevice)
	assert.Equal(t, []float64{2, 2, 0, 0, 1, 1}, torch.Embedding(w, ids).Float64s())

	x := f32(s, []float32{1, 2, 3, 4, 2, 2, 2, 2}, 2, 4)
	ln := x.LayerNorm([]int64{4}, nil, nil, 1e-5).Float64s()
	sd := math.Sqrt(1.25 + 1e-5)
	near(t, []float64{-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, 0, 0, 0, 0}, ln, 1e-5, "layer norm")
	g := f32(s, []float32{2, 2, 2, 2}, 4)
	bb := f32(s, []float32{1, 1, 1, 1}, 4)
	near(t, []float64{1 - 3/sd, 1 - 1/sd, 1 + 1/sd, 1 + 3/sd}, x.LayerNorm([]int64{4}, g, bb, 1e-5).Float64s()[:4], 1e-5, "layer norm affine")
	rms := math.Sqrt((1 + 4 + 9 + 16) / 4.0)
	near(t, []float64{2 / rms, 4 / rms, 6 / rms, 8 / rms}, x.RMSNorm(g, 1e-6).Float64s()[:4], 1e-5, "rms norm")
	near(t, []float64{1, 1, 1, 1}, x.RMSNorm(nil, 0).Float64s()[4:], 1e-6, "rms norm no weight")

	d := s.Ones([]int64{1000}, torch.F32, testDevice).Dropout(0.5, true).Float64s()
	zeros := 0
	for _, v := range d {
		if v == 0 {
			zeros++
		} else {
			assert.Equal(t, 2.0, v)
		}
	}
	assert.InDelta(t, 500, zeros, 80)
	assert.Equal(t, []float64{1, 1}, s.Ones([]int64{2}, torch.F32, testDevice).Dropout(0.5, false).Float64s())

	// cross entropy against a hand computation, with ignore_index
	logits := f32(s, []float32{1, 2, 3, 1, 1, 1, 0, 0, 5}, 3, 3)
	target := s.FromInt64([]int64{2, 0, -100}, 3).ToDevice(torch.I64, testDevice)
	l0 := -math.Log(math.Exp(3) / (math.Exp(1) + math.Exp(2) + math.Exp(3)))
	l1 := math.Log(3)
	assert.InDelta(t, (l0+l1)/2, torch.CrossEntropy(logits, target, -100, torch.ReduceMean).Item(), 1e-5)
	assert.InDelta(t, l0+l1, torch.CrossEntropy(logits, target, -100, torch.ReduceSum).Item(), 1e-5)
	near(t, []float64{l0, l1, 0}, torch.CrossEntropy(logits, target, -100, torch.ReduceNone).Float64s(), 1e-5, "ce none")
}

// sdpaRef computes attention on the host for [1,1,L,E] inputs.
func sdpaRef(q, k, v []float64, L, S, E int, causal bool, mask []bool) []float64 {
	out := make([]float64, L*E)
	scale := 1 / math.Sqrt(float64(E))
	for i := 0; i < L; i++ {
		sc := make([]float64, S)
		mx := math.Inf(-1)
		for j := 0; j < S; j++ {
			dot := 0.0
			for e := 0; e < E; e++ {
				dot += q[i*E+e] * k[j*E+e]
			}
			sc[j] = dot * scale
			if (causal && j > i) || (mask != nil && !mask[i*S+j]) {
				sc[j] = math.Inf(-1)
			}
			mx = math.Max(mx, sc[j])
		}
		z := 0.0
		for j := range sc {
			sc[j] = math.Exp(sc[j] - mx)
			z += sc[j]
		}
		for j := range sc {
			for e := 0; e < E; e++ {
				out[i*E+e] += sc[j] / z * v[j*E+e]
			}
		}
	}
	return out
}

func TestSDPA(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(1, torch.CPU)
	defer g.Close()
	L, E := 5, 4
	q := s.Randn([]int64{1, 1, int64(L), int64(E)}, torch.F64, torch.CPU, g)
	k := s.Randn([]int64{1, 1, int64(L), int64(E)}, torch.F64, torch.CPU, g)
	v := s.Randn([]int64{1, 1, int64(L), int64(E)}, torch.F64, torch.CPU, g)
	qd, kd, vd := q.Float64s(), k.Float64s(), v.Float64s()
	for _, fused := range []bool{false, true} {
		got := torch.ScaledDotProductAttention(q, k, v, torch.SDPAOptions{Causal: true, Fused: fused}).Float64s()
		near(t, sdpaRef(qd, kd, vd, L, L, E, true, nil), got, 1e-9, "causal sdpa")
		got = torch.ScaledDotProductAttention(q, k, v, torch.SDPAOptions{Fused: fused}).Float64s()
		near(t, sdpaRef(qd, kd, vd, L, L, E, false, nil), got, 1e-9, "full sdpa")
		mask := make([]bool, L*L)
		for i := range mask {
			mask[i] = i%3 != 1
		}
		bm := s.FromBool(mask, 1, 1, int64(L), int64(L))
		got = torch.ScaledDotProductAttention(q, k, v, torch.SDPAOptions{Mask: bm, Fused: fused}).Float64s()
		near(t, sdpaRef(qd, kd, vd, L, L, E, false, mask), got, 1e-9, "bool-mask sdpa")
		add := s.Zeros([]int64{1, 1, int64(L), int64(L)}, torch.F64, torch.CPU).MaskedFill(bm.LogicalNot(), math.Inf(-1))
		got = torch.ScaledDotProductAttention(q, k, v, torch.SDPAOptions{Mask: add, Fused: fused}).Float64s()
		near(t, sdpaRef(qd, kd, vd, L, L, E, false, mask), got, 1e-9, "additive-mask sdpa")
	}
}

func TestInPlace(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := f32(s, []float32{1, 2, 3}, 3).SetRequiresGrad(true)
	b := f32(s, []float32{1, 1, 2}, 3)
	a.AddInPlace(b, 2) // in-place on a leaf that requires grad works: no autograd recording
	assert.Equal(t, []float64{3, 4, 7}, a.Float64s())
	a.MulInPlace(b)
	assert.Equal(t, []float64{3, 4, 14}, a.Float64s())
	a.MulScalarInPlace(0.5)
	assert.Equal(t, []float64{1.5, 2, 7}, a.Float64s())
	a.AddScalarInPlace(1)
	assert.Equal(t, []float64{2.5, 3, 8}, a.Float64s())
	a.AddcmulInPlace(b, b, 2)
	assert.Equal(t, []float64{4.5, 5, 16}, a.Float64s())
	a.AddcdivInPlace(b, b, -1)
	assert.Equal(t, []float64{3.5, 4, 15}, a.Float64s())
	a.LerpInPlace(b, 0.5)
	assert.Equal(t, []float64{2.25, 2.5, 8.5}, a.Float64s())
	a.DivInPlace(b)
	assert.Equal(t, []float64{2.25, 2.5, 4.25}, a.Float64s())
	a.DivScalarInPlace(0.25)
	assert.Equal(t, []float64{9, 10, 17}, a.Float64s())
	a.ClampInPlace(9.5, 16)
	assert.Equal(t, []float64{9.5, 10, 16}, a.Float64s())
	a.CopyFrom(s.FromFloat64([]float64{4, 9, 16}, 3))
	a.SqrtInPlace()
	assert.Equal(t, []float64{2, 3, 4}, a.Float64s())
	a.Fill(7)
	assert.Equal(t, []float64{7, 7, 7}, a.Float64s())
	a.Zero()
	assert.Equal(t, []float64{0, 0, 0}, a.Float64s())
	a.IndexPut(s.FromInt64([]int64{0, 2}, 2), f32(s, []float32{5, 6}, 2), false)
	a.IndexPut(s.FromInt64([]int64{0, 0}, 2), f32(s, []float32{1, 1}, 2), true)
	assert.Equal(t, []float64{7, 0, 6}, a.Float64s())
	assert.True(t, a.RequiresGrad())
	assert.Nil(t, a.Grad(), "in-place updates record no autograd history")
}

func TestAdamWStepMatchesFormula(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	p := s.FromFloat64([]float64{1, -2}, 2)
	g := s.FromFloat64([]float64{0.5, -1}, 2)
	m := s.Zeros([]int64{2}, torch.F64, torch.CPU)
	v := s.Zeros([]int64{2}, torch.F64, torch.CPU)
	lr, b1, b2, eps, wd := 0.01, 0.9, 0.999, 1e-8, 0.1
	pv, gv := []float64{1, -2}, []float64{0.5, -1}
	mv, vv := []float64{0, 0}, []float64{0, 0}
	for step := int64(1); step <= 3; step++ {
		torch.AdamWStep(p, g, m, v, lr, b1, b2, eps, wd, step)
		for i := range pv {
			pv[i] *= 1 - lr*wd
			mv[i] = b1*mv[i] + (1-b1)*gv[i]
			vv[i] = b2*vv[i] + (1-b2)*gv[i]*gv[i]
			bc1 := 1 - math.Pow(b1, float64(step))
			bc2 := 1 - math.Pow(b2, float64(step))
			pv[i] -= lr / bc1 * mv[i] / (math.Sqrt(vv[i])/math.Sqrt(bc2) + eps)
		}
	}
	near(t, pv, p.Float64s(), 1e-12, "adamw")
	near(t, mv, m.Float64s(), 1e-12, "adamw m")
	near(t, vv, v.Float64s(), 1e-12, "adamw v")
}

func TestErrorsCarryLibtorchMessage(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := s.Zeros([]int64{2, 3}, torch.F32, testDevice)
	b := s.Zeros([]int64{4, 5}, torch.F32, testDevice)
	err := torch.Try(func() { a.Matmul(b) })
	require.Error(t, err)
	var te *torch.Error
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "matmul", te.Op)
	assert.Contains(t, err.Error(), "cannot be multiplied")
	err = torch.Try(func() { a.Reshape(7) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid for input of size 6")
	err = torch.Try(func() { s.FromFloat32([]float32{1, 2, 3}, 2, 2) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "do not fill shape")
	err = torch.Try(func() { a.Free(); a.Sum() })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "freed")
	err = torch.WithScope(func(s2 *torch.Scope) error {
		s2.Ones([]int64{3}, torch.F32, testDevice).Add(s2.Ones([]int64{4}, torch.F32, testDevice))
		return nil
	})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "must match the size"), err.Error())
	// ops on store-owned tensors alone have no result scope
	st := torch.NewStore("params")
	defer st.Close()
	w := st.Ones([]int64{2}, torch.F32, testDevice)
	err = torch.Try(func() { w.Add(w) })
	require.ErrorContains(t, err, "working scope")
	assert.Equal(t, []float64{2, 2}, s.In(w).Add(w).Float64s())
}

func TestLibrary(t *testing.T) {
	v := torch.Version()
	assert.Regexp(t, `^[12]\.\d+\.\d+$`, v)
	assert.GreaterOrEqual(t, torch.NumThreads(), 1)
	if testDevice.IsCUDA() {
		assert.True(t, torch.CUDAAvailable())
		assert.GreaterOrEqual(t, torch.CUDADeviceCount(), 1)
	}
	d, err := torch.ParseDevice("cuda:1")
	require.NoError(t, err)
	assert.Equal(t, torch.CUDA(1), d)
	_, err = torch.ParseDevice("tpu")
	assert.Error(t, err)
	dt, err := torch.ParseDType("bf16")
	require.NoError(t, err)
	assert.Equal(t, torch.BF16, dt)
	assert.Equal(t, 2, dt.Size())
	_, err = torch.ParseDType("f8")
	assert.Error(t, err)
}

// TestAdamWStepMulti: the multi-tensor call equals per-tensor AdamWStep, with each
// tensor's own step count.
func TestAdamWStepMulti(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(8, torch.CPU)
	defer g.Close()
	mk := func(shape ...int64) *torch.Tensor { return s.Randn(shape, torch.F32, testDevice, g) }
	shapes := [][]int64{{3, 4}, {5}, {2, 2, 2}}
	var p1, p2, gs, m1, m2, v1, v2 []*torch.Tensor
	for _, sh := range shapes {
		p := mk(sh...)
		p1 = append(p1, p)
		p2 = append(p2, p.Clone())
		gs = append(gs, mk(sh...))
		m := mk(sh...).Abs().MulScalar(0.1)
		v := mk(sh...).Abs().MulScalar(0.01)
		m1, m2 = append(m1, m), append(m2, m.Clone())
		v1, v2 = append(v1, v), append(v2, v.Clone())
	}
	steps := []int64{1, 7, 30}
	for i := range p1 {
		torch.AdamWStep(p1[i], gs[i], m1[i], v1[i], 1e-2, 0.9, 0.999, 1e-8, 0.1, steps[i])
	}
	fused := torch.AdamWStepMulti(p2, gs, m2, v2, steps, 1e-2, 0.9, 0.999, 1e-8, 0.1, true)
	wantFused := torch.VersionAtLeast(2, 4) || (testDevice.IsCUDA() && torch.VersionAtLeast(2, 1))
	assert.Equal(t, wantFused, fused, "fused kernel used (libtorch %s on %v)", torch.Version(), testDevice)
	for i := range p1 {
		near(t, p1[i].Float64s(), p2[i].Float64s(), 1e-6, "param")
		near(t, m1[i].Float64s(), m2[i].Float64s(), 1e-6, "exp_avg")
		near(t, v1[i].Float64s(), v2[i].Float64s(), 1e-6, "exp_avg_sq")
	}
	assert.ErrorContains(t, torch.Try(func() { torch.AdamWStepMulti(p2, gs[:2], m2, v2, steps, 1e-2, 0.9, 0.999, 1e-8, 0, false) }), "different lengths")
}

func TestDeviceFromEnv(t *testing.T) {
	t.Setenv(torch.DeviceEnv, "")
	d, err := torch.DeviceFromEnv()
	require.NoError(t, err)
	assert.Equal(t, torch.CPU, d)
	t.Setenv(torch.DeviceEnv, "cuda:1")
	d, err = torch.DeviceFromEnv()
	require.NoError(t, err)
	assert.Equal(t, torch.CUDA(1), d)
	t.Setenv(torch.DeviceEnv, "tpu")
	_, err = torch.DeviceFromEnv()
	assert.ErrorContains(t, err, "BLOCKLLM_DEVICE")
}

// TestRMSNormBF16 checks the one-node RMSNorm against Hugging Face's composed formula
// (weight * (x.float() * rsqrt(mean(x.float()^2) + eps)).to(bf16)) in bf16: outputs and
// both gradients, to bf16 rounding.
func TestRMSNormBF16(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(3, torch.CPU)
	defer g.Close()
	x0 := s.Randn([]int64{3, 5, 64}, torch.F32, testDevice, g).MulScalar(3)
	w0 := s.Randn([]int64{64}, torch.F32, testDevice, g)
	up := s.Randn([]int64{3, 5, 64}, torch.F32, testDevice, g).To(torch.BF16)
	run := func(fused bool) (y, gx, gw []float64) {
		x := x0.To(torch.BF16).SetRequiresGrad(true)
		w := w0.To(torch.BF16).SetRequiresGrad(true)
		var out *torch.Tensor
		if fused {
			out = x.RMSNorm(w, 1e-6)
		} else {
			xf := x.To(torch.F32)
			n := xf.Mul(xf.Square().MeanDims([]int64{-1}, true).AddScalar(1e-6).Rsqrt()).To(torch.BF16)
			out = w.Mul(n)
		}
		require.Equal(t, torch.BF16, out.DType())
		out.Mul(up).To(torch.F32).Sum().Backward()
		return out.Float64s(), x.Grad().Float64s(), w.Grad().Float64s()
	}
	y1, gx1, gw1 := run(true)
	y2, gx2, gw2 := run(false)
	rel := func(want, got []float64, what string) {
		scale := 0.0
		for _, v := range want {
			scale = math.Max(scale, math.Abs(v))
		}
		near(t, want, got, scale/64, what) // 2^-6 of the largest value: a few bf16 ulps
	}
	rel(y2, y1, "output")
	rel(gx2, gx1, "grad x")
	rel(gw2, gw1, "grad w")
	assert.Equal(t, y2, y1, "the forward is the same computation, so bit for bit")
}

// TestSwiGLU: the one-node silu(g) * u is the composed computation bit for bit, in bf16
// and f32, forward and both gradients.
func TestSwiGLU(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(5, torch.CPU)
	defer g.Close()
	for _, dt := range []torch.DType{torch.BF16, torch.F32} {
		g0 := s.Randn([]int64{4, 7, 48}, torch.F32, testDevice, g).MulScalar(3)
		u0 := s.Randn([]int64{4, 7, 48}, torch.F32, testDevice, g)
		up := s.Randn([]int64{4, 7, 48}, torch.F32, testDevice, g).To(dt)
		run := func(fused bool) (y, gg, gu []float64) {
			a := g0.To(dt).Clone().SetRequiresGrad(true)
			b := u0.To(dt).Clone().SetRequiresGrad(true)
			var out *torch.Tensor
			if fused {
				out = torch.SwiGLU(a, b)
			} else {
				out = a.Silu().Mul(b)
			}
			require.Equal(t, dt, out.DType())
			out.Mul(up).To(torch.F32).Sum().Backward()
			return out.Float64s(), a.Grad().Float64s(), b.Grad().Float64s()
		}
		y1, gg1, gu1 := run(true)
		y2, gg2, gu2 := run(false)
		assert.Equal(t, y2, y1, "%v output", dt)
		assert.Equal(t, gg2, gg1, "%v grad g", dt)
		assert.Equal(t, gu2, gu1, "%v grad u", dt)
	}
}

// TestLinearCrossEntropy checks the fused, chunked loss against transformers' loss
// (logits = x @ w^T, cast to float32, mean cross-entropy over labels not -100): in f32
// to float rounding, in bf16 to bf16 rounding, with chunks that do not divide the rows,
// with only x or only w trained, and without grad.
func TestLinearCrossEntropy(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(9, torch.CPU)
	defer g.Close()
	nearf := func(want, got []float64, tol float64, f string, a ...any) {
		t.Helper()
		near(t, want, got, tol, fmt.Sprintf(f, a...))
	}
	const N, H, V = 37, 16, 50
	x0 := s.Randn([]int64{N, H}, torch.F32, testDevice, g)
	w0 := s.Randn([]int64{V, H}, torch.F32, testDevice, g).MulScalar(0.5)
	lab := make([]int64, N)
	for i := range lab {
		lab[i] = int64((i * 7) % V)
		if i%5 == 3 {
			lab[i] = -100
		}
	}
	labels := s.FromInt64(lab, N).ToDevice(torch.I64, testDevice)
	type result struct{ loss, gx, gw []float64 }
	run := func(dt torch.DType, chunk int64, fused, needX, needW bool) result {
		x := x0.To(dt).Clone().SetRequiresGrad(needX)
		w := w0.To(dt).Clone().SetRequiresGrad(needW)
		var loss *torch.Tensor
		if fused {
			loss = torch.LinearCrossEntropy(x, w, labels, -100, chunk)
		} else {
			loss = torch.CrossEntropy(x.Linear(w, nil).To(torch.F32), labels, -100, torch.ReduceMean)
		}
		require.Equal(t, torch.F32, loss.DType())
		r := result{loss: loss.Float64s()}
		if needX || needW {
			loss.Backward()
		}
		if needX {
			r.gx = x.Grad().Float64s()
		}
		if needW {
			r.gw = w.Grad().Float64s()
		}
		return r
	}
	maxAbs := func(v []float64) float64 {
		m := 0.0
		for _, x := range v {
			m = math.Max(m, math.Abs(x))
		}
		return m
	}
	for _, dt := range []torch.DType{torch.F32, torch.BF16} {
		tol := 1e-5
		if dt == torch.BF16 {
			tol = 1.0 / 64 // a few bf16 ulps of the largest value
		}
		want := run(dt, 0, false, true, true)
		for _, chunk := range []int64{0, 1, 8, 36, 100} {
			got := run(dt, chunk, true, true, true)
			nearf(want.loss, got.loss, 1e-5*math.Abs(want.loss[0]), "%v chunk %d loss", dt, chunk)
			nearf(want.gx, got.gx, tol*maxAbs(want.gx), "%v chunk %d grad x", dt, chunk)
			nearf(want.gw, got.gw, tol*maxAbs(want.gw), "%v chunk %d grad w", dt, chunk)
		}
		onlyX := run(dt, 8, true, true, false)
		nearf(want.gx, onlyX.gx, tol*maxAbs(want.gx), "%v only x", dt)
		onlyW := run(dt, 8, true, false, true)
		nearf(want.gw, onlyW.gw, tol*maxAbs(want.gw), "%v only w", dt)
		none := run(dt, 8, true, false, false)
		nearf(want.loss, none.loss, 1e-5*math.Abs(want.loss[0]), "%v no grad", dt)
	}
	// every label ignored: 0/0, as transformers' mean gives
	all := s.FromInt64([]int64{-100, -100, -100}, 3).ToDevice(torch.I64, testDevice)
	l := torch.LinearCrossEntropy(x0.Narrow(0, 0, 3), w0, all, -100, 2).Float64s()[0]
	assert.True(t, math.IsNaN(l), "got %v", l)
	assert.Panics(t, func() { torch.LinearCrossEntropy(x0, w0.Narrow(1, 0, 3), labels, -100, 4) }, "shape mismatch")
}

// TestPaddedLinear: the padded product is the plain linear layer on x's first K columns,
// with zero columns after N.
func TestPaddedLinear(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(11, torch.CPU)
	defer g.Close()
	x := s.Randn([]int64{3, 4, 7}, torch.F32, testDevice, g)
	w := s.Randn([]int64{5, 6}, torch.F32, testDevice, g)
	b := s.Randn([]int64{5}, torch.F32, testDevice, g)
	x6 := x.Narrow(2, 0, 6)
	// x's 7th column must not matter: weights past K are zero
	y := torch.PaddedLinear(x, w, b, 8)
	assert.Equal(t, []int64{3, 4, 8}, y.Shape())
	near(t, x6.Linear(w, b).Float64s(), y.Narrow(2, 0, 5).Contiguous().Float64s(), 1e-5, "values")
	for _, v := range y.Narrow(2, 5, 3).Contiguous().Float64s() {
		require.Equal(t, 0.0, v)
	}
	assert.Panics(t, func() { torch.PaddedLinear(x, w, b, 4) }, "width below N")
	assert.Panics(t, func() { torch.PaddedLinear(x.Narrow(2, 0, 5), w, b, 8) }, "x narrower than K")
}

// TestSVD checks the reduced SVD against its definition on a tall and a wide matrix
// worked out by hand: a = u diag(s) vh, orthonormal columns of u and rows of vh,
// singular values descending, shapes [m, k], [k], [k, n].
func TestSVD(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	// a = [[3, 0], [0, -2], [0, 0]]: singular values 3 and 2.
	a := s.FromFloat64([]float64{3, 0, 0, -2, 0, 0}, 3, 2).ToDevice(torch.F64, testDevice)
	u, sv, vh := a.SVD()
	assert.Equal(t, []int64{3, 2}, u.Shape())
	assert.Equal(t, []int64{2}, sv.Shape())
	assert.Equal(t, []int64{2, 2}, vh.Shape())
	near(t, []float64{3, 2}, sv.Float64s(), 1e-12, "singular values")
	for _, x := range []*torch.Tensor{a, a.T()} {
		u, sv, vh := x.SVD()
		back := u.Mul(sv.Unsqueeze(0)).Matmul(vh)
		near(t, x.Contiguous().Float64s(), back.Float64s(), 1e-12, "u diag(s) vh")
		near(t, []float64{1, 0, 0, 1}, u.T().Matmul(u).Float64s(), 1e-12, "u'u")
		near(t, []float64{1, 0, 0, 1}, vh.Matmul(vh.T()).Float64s(), 1e-12, "vh vh'")
	}
	// a random 5x3 float32 matrix is reconstructed to float32 precision
	g := torch.NewGenerator(3, torch.CPU)
	defer g.Close()
	r := s.Randn([]int64{5, 3}, torch.F32, torch.CPU, g).ToDevice(torch.F32, testDevice)
	u, sv, vh = r.SVD()
	near(t, r.Float64s(), u.Mul(sv.Unsqueeze(0)).Matmul(vh).Float64s(), 1e-5, "random reconstruction")
	sf := sv.Float64s()
	assert.True(t, sf[0] >= sf[1] && sf[1] >= sf[2], "descending %v", sf)
}
