package torch

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/blockllm/blockllm-go/cgo"
)

func unary(op string, code int, a *Tensor) *Tensor {
	s := resultScope(op, a)
	h, err := cgo.Unary(code, a.h)
	if err != nil {
		fail(op, err)
	}
	return s.add(h)
}

func binop(op string, code int, a, b *Tensor) *Tensor {
	s := resultScope(op, a, b)
	b.check(op)
	h, err := cgo.Binary(code, a.h, b.h)
	if err != nil {
		fail(op, err)
	}
	return s.add(h)
}

func scalar(op string, code int, a *Tensor, v float64) *Tensor {
	s := resultScope(op, a)
	h, err := cgo.Scalar(code, a.h, v)
	if err != nil {
		fail(op, err)
	}
	return s.add(h)
}

func wrap1(op string, s *Scope, h unsafe.Pointer, err error) *Tensor {
	if err != nil {
		fail(op, err)
	}
	return s.add(h)
}

// ---- elementwise (all differentiable where the math is) -------------------------

// Add is a + b with broadcasting.
func (a *Tensor) Add(b *Tensor) *Tensor { return binop("add", cgo.OpAdd, a, b) }

// Sub is a - b with broadcasting.
func (a *Tensor) Sub(b *Tensor) *Tensor { return binop("sub", cgo.OpSub, a, b) }

// Mul is a * b with broadcasting.
func (a *Tensor) Mul(b *Tensor) *Tensor { return binop("mul", cgo.OpMul, a, b) }

// Div is a / b with broadcasting (true division).
func (a *Tensor) Div(b *Tensor) *Tensor { return binop("div", cgo.OpDiv, a, b) }

// Pow is a ** b elementwise.
func (a *Tensor) Pow(b *Tensor) *Tensor { return binop("pow", cgo.OpPow, a, b) }

// Maximum is the elementwise maximum.
func (a *Tensor) Maximum(b *Tensor) *Tensor { return binop("maximum", cgo.OpMaximum, a, b) }

// Minimum is the elementwise minimum.
func (a *Tensor) Minimum(b *Tensor) *Tensor { return binop("minimum", cgo.OpMinimum, a, b) }

// Matmul is torch.matmul (batched, broadcasting).
func (a *Tensor) Matmul(b *Tensor) *Tensor { return binop("matmul", cgo.OpMatmul, a, b) }

// Bmm is a batched matrix product [B,n,k] x [B,k,m].
func (a *Tensor) Bmm(b *Tensor) *Tensor { return binop("bmm", cgo.OpBmm, a, b) }

// Eq is a == b (bool).
func (a *Tensor) Eq(b *Tensor) *Tensor { return binop("eq", cgo.OpEq, a, b) }

// Ne is a != b (bool).
func (a *Tensor) Ne(b *Tensor) *Tensor { return binop("ne", cgo.OpNe, a, b) }

// Lt is a < b (bool).
func (a *Tensor) Lt(b *Tensor) *Tensor { return binop("lt", cgo.OpLt, a, b) }

// Le is a <= b (bool).
func (a *Tensor) Le(b *Tensor) *Tensor { return binop("le", cgo.OpLe, a, b) }

// Gt is a > b (bool).
func (a *Tensor) Gt(b *Tensor) *Tensor { return binop("gt", cgo.OpGt, a, b) }

// Ge is a >= b (bool).
func (a *Tensor) Ge(b *Tensor) *Tensor { return binop("ge", cgo.OpGe, a, b) }

// LogicalAnd is a && b.
func (a *Tensor) LogicalAnd(b *Tensor) *Tensor { return binop("logical_and", cgo.OpLogicalAnd, a, b) }

// LogicalOr is a || b.
func (a *Tensor) LogicalOr(b *Tensor) *Tensor { return binop("logical_or", cgo.OpLogicalOr, a, b) }

// MSELoss is mean((a - b)^2).
func (a *Tensor) MSELoss(b *Tensor) *Tensor { return binop("mse_loss", cgo.OpMSE, a, b) }

// AddScalar is a + v.
func (a *Tensor) AddScalar(v float64) *Tensor { return scalar("add_scalar", cgo.ScAdd, a, v) }

// SubScalar is a - v.
func (a *Tensor) SubScalar(v float64) *Tensor { return scalar("sub_scalar", cgo.ScSub, a, v) }

// MulScalar is a * v.
func (a *Tensor) MulScalar(v float64) *Tensor { return scalar("mul_scalar", cgo.ScMul, a, v) }

