package torch_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/torch"
)

// input describes one float64 input of a gradient check.
type input struct {
	shape []int64
	gen   func(r *rand.Rand) float64 // nil: N(0,1)
}

func pos(r *rand.Rand) float64 { return 0.5 + r.Float64()*2 }

func in(shape ...int64) input { return input{shape: shape} }

func inPos(shape ...int64) input { return input{shape: shape, gen: pos} }

// gradcheck compares autograd gradients of sum(f(x) * w) (w fixed random) with central
// finite differences in float64, for every element of every input.
func gradcheck(t *testing.T, name string, f func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor, ins ...input) {
	t.Helper()
	r := rand.New(rand.NewSource(int64(len(name)) * 7919))
	vals := make([][]float64, len(ins))
	for i, in := range ins {
		n := int64(1)
		for _, d := range in.shape {
			n *= d
		}
		vals[i] = make([]float64, n)
		for j := range vals[i] {
			if in.gen != nil {
				vals[i][j] = in.gen(r)
			} else {
				vals[i][j] = r.NormFloat64()
			}
		}
	}
	var wv []float64
	eval := func(s *torch.Scope, grad bool) (*torch.Tensor, []*torch.Tensor) {
		xs := make([]*torch.Tensor, len(ins))
		for i, in := range ins {
			xs[i] = s.FromFloat64(vals[i], in.shape...).ToDevice(torch.F64, testDevice).Detach().SetRequiresGrad(grad)
		}
		y := f(s, xs)
		if wv == nil {
			wv = make([]float64, y.Numel())
			for j := range wv {
				wv[j] = r.NormFloat64()
			}
		}
		w := s.FromFloat64(wv, y.Shape()...).ToDevice(torch.F64, testDevice)
		return y.Mul(w).Sum(), xs
	}
	s := torch.NewScope()
	defer s.Close()
	loss, xs := eval(s, true)
	loss.Backward()
	const h = 1e-6
	for i := range ins {
		g := xs[i].Grad()
		require.NotNil(t, g, "%s: input %d has no gradient", name, i)
		got := g.Float64s()
		for j := range vals[i] {
			orig := vals[i][j]
			vals[i][j] = orig + h
			lp, _ := eval(s, false)
			vals[i][j] = orig - h
			lm, _ := eval(s, false)
			vals[i][j] = orig
			num := (lp.Item() - lm.Item()) / (2 * h)
			assert.InDelta(t, num, got[j], 1e-5*math.Max(1, math.Abs(num)), "%s: d/dx%d[%d]", name, i, j)
		}
	}
}