// DivScalar is a / v.
func (a *Tensor) DivScalar(v float64) *Tensor { return scalar("div_scalar", cgo.ScDiv, a, v) }

// PowScalar is a ** v.
func (a *Tensor) PowScalar(v float64) *Tensor { return scalar("pow_scalar", cgo.ScPow, a, v) }

// RSub is v - a.
func (a *Tensor) RSub(v float64) *Tensor { return scalar("rsub", cgo.ScRsub, a, v) }

// EqScalar is a == v.
func (a *Tensor) EqScalar(v float64) *Tensor { return scalar("eq_scalar", cgo.ScEq, a, v) }

// NeScalar is a != v.
func (a *Tensor) NeScalar(v float64) *Tensor { return scalar("ne_scalar", cgo.ScNe, a, v) }

// LtScalar is a < v.
func (a *Tensor) LtScalar(v float64) *Tensor { return scalar("lt_scalar", cgo.ScLt, a, v) }

// GtScalar is a > v.
func (a *Tensor) GtScalar(v float64) *Tensor { return scalar("gt_scalar", cgo.ScGt, a, v) }

// ClampMin is max(a, v).
func (a *Tensor) ClampMin(v float64) *Tensor { return scalar("clamp_min", cgo.ScClampMin, a, v) }

// ClampMax is min(a, v).
func (a *Tensor) ClampMax(v float64) *Tensor { return scalar("clamp_max", cgo.ScClampMax, a, v) }

// Clamp limits a to [lo, hi].
func (a *Tensor) Clamp(lo, hi float64) *Tensor {
	s := resultScope("clamp", a)
	h, err := cgo.Clamp(a.h, lo, hi, true, true)
	return wrap1("clamp", s, h, err)
}

// Neg is -a.
func (a *Tensor) Neg() *Tensor { return unary("neg", cgo.OpNeg, a) }

// Sqrt is elementwise sqrt.
func (a *Tensor) Sqrt() *Tensor { return unary("sqrt", cgo.OpSqrt, a) }

// Rsqrt is 1/sqrt(a).
func (a *Tensor) Rsqrt() *Tensor { return unary("rsqrt", cgo.OpRsqrt, a) }

// Exp is e^a.
func (a *Tensor) Exp() *Tensor { return unary("exp", cgo.OpExp, a) }

// Log is the natural log.
func (a *Tensor) Log() *Tensor { return unary("log", cgo.OpLog, a) }

// Abs is |a|.
func (a *Tensor) Abs() *Tensor { return unary("abs", cgo.OpAbs, a) }

// Tanh is tanh(a).
func (a *Tensor) Tanh() *Tensor { return unary("tanh", cgo.OpTanh, a) }

// Sigmoid is 1/(1+e^-a).
func (a *Tensor) Sigmoid() *Tensor { return unary("sigmoid", cgo.OpSigmoid, a) }

// Silu is a * sigmoid(a).
func (a *Tensor) Silu() *Tensor { return unary("silu", cgo.OpSilu, a) }

// Relu is max(a, 0).
func (a *Tensor) Relu() *Tensor { return unary("relu", cgo.OpRelu, a) }

// Gelu is the exact (erf) GELU.
func (a *Tensor) Gelu() *Tensor { return unary("gelu", cgo.OpGelu, a) }

// GeluTanh is the tanh-approximated GELU.
func (a *Tensor) GeluTanh() *Tensor { return unary("gelu_tanh", cgo.OpGeluTanh, a) }

// Sin is sin(a).
func (a *Tensor) Sin() *Tensor { return unary("sin", cgo.OpSin, a) }

// Cos is cos(a).
func (a *Tensor) Cos() *Tensor { return unary("cos", cgo.OpCos, a) }

// Square is a*a.
func (a *Tensor) Square() *Tensor { return unary("square", cgo.OpSquare, a) }

// Sign is -1, 0 or 1.
func (a *Tensor) Sign() *Tensor { return unary("sign", cgo.OpSign, a) }

// Floor rounds down.
func (a *Tensor) Floor() *Tensor { return unary("floor", cgo.OpFloor, a) }

// Reciprocal is 1/a.
func (a *Tensor) Reciprocal() *Tensor { return unary("reciprocal", cgo.OpReciprocal, a) }

// LogicalNot is !a.
func (a *Tensor) LogicalNot() *Tensor { return unary("logical_not", cgo.OpLogicalNot, a) }

// IsFinite is true where a is neither inf nor NaN.
func (a *Tensor) IsFinite() *Tensor { return unary("isfinite", cgo.OpIsFinite, a) }