func TestGradients(t *testing.T) {
	un := func(op func(x *torch.Tensor) *torch.Tensor) func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
		return func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return op(xs[0]) }
	}
	bin := func(op func(a, b *torch.Tensor) *torch.Tensor) func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
		return func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return op(xs[0], xs[1]) }
	}
	idx := func(s *torch.Scope, v ...int64) *torch.Tensor {
		return s.FromInt64(v, int64(len(v))).ToDevice(torch.I64, testDevice)
	}
	cases := []struct {
		name string
		f    func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor
		ins  []input
	}{
		{"add", bin((*torch.Tensor).Add), []input{in(2, 3), in(3)}},
		{"sub", bin((*torch.Tensor).Sub), []input{in(2, 3), in(2, 1)}},
		{"mul", bin((*torch.Tensor).Mul), []input{in(2, 3), in(2, 3)}},
		{"div", bin((*torch.Tensor).Div), []input{in(2, 3), inPos(3)}},
		{"pow", bin((*torch.Tensor).Pow), []input{inPos(4), in(4)}},
		{"maximum", bin((*torch.Tensor).Maximum), []input{in(5), in(5)}},
		{"minimum", bin((*torch.Tensor).Minimum), []input{in(5), in(5)}},
		{"matmul", bin((*torch.Tensor).Matmul), []input{in(2, 3, 4), in(4, 2)}},
		{"bmm", bin((*torch.Tensor).Bmm), []input{in(2, 2, 3), in(2, 3, 2)}},
		{"mse", bin((*torch.Tensor).MSELoss), []input{in(4), in(4)}},
		{"linear", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return xs[0].Linear(xs[1], xs[2]) },
			[]input{in(2, 3), in(4, 3), in(4)}},
		{"add scalar", un(func(x *torch.Tensor) *torch.Tensor { return x.AddScalar(1.5) }), []input{in(3)}},
		{"sub scalar", un(func(x *torch.Tensor) *torch.Tensor { return x.SubScalar(1.5) }), []input{in(3)}},
		{"mul scalar", un(func(x *torch.Tensor) *torch.Tensor { return x.MulScalar(-2) }), []input{in(3)}},
		{"div scalar", un(func(x *torch.Tensor) *torch.Tensor { return x.DivScalar(3) }), []input{in(3)}},
		{"pow scalar", un(func(x *torch.Tensor) *torch.Tensor { return x.PowScalar(2.5) }), []input{inPos(3)}},
		{"rsub", un(func(x *torch.Tensor) *torch.Tensor { return x.RSub(2) }), []input{in(3)}},
		{"clamp", un(func(x *torch.Tensor) *torch.Tensor { return x.Clamp(-0.5, 0.5) }), []input{in(6)}},
		{"neg", un((*torch.Tensor).Neg), []input{in(3)}},
		{"sqrt", un((*torch.Tensor).Sqrt), []input{inPos(3)}},
		{"rsqrt", un((*torch.Tensor).Rsqrt), []input{inPos(3)}},
		{"reciprocal", un((*torch.Tensor).Reciprocal), []input{inPos(3)}},
		{"exp", un((*torch.Tensor).Exp), []input{in(3)}},
		{"log", un((*torch.Tensor).Log), []input{inPos(3)}},
		{"abs", un((*torch.Tensor).Abs), []input{in(4)}},
		{"tanh", un((*torch.Tensor).Tanh), []input{in(4)}},
		{"sigmoid", un((*torch.Tensor).Sigmoid), []input{in(4)}},
		{"silu", un((*torch.Tensor).Silu), []input{in(4)}},
		{"relu", un((*torch.Tensor).Relu), []input{in(4)}},
		{"gelu", un((*torch.Tensor).Gelu), []input{in(4)}},
		{"gelu tanh", un((*torch.Tensor).GeluTanh), []input{in(4)}},
		{"sin", un((*torch.Tensor).Sin), []input{in(3)}},
		{"cos", un((*torch.Tensor).Cos), []input{in(3)}},
		{"square", un((*torch.Tensor).Square), []input{in(3)}},
		{"clone", un((*torch.Tensor).Clone), []input{in(3)}},
		{"contiguous", un(func(x *torch.Tensor) *torch.Tensor { return x.T().Contiguous() }), []input{in(2, 3)}},
		{"to f32 and back", un(func(x *torch.Tensor) *torch.Tensor { return x.To(torch.F32).To(torch.F64).MulScalar(0) }), []input{in(3)}},
		{"softmax", un(func(x *torch.Tensor) *torch.Tensor { return x.Softmax(1) }), []input{in(2, 4)}},
		{"log softmax", un(func(x *torch.Tensor) *torch.Tensor { return x.LogSoftmax(-1) }), []input{in(2, 4)}},
		{"sum", un((*torch.Tensor).Sum), []input{in(2, 3)}},
		{"sum dims", un(func(x *torch.Tensor) *torch.Tensor { return x.SumDims([]int64{1}, true) }), []input{in(2, 3)}},
		{"mean", un((*torch.Tensor).Mean), []input{in(2, 3)}},
		{"mean dims", un(func(x *torch.Tensor) *torch.Tensor { return x.MeanDims([]int64{0}, false) }), []input{in(2, 3)}},
		{"max", un((*torch.Tensor).Max), []input{in(5)}},
		{"min", un((*torch.Tensor).Min), []input{in(5)}},
		{"amax dims", un(func(x *torch.Tensor) *torch.Tensor { return x.AmaxDims([]int64{1}, false) }), []input{in(2, 3)}},
		{"max dim", un(func(x *torch.Tensor) *torch.Tensor { v, _ := x.MaxDim(1, false); return v }), []input{in(2, 3)}},
		{"min dim", un(func(x *torch.Tensor) *torch.Tensor { v, _ := x.MinDim(0, true); return v }), []input{in(2, 3)}},
		{"topk", un(func(x *torch.Tensor) *torch.Tensor { v, _ := x.TopK(2, 1, true); return v }), []input{in(2, 4)}},
		{"norm", un(func(x *torch.Tensor) *torch.Tensor { return x.Norm(2) }), []input{in(5)}},
		{"norm dims", un(func(x *torch.Tensor) *torch.Tensor { return x.NormDims(2, []int64{1}, false) }), []input{in(2, 3)}},
		{"prod", un((*torch.Tensor).Prod), []input{inPos(4)}},
		{"logsumexp", un(func(x *torch.Tensor) *torch.Tensor { return x.LogSumExp([]int64{1}, false) }), []input{in(2, 3)}},
		{"var", un(func(x *torch.Tensor) *torch.Tensor { return x.Var([]int64{1}, true, false) }), []input{in(2, 4)}},
		{"reshape", un(func(x *torch.Tensor) *torch.Tensor { return x.Reshape(3, 2) }), []input{in(2, 3)}},
		{"view", un(func(x *torch.Tensor) *torch.Tensor { return x.View(6) }), []input{in(2, 3)}},
		{"transpose", un(func(x *torch.Tensor) *torch.Tensor { return x.Transpose(0, 1) }), []input{in(2, 3)}},
		{"permute", un(func(x *torch.Tensor) *torch.Tensor { return x.Permute(2, 0, 1) }), []input{in(2, 3, 2)}},
		{"narrow", un(func(x *torch.Tensor) *torch.Tensor { return x.Narrow(1, 1, 2) }), []input{in(2, 4)}},
		{"slice step", un(func(x *torch.Tensor) *torch.Tensor { return x.Slice(1, 0, 4, 2) }), []input{in(2, 4)}},
		{"select", un(func(x *torch.Tensor) *torch.Tensor { return x.Select(0, 1) }), []input{in(2, 3)}},
		{"expand", un(func(x *torch.Tensor) *torch.Tensor { return x.Expand(3, 2) }), []input{in(1, 2)}},
		{"unsqueeze squeeze", un(func(x *torch.Tensor) *torch.Tensor { return x.Unsqueeze(0).Squeeze(0).SqueezeAll() }), []input{in(3, 1)}},
		{"flatten", un(func(x *torch.Tensor) *torch.Tensor { return x.Flatten(0, 1) }), []input{in(2, 2, 2)}},
		{"triu", un(func(x *torch.Tensor) *torch.Tensor { return x.Triu(0) }), []input{in(3, 3)}},
		{"tril", un(func(x *torch.Tensor) *torch.Tensor { return x.Tril(-1) }), []input{in(3, 3)}},
		{"index select", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return xs[0].IndexSelect(0, idx(s, 2, 0, 2)) },
			[]input{in(3, 2)}},
		{"gather", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return xs[0].Gather(1, idx(s, 0, 2, 1, 1).Reshape(2, 2))
		}, []input{in(2, 3)}},
		{"cat", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return torch.Cat(xs, 1) }, []input{in(2, 2), in(2, 3)}},
		{"stack", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return torch.Stack(xs, 0) }, []input{in(2, 2), in(2, 2)}},
		{"split", un(func(x *torch.Tensor) *torch.Tensor { return x.Split(2, 0)[1] }), []input{in(5)}},
		{"chunk", un(func(x *torch.Tensor) *torch.Tensor { p := x.Chunk(2, 1); return p[0].Mul(p[1]) }), []input{in(2, 4)}},
		{"where", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.Where(xs[0].GtScalar(0), xs[0], xs[1])
		}, []input{in(5), in(5)}},
		{"masked fill", un(func(x *torch.Tensor) *torch.Tensor { return x.MaskedFill(x.LtScalar(0), 0.5) }), []input{in(6)}},
		{"embedding", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return torch.Embedding(xs[0], idx(s, 1, 0, 1)) },
			[]input{in(3, 2)}},
		{"layer norm", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return xs[0].LayerNorm([]int64{4}, xs[1], xs[2], 1e-5)
		}, []input{in(2, 4), in(4), in(4)}},
		{"rms norm", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return xs[0].RMSNorm(xs[1], 1e-6) },
			[]input{in(2, 4), in(4)}},
		{"rms norm 3d", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return xs[0].RMSNorm(xs[1], 1e-6) },
			[]input{in(2, 3, 4), in(4)}},
		{"rms norm no weight", un(func(x *torch.Tensor) *torch.Tensor { return x.RMSNorm(nil, 1e-6) }), []input{in(3, 4)}},
		{"dropout eval", un(func(x *torch.Tensor) *torch.Tensor { return x.Dropout(0.3, false) }), []input{in(3)}},
		{"sdpa causal", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.ScaledDotProductAttention(xs[0], xs[1], xs[2], torch.SDPAOptions{Causal: true})
		}, []input{in(1, 2, 3, 2), in(1, 2, 3, 2), in(1, 2, 3, 2)}},
		{"sdpa masked", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			m := s.FromBool([]bool{true, false, true, true, true, false, true, true, true}, 1, 1, 3, 3).ToDevice(torch.Bool, testDevice)
			return torch.ScaledDotProductAttention(xs[0], xs[1], xs[2], torch.SDPAOptions{Mask: m})
		}, []input{in(1, 1, 3, 2), in(1, 1, 3, 2), in(1, 1, 3, 2)}},
		{"padded linear", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.PaddedLinear(xs[0], xs[1], xs[2], 6)
		},
			[]input{in(2, 5), in(4, 3), in(4)}},
		{"padded linear 3d no bias", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.PaddedLinear(xs[0], xs[1], nil, 5)
		}, []input{in(2, 2, 3), in(4, 3)}},
		{"swiglu", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor { return torch.SwiGLU(xs[0], xs[1]) },
			[]input{in(2, 3), in(2, 3)}},
		{"linear cross entropy", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.LinearCrossEntropy(xs[0], xs[1], idx(s, 1, -100, 3, 0, 2), -100, 2)
		}, []input{in(5, 3), in(4, 3)}},
		{"linear cross entropy one chunk", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.LinearCrossEntropy(xs[0], xs[1], idx(s, 3, 1, 0), -100, 0)
		}, []input{in(3, 2), in(4, 2)}},
		{"cross entropy", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.CrossEntropy(xs[0], idx(s, 1, -100, 3), -100, torch.ReduceMean)
		}, []input{in(3, 4)}},
		{"cross entropy sum", func(s *torch.Scope, xs []*torch.Tensor) *torch.Tensor {
			return torch.CrossEntropy(xs[0], idx(s, 1, 0, 3), -100, torch.ReduceSum)
		}, []input{in(3, 4)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { gradcheck(t, c.name, c.f, c.ins...) })
	}
}