// ZerosLike is zeros with a's shape, dtype and device.
func (a *Tensor) ZerosLike() *Tensor { return unary("zeros_like", cgo.OpZerosLike, a) }

// OnesLike is ones with a's shape, dtype and device.
func (a *Tensor) OnesLike() *Tensor { return unary("ones_like", cgo.OpOnesLike, a) }

// Contiguous returns a contiguous tensor (a itself as a new handle when already so).
func (a *Tensor) Contiguous() *Tensor { return unary("contiguous", cgo.OpContiguous, a) }

// Detach returns a view that is cut from the autograd graph.
func (a *Tensor) Detach() *Tensor { return unary("detach", cgo.OpDetach, a) }

// Clone copies the data (differentiable).
func (a *Tensor) Clone() *Tensor { return unary("clone", cgo.OpClone, a) }

// Alias returns a new handle to the same tensor (same autograd identity).
func (a *Tensor) Alias() *Tensor { return unary("alias", cgo.OpAlias, a) }

// Linear is x @ w^T + b; b may be nil. x: [..., in], w: [out, in], b: [out].
func (a *Tensor) Linear(w, b *Tensor) *Tensor {
	s := resultScope("linear", a, w, b)
	w.check("linear")
	h, err := cgo.Linear(a.h, w.h, handle(b))
	return wrap1("linear", s, h, err)
}

// Where is cond ? a : b (cond is bool, broadcasting).
func Where(cond, a, b *Tensor) *Tensor {
	s := resultScope("where", cond, a, b)
	a.check("where")
	b.check("where")
	h, err := cgo.Where(cond.h, a.h, b.h)
	return wrap1("where", s, h, err)
}

// MaskedFill sets a to v where mask (bool, broadcast) is true.
func (a *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	s := resultScope("masked_fill", a, mask)
	mask.check("masked_fill")
	h, err := cgo.MaskedFill(a.h, mask.h, v)
	return wrap1("masked_fill", s, h, err)
}

// Triu keeps the upper triangle from diagonal k of the last two dims.
func (a *Tensor) Triu(k int64) *Tensor {
	s := resultScope("triu", a)
	h, err := cgo.Tri(a.h, k, true)
	return wrap1("triu", s, h, err)
}

// Tril keeps the lower triangle up to diagonal k of the last two dims.
func (a *Tensor) Tril(k int64) *Tensor {
	s := resultScope("tril", a)
	h, err := cgo.Tri(a.h, k, false)
	return wrap1("tril", s, h, err)
}

// ---- reductions -----------------------------------------------------------------

func reduce(op string, code int, a *Tensor, dims []int64, keep bool, p float64) *Tensor {
	s := resultScope(op, a)
	h, err := cgo.Reduce(code, a.h, dims, keep, p)
	return wrap1(op, s, h, err)
}

// Sum over all elements.
func (a *Tensor) Sum() *Tensor { return reduce("sum", cgo.RedSum, a, nil, false, 0) }

// SumDims sums over dims.
func (a *Tensor) SumDims(dims []int64, keepdim bool) *Tensor {
	return reduce("sum", cgo.RedSum, a, dims, keepdim, 0)
}

// Mean over all elements.
func (a *Tensor) Mean() *Tensor { return reduce("mean", cgo.RedMean, a, nil, false, 0) }

// MeanDims averages over dims.
func (a *Tensor) MeanDims(dims []int64, keepdim bool) *Tensor {
	return reduce("mean", cgo.RedMean, a, dims, keepdim, 0)
}

// Max over all elements.
func (a *Tensor) Max() *Tensor { return reduce("max", cgo.RedAmax, a, nil, false, 0) }

// Min over all elements.
func (a *Tensor) Min() *Tensor { return reduce("min", cgo.RedAmin, a, nil, false, 0) }

// AmaxDims is the max over dims.
func (a *Tensor) AmaxDims(dims []int64, keepdim bool) *Tensor {
	return reduce("amax", cgo.RedAmax, a, dims, keepdim, 0)
}

// Norm is the p-norm over all elements.
func (a *Tensor) Norm(p float64) *Tensor { return reduce("norm", cgo.RedNorm, a, nil, false, p) }

// NormDims is the p-norm over dims.
func (a *Tensor) NormDims(p float64, dims []int64, keepdim bool) *Tensor {
	return reduce("norm", cgo.RedNorm, a, dims, keepdim, p)
}

// Prod over all elements.
func (a *Tensor) Prod() *Tensor { return reduce("prod", cgo.RedProd, a, nil, false, 0) }