func TestAutogradBasics(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{1, 2, 3}, 3).SetRequiresGrad(true)
	assert.True(t, x.RequiresGrad())
	y := x.Square().Sum()
	y.Backward()
	assert.Equal(t, []float64{2, 4, 6}, x.Grad().Float64s())
	// gradients accumulate until zeroed
	x.Square().Sum().Backward()
	assert.Equal(t, []float64{4, 8, 12}, x.Grad().Float64s())
	x.ZeroGrad(false)
	assert.Equal(t, []float64{0, 0, 0}, x.Grad().Float64s())
	x.ZeroGrad(true)
	assert.Nil(t, x.Grad())
	// seeded backward on a non-scalar, retain graph for a second pass
	z := x.MulScalar(3)
	z.BackwardWith(s.FromFloat64([]float64{1, 0, 2}, 3), true)
	z.BackwardWith(s.FromFloat64([]float64{1, 0, 2}, 3), false)
	assert.Equal(t, []float64{6, 0, 12}, x.Grad().Float64s())
	// detach cuts the graph
	x.ZeroGrad(true)
	x.Detach().MulScalar(2).Add(x).Sum().Backward()
	assert.Equal(t, []float64{1, 1, 1}, x.Grad().Float64s())
	// NoGrad records nothing
	var w *torch.Tensor
	torch.NoGrad(func() { w = x.MulScalar(2) })
	assert.False(t, w.RequiresGrad())
	assert.True(t, x.MulScalar(2).RequiresGrad())
	// backward of a tensor without a graph is a clear error
	err := torch.Try(func() { s.Ones([]int64{1}, torch.F32, testDevice).Sum().Backward() })
	assert.ErrorContains(t, err, "does not require grad")
}