// LogSumExp over dims.
func (a *Tensor) LogSumExp(dims []int64, keepdim bool) *Tensor {
	return reduce("logsumexp", cgo.RedLogSumExp, a, dims, keepdim, 0)
}

// Var is the (unbiased when unbiased) variance over dims (none: all).
func (a *Tensor) Var(dims []int64, unbiased, keepdim bool) *Tensor {
	p := 0.0
	if unbiased {
		p = 1
	}
	return reduce("var", cgo.RedVar, a, dims, keepdim, p)
}

// MaxDim returns the max values and their int64 indices along dim.
func (a *Tensor) MaxDim(dim int64, keepdim bool) (values, indices *Tensor) {
	s := resultScope("max_dim", a)
	v, i, err := cgo.MaxDim(a.h, dim, keepdim, false)
	if err != nil {
		fail("max_dim", err)
	}
	return s.add(v), s.add(i)
}

// MinDim returns the min values and their int64 indices along dim.
func (a *Tensor) MinDim(dim int64, keepdim bool) (values, indices *Tensor) {
	s := resultScope("min_dim", a)
	v, i, err := cgo.MaxDim(a.h, dim, keepdim, true)
	if err != nil {
		fail("min_dim", err)
	}
	return s.add(v), s.add(i)
}

// Argmax returns int64 indices of the max along dim.
func (a *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	s := resultScope("argmax", a)
	h, err := cgo.Argmax(a.h, dim, keepdim)
	return wrap1("argmax", s, h, err)
}

// TopK returns the k largest (or smallest) values along dim, sorted, and their indices.
func (a *Tensor) TopK(k, dim int64, largest bool) (values, indices *Tensor) {
	s := resultScope("topk", a)
	v, i, err := cgo.TopK(a.h, k, dim, largest)
	if err != nil {
		fail("topk", err)
	}
	return s.add(v), s.add(i)
}

// SVD returns the reduced singular value decomposition of a matrix (or a batch of
// matrices) a = u diag(s) vh, as torch.linalg.svd(a, full_matrices=False): for a [m, n]
// with k = min(m, n), u [m, k], s [k] (descending), vh [k, n]. Not differentiable here
// (GaLore takes it of a gradient).
func (a *Tensor) SVD() (u, s, vh *Tensor) {
	sc := resultScope("svd", a)
	hu, hs, hvh, err := cgo.SVD(a.h)
	if err != nil {
		fail("svd", err)
	}
	return sc.add(hu), sc.add(hs), sc.add(hvh)
}

// Softmax along dim.
func (a *Tensor) Softmax(dim int64) *Tensor {
	s := resultScope("softmax", a)
	h, err := cgo.Softmax(a.h, dim, false, -1)
	return wrap1("softmax", s, h, err)
}

// SoftmaxAs computes softmax along dim in dtype dt (as HF does in float32).
func (a *Tensor) SoftmaxAs(dim int64, dt DType) *Tensor {
	s := resultScope("softmax", a)
	h, err := cgo.Softmax(a.h, dim, false, int(dt))
	return wrap1("softmax", s, h, err)
}

// LogSoftmax along dim.
func (a *Tensor) LogSoftmax(dim int64) *Tensor {
	s := resultScope("log_softmax", a)
	h, err := cgo.Softmax(a.h, dim, true, -1)
	return wrap1("log_softmax", s, h, err)
}

// ---- shape ------------------------------------------------------------------------

// Reshape returns a tensor of the given shape (a view when possible; one -1 allowed).
func (a *Tensor) Reshape(shape ...int64) *Tensor {
	s := resultScope("reshape", a)
	h, err := cgo.Reshape(a.h, shape, false)
	return wrap1("reshape", s, h, err)
}

// View is Reshape that must not copy.
func (a *Tensor) View(shape ...int64) *Tensor {
	s := resultScope("view", a)
	h, err := cgo.Reshape(a.h, shape, true)
	return wrap1("view", s, h, err)
}

// Expand broadcasts size-1 dims to shape (-1 keeps a size) without copying.
func (a *Tensor) Expand(shape ...int64) *Tensor {
	s := resultScope("expand", a)
	h, err := cgo.Expand(a.h, shape)
	return wrap1("expand", s, h, err)
}

// Permute reorders dims.
func (a *Tensor) Permute(dims ...int64) *Tensor {
	s := resultScope("permute", a)
	h, err := cgo.Permute(a.h, dims)
	return wrap1("permute", s, h, err)
}

// Transpose swaps dims d0 and d1.
func (a *Tensor) Transpose(d0, d1 int64) *Tensor {
	s := resultScope("transpose", a)
	h, err := cgo.Transpose(a.h, d0, d1)
	return wrap1("transpose", s, h, err)
}

// T transposes a 2-D tensor.
func (a *Tensor) T() *Tensor { return a.Transpose(0, 1) }

// Narrow returns length entries of dim starting at start (a view).
func (a *Tensor) Narrow(dim, start, length int64) *Tensor {
	return a.Slice(dim, start, start+length, 1)
}

// Slice is a[start:end:step] along dim (a view; end may exceed the size).
func (a *Tensor) Slice(dim, start, end, step int64) *Tensor {
	s := resultScope("slice", a)
	h, err := cgo.Slice(a.h, dim, start, end, step)
	return wrap1("slice", s, h, err)
}

// Select picks index i of dim, removing the dim.
func (a *Tensor) Select(dim, i int64) *Tensor {
	return a.Slice(dim, i, i+1, 1).Squeeze(dim)
}

// Squeeze removes dim d if its size is 1.
func (a *Tensor) Squeeze(d int64) *Tensor {
	s := resultScope("squeeze", a)
	h, err := cgo.Squeeze(a.h, d, false, false)
	return wrap1("squeeze", s, h, err)
}

// SqueezeAll removes every size-1 dim.
func (a *Tensor) SqueezeAll() *Tensor {
	s := resultScope("squeeze", a)
	h, err := cgo.Squeeze(a.h, 0, true, false)
	return wrap1("squeeze", s, h, err)
}

// Unsqueeze inserts a size-1 dim at d.
func (a *Tensor) Unsqueeze(d int64) *Tensor {
	s := resultScope("unsqueeze", a)
	h, err := cgo.Squeeze(a.h, d, false, true)
	return wrap1("unsqueeze", s, h, err)
}

// Flatten merges dims start..end (inclusive; negative counts from the end).
func (a *Tensor) Flatten(start, end int64) *Tensor {
	s := resultScope("flatten", a)
	h, err := cgo.Flatten(a.h, start, end)
	return wrap1("flatten", s, h, err)
}

// IndexSelect gathers entries of dim by an int64 index vector.
func (a *Tensor) IndexSelect(dim int64, idx *Tensor) *Tensor {
	s := resultScope("index_select", a, idx)
	idx.check("index_select")
	h, err := cgo.IndexSelect(a.h, dim, idx.h)
	return wrap1("index_select", s, h, err)
}

// Gather is torch.gather(a, dim, idx).
func (a *Tensor) Gather(dim int64, idx *Tensor) *Tensor {
	s := resultScope("gather", a, idx)
	idx.check("gather")
	h, err := cgo.Gather(a.h, dim, idx.h)
	return wrap1("gather", s, h, err)
}

func handles(op string, ts []*Tensor) []unsafe.Pointer {
	hs := make([]unsafe.Pointer, len(ts))
	for i, t := range ts {
		t.check(op)
		hs[i] = t.h
	}
	return hs
}

// Cat concatenates tensors along dim.
func Cat(ts []*Tensor, dim int64) *Tensor {
	s := resultScope("cat", ts...)
	h, err := cgo.Cat(handles("cat", ts), dim, false)
	return wrap1("cat", s, h, err)
}

// Stack stacks tensors along a new dim.
func Stack(ts []*Tensor, dim int64) *Tensor {
	s := resultScope("stack", ts...)
	h, err := cgo.Cat(handles("stack", ts), dim, true)
	return wrap1("stack", s, h, err)
}

// Split cuts a into pieces of size along dim (the last may be smaller).
func (a *Tensor) Split(size, dim int64) []*Tensor {
	s := resultScope("split", a)
	n := a.Size(int(dim))
	parts := int((n + size - 1) / size)
	hs, err := cgo.Split(a.h, size, dim, false, parts+1)
	if err != nil {
		fail("split", err)
	}
	out := make([]*Tensor, len(hs))
	for i, h := range hs {
		out[i] = s.add(h)
	}
	return out
}

// Chunk cuts a into n nearly equal chunks along dim.
func (a *Tensor) Chunk(n, dim int64) []*Tensor {
	s := resultScope("chunk", a)
	hs, err := cgo.Split(a.h, n, dim, true, int(n)+1)
	if err != nil {
		fail("chunk", err)
	}
	out := make([]*Tensor, len(hs))
	for i, h := range hs {
		out[i] = s.add(h)
	}
	return out
}