// TestNormProbe checks the probe against plain .grad norms: same numbers, no gradient kept,
// and weights that do not require grad.
func TestNormProbe(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	g := torch.NewGenerator(3, torch.CPU)
	defer g.Close()
	w1 := s.Randn([]int64{4, 3}, torch.F64, torch.CPU, g)
	w2 := s.Randn([]int64{2, 4}, torch.F64, torch.CPU, g)
	x := s.Randn([]int64{5, 3}, torch.F64, torch.CPU, g)
	fwd := func(a, b *torch.Tensor) *torch.Tensor {
		h := x.Linear(a, nil).Tanh()
		// w2 is used twice: the probe must see the summed gradient
		return h.Linear(b, nil).Square().Sum().Add(h.Linear(b, nil).Sum())
	}
	// reference: plain autograd
	r1 := w1.Detach().SetRequiresGrad(true)
	r2 := w2.Detach().SetRequiresGrad(true)
	fwd(r1, r2).Backward()
	n1 := r1.Grad().Norm(2).Item()
	n2 := r2.Grad().Norm(2).Item()

	buf := s.Zeros([]int64{2}, torch.F64, torch.CPU)
	token := s.Zeros(nil, torch.F64, torch.CPU).SetRequiresGrad(true)
	assert.False(t, w1.RequiresGrad())
	p1 := torch.NormProbe(w1, token, buf, 0)
	p2 := torch.NormProbe(w2, token, buf, 1)
	assert.Equal(t, w1.Float64s(), p1.Float64s(), "the probe passes the weight through")
	fwd(p1, p2).Backward()
	got := buf.Float64s()
	assert.InDelta(t, n1, math.Sqrt(got[0]), 1e-12)
	assert.InDelta(t, n2, math.Sqrt(got[1]), 1e-12)
	assert.Nil(t, w1.Grad())
	assert.Nil(t, w2.Grad())
	assert.Equal(t, 0.0, token.Grad().Item())
	// errors: slot outside the buffer, token without grad
	assert.ErrorContains(t, torch.Try(func() { torch.NormProbe(w1, token, buf, 2) }), "outside buffer")
	assert.ErrorContains(t, torch.Try(func() { torch.NormProbe(w1, s.Zeros(nil, torch.F64, torch.CPU), buf, 0) }), "token must require grad")
}