// ---- conversion ---------------------------------------------------------------------

// To converts the dtype (same device).
func (a *Tensor) To(dt DType) *Tensor { return a.ToDevice(dt, a.Device()) }

// ToDevice converts dtype and device (differentiable).
func (a *Tensor) ToDevice(dt DType, dev Device) *Tensor {
	s := resultScope("to", a)
	h, err := cgo.To(a.h, int(dt), int(dev.Type), dev.Index)
	return wrap1("to", s, h, err)
}

// ---- neural network -------------------------------------------------------------------

// Embedding looks up rows of the weight w [V, D] for int64 ids [...] -> [..., D].
func Embedding(w, ids *Tensor) *Tensor {
	s := resultScope("embedding", ids, w)
	w.check("embedding")
	h, err := cgo.Embedding(w.h, ids.h, -1)
	return wrap1("embedding", s, h, err)
}

// LayerNorm normalises over the last len(shape) dims; w and b may be nil.
func (a *Tensor) LayerNorm(shape []int64, w, b *Tensor, eps float64) *Tensor {
	s := resultScope("layer_norm", a, w, b)
	h, err := cgo.LayerNorm(a.h, shape, handle(w), handle(b), eps)
	return wrap1("layer_norm", s, h, err)
}

// RMSNorm is Hugging Face's LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) in float32, cast
// back to x's dtype, times w (nil: no weight).
func (a *Tensor) RMSNorm(w *Tensor, eps float64) *Tensor {
	s := resultScope("rms_norm", a, w)
	h, err := cgo.RMSNorm(a.h, handle(w), eps)
	return wrap1("rms_norm", s, h, err)
}

// SwiGLU is silu(g) * u (Llama's MLP activation) as one autograd node: the same values
// and gradients as g.Silu().Mul(u), but backward keeps only g and u, not silu(g) too.
func SwiGLU(g, u *Tensor) *Tensor {
	s := resultScope("swiglu", g, u)
	u.check("swiglu")
	h, err := cgo.SwiGLU(g.h, u.h)
	return wrap1("swiglu", s, h, err)
}

// PaddedLinear is a linear layer computed with its weight w [N, K] (and bias b [N], may
// be nil) zero-padded to [width, x's last dim]: the result has width columns, the
// extra ones zero, and x's columns past K meet zero weights. Values and gradients are
// those of the unpadded layer; the padded shapes let the GPU's matrix kernels use
// 16-byte-aligned rows (see llama.Options.PadMLP).
func PaddedLinear(x, w, b *Tensor, width int64) *Tensor {
	s := resultScope("padded_linear", x, w, b)
	h, err := cgo.PaddedLinear(x.h, w.h, handle(b), width)
	return wrap1("padded_linear", s, h, err)
}

// LinearCrossEntropy is the mean cross-entropy of the logits x @ w^T (x [N, H], w [V, H],
// logits cast to float32 as transformers' loss does) against labels [N] (int64; rows
// equal to ignoreIndex are skipped), computed chunk rows at a time (chunk <= 0: all at
// once), so that the [N, V] logits never exist whole. Its gradients for x and w are made
// in the forward pass and backward only scales them: nothing is recomputed.
func LinearCrossEntropy(x, w, labels *Tensor, ignoreIndex, chunk int64) *Tensor {
	s := resultScope("linear_cross_entropy", x, w, labels)
	labels.check("linear_cross_entropy")
	h, err := cgo.LinearCrossEntropy(x.h, w.h, labels.h, ignoreIndex, chunk)
	return wrap1("linear_cross_entropy", s, h, err)
}

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p) when train.
func (a *Tensor) Dropout(p float64, train bool) *Tensor {
	s := resultScope("dropout", a)
	h, err := cgo.Dropout(a.h, p, train)
	return wrap1("dropout", s, h, err)
}

// SDPAOptions configure ScaledDotProductAttention.
type SDPAOptions struct {
	Mask    *Tensor // bool (true = attend) or additive float mask, broadcast to [B,H,L,S]; nil: none
	Causal  bool    // mask out keys after the query position
	Dropout float64 // attention dropout probability
	Scale   float64 // 0: 1/sqrt(head_dim)
	Fused   bool    // use libtorch's fused kernel where available (2.1+); else the math path
}

// ScaledDotProductAttention computes softmax(q k^T * scale + mask) v for q [B,H,L,E],
// k [B,H,S,E], v [B,H,S,Ev] -> [B,H,L,Ev]. The math path computes softmax in float32.
func ScaledDotProductAttention(q, k, v *Tensor, o SDPAOptions) *Tensor {
	s := resultScope("sdpa", q, k, v)
	k.check("sdpa")
	v.check("sdpa")
	h, err := cgo.SDPA(q.h, k.h, v.h, handle(o.Mask), o.Dropout, o.Causal, o.Scale, o.Fused)
	return wrap1("sdpa", s, h, err)
}

// Reduction selects how a loss combines per-element values.
type Reduction int

// Loss reductions (libtorch's codes).
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// CrossEntropy is torch.nn.functional.cross_entropy for logits [N, C] and int64 targets
// [N]; targets equal to ignoreIndex do not count (HF uses -100).
func CrossEntropy(logits, target *Tensor, ignoreIndex int64, r Reduction) *Tensor {
	s := resultScope("cross_entropy", logits, target)
	target.check("cross_entropy")
	h, err := cgo.CrossEntropy(logits.h, target.h, ignoreIndex, int(r), 0)
	return wrap1("cross_entropy", s, h, err)
}

// ---- in-place updates (never recorded by autograd) -------------------------------------

func inplace(op string, code int, a, b, c *Tensor, s1, s2 float64) {
	a.check(op)
	if err := cgo.InPlace(code, a.h, handle(b), handle(c), s1, s2); err != nil {
		fail(op, err)
	}
}

// AddInPlace does a += alpha * b.
func (a *Tensor) AddInPlace(b *Tensor, alpha float64) {
	inplace("add_", cgo.IpAdd, a, b, nil, alpha, 0)
}

// AddScalarInPlace does a += v.
func (a *Tensor) AddScalarInPlace(v float64) { inplace("add_", cgo.IpAddScalar, a, nil, nil, v, 0) }

// MulInPlace does a *= b.
func (a *Tensor) MulInPlace(b *Tensor) { inplace("mul_", cgo.IpMul, a, b, nil, 0, 0) }

// MulScalarInPlace does a *= v.
func (a *Tensor) MulScalarInPlace(v float64) { inplace("mul_", cgo.IpMulScalar, a, nil, nil, v, 0) }

// DivInPlace does a /= b.
func (a *Tensor) DivInPlace(b *Tensor) { inplace("div_", cgo.IpDiv, a, b, nil, 0, 0) }

// DivScalarInPlace does a /= v.
func (a *Tensor) DivScalarInPlace(v float64) { inplace("div_", cgo.IpDivScalar, a, nil, nil, v, 0) }

// AddcmulInPlace does a += v * b * c.
func (a *Tensor) AddcmulInPlace(b, c *Tensor, v float64) {
	inplace("addcmul_", cgo.IpAddcmul, a, b, c, v, 0)
}

// AddcdivInPlace does a += v * b / c.
func (a *Tensor) AddcdivInPlace(b, c *Tensor, v float64) {
	inplace("addcdiv_", cgo.IpAddcdiv, a, b, c, v, 0)
}

// LerpInPlace does a += w * (b - a).
func (a *Tensor) LerpInPlace(b *Tensor, w float64) { inplace("lerp_", cgo.IpLerp, a, b, nil, w, 0) }

// CopyFrom copies b into a (converting dtype and device, broadcasting).
func (a *Tensor) CopyFrom(b *Tensor) { inplace("copy_", cgo.IpCopy, a, b, nil, 0, 0) }

// Zero sets a to 0.
func (a *Tensor) Zero() { inplace("zero_", cgo.IpZero, a, nil, nil, 0, 0) }

// Fill sets a to v.
func (a *Tensor) Fill(v float64) { inplace("fill_", cgo.IpFill, a, nil, nil, v, 0) }

// ClampInPlace limits a to [lo, hi].
func (a *Tensor) ClampInPlace(lo, hi float64) { inplace("clamp_", cgo.IpClamp, a, nil, nil, lo, hi) }

// SqrtInPlace does a = sqrt(a).
func (a *Tensor) SqrtInPlace() { inplace("sqrt_", cgo.IpSqrt, a, nil, nil, 0, 0) }

// IndexPut writes values at a[idx] (idx int64 along dim 0, or a bool mask) in place;
// with accumulate the values are added.
func (a *Tensor) IndexPut(idx, values *Tensor, accumulate bool) {
	a.check("index_put_")
	idx.check("index_put_")
	values.check("index_put_")
	if err := cgo.IndexPut(a.h, idx.h, values.h, accumulate); err != nil {
		fail("index_put_", err)
	}
}

// AdamWStep performs one torch.optim.AdamW update of p in place from gradient g and
// moments m, v (same shape; m and v may be f32 for a bf16 p). step counts from 1.
func AdamWStep(p, g, m, v *Tensor, lr, beta1, beta2, eps, weightDecay float64, step int64) {
	p.check("adamw")
	g.check("adamw")
	m.check("adamw")
	v.check("adamw")
	if err := cgo.AdamWStep(p.h, g.h, m.h, v.h, lr, beta1, beta2, eps, weightDecay, step); err != nil {
		fail("adamw", err)
	}
}

// ---- autograd ---------------------------------------------------------------------------

// SetRequiresGrad sets the autograd flag of a leaf tensor and returns it.
func (a *Tensor) SetRequiresGrad(on bool) *Tensor {
	a.check("requires_grad_")
	if err := cgo.SetRequiresGrad(a.h, on); err != nil {
		fail("requires_grad_", err)
	}
	return a
}

// Backward accumulates gradients of a (a scalar) into the leaves' .grad.
func (a *Tensor) Backward() {
	a.check("backward")
	if err := cgo.Backward(a.h, nil, false); err != nil {
		fail("backward", err)
	}
}

// BackwardWith runs backward with a seed gradient (same shape as a); retain keeps the
// graph for another backward.
func (a *Tensor) BackwardWith(grad *Tensor, retain bool) {
	a.check("backward")
	if err := cgo.Backward(a.h, handle(grad), retain); err != nil {
		fail("backward", err)
	}
}

// Grad returns a handle to a's accumulated gradient, or nil when there is none. The
// handle lands in a's scope, or in a working operand scope given by s.In(a) for stored
// parameters.
func (a *Tensor) Grad() *Tensor {
	s := resultScope("grad", a)
	h, err := cgo.Grad(a.h)
	if err != nil {
		fail("grad", err)
	}
	if h == nil {
		return nil
	}
	return s.add(h)
}

// GradIn is Grad with the handle owned by s.
func (a *Tensor) GradIn(s *Scope) *Tensor { return s.In(a).Grad() }

// ZeroGrad zeroes a's gradient, or frees it (setToNone), as Optimizer.zero_grad does.
func (a *Tensor) ZeroGrad(setToNone bool) {
	a.check("zero_grad")
	if err := cgo.GradReset(a.h, setToNone); err != nil {
		fail("zero_grad", err)
	}
}

// NormProbe passes w through a gradient-norm probe: the result is w (a view) whose
// backward adds the squared 2-norm of the gradient reaching it to buf[slot] (buf: a
// float 1-D tensor on w's device) and keeps no gradient. token must be a scalar that
// requires grad (it carries the graph when w itself does not require grad).
func NormProbe(w, token, buf *Tensor, slot int) *Tensor {
	s := resultScope("norm_probe", token, buf, w)
	w.check("norm_probe")
	h, err := cgo.NormProbe(w.h, token.h, buf.h, int64(slot))
	return wrap1("norm_probe", s, h, err)
}

// ---- helpers for tests and callers ---------------------------------------------------

// AllClose reports whether a and b have equal shapes and |a-b| <= atol + rtol*|b|
// everywhere (compared in float64 on the host).
func AllClose(a, b *Tensor, rtol, atol float64) bool {
	if fmt.Sprint(a.Shape()) != fmt.Sprint(b.Shape()) {
		return false
	}
	x, y := a.Float64s(), b.Float64s()
	for i := range x {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) || math.Abs(x[i]-y[i]) > atol+rtol*math.Abs(y[i]) {
			return false
		}
	}
	return true
}

// AdamWStepMulti performs one AdamW update of every ps[i] from gs[i] with moments ms[i],
// vs[i] and step count steps[i] (from 1), in one call. With fused, libtorch's fused
// multi-tensor kernel (torch.optim.AdamW(fused=True)) runs where it can: CUDA with
// libtorch 2.1+ or CPU with 2.4+, one dtype and device for all tensors. It reports
// whether it did; otherwise each tensor takes AdamWStep's path.
func AdamWStepMulti(ps, gs, ms, vs []*Tensor, steps []int64, lr, beta1, beta2, eps, weightDecay float64, fused bool) bool {
	hs := func(ts []*Tensor) []unsafe.Pointer { return handles("adamw_multi", ts) }
	used, err := cgo.AdamWMulti(hs(ps), hs(gs), hs(ms), hs(vs), steps, lr, beta1, beta2, eps, weightDecay, fused)
	if err != nil {
		fail("adamw_multi", err)
	}
	return used
}
