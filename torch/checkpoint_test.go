package torch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/cgo"
	"github.com/blockllm/blockllm-go/torch"
)

// TestCheckpoint: recompute gives the same values and gradients (for the input and for
// parameters used inside) as the plain computation, saves less, and frees everything.
func TestCheckpoint(t *testing.T) {
	before := torch.LiveTensors()
	store := torch.NewStore("w")
	g := torch.NewGenerator(5, torch.CPU)
	defer g.Close()
	w1 := store.Randn([]int64{16, 16}, torch.F64, testDevice, g).SetRequiresGrad(true)
	w2 := store.Randn([]int64{16, 16}, torch.F64, testDevice, g).SetRequiresGrad(true)
	block := func(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
		return x.Linear(w1, nil).Tanh().Linear(w2, nil).Silu().Add(x)
	}
	for _, xGrad := range []bool{true, false} {
		s := torch.NewScope()
		x0 := s.Randn([]int64{4, 16}, torch.F64, testDevice, g)
		// plain
		x := x0.Detach().SetRequiresGrad(xGrad)
		y := block(s, x)
		y.Square().Sum().Backward()
		gw1, gw2 := s.In(w1).Grad().Float64s(), s.In(w2).Grad().Float64s()
		var gx []float64
		if xGrad {
			gx = x.Grad().Float64s()
		}
		w1.ZeroGrad(true)
		w2.ZeroGrad(true)
		// recomputed
		xc := x0.Detach().SetRequiresGrad(xGrad)
		token := s.Zeros(nil, torch.F64, testDevice).SetRequiresGrad(true)
		yc := torch.Checkpoint(xc, token, block)
		assert.Equal(t, y.Float64s(), yc.Float64s())
		yc.Square().Sum().Backward()
		assert.InDeltaSlice(t, gw1, s.In(w1).Grad().Float64s(), 1e-12)
		assert.InDeltaSlice(t, gw2, s.In(w2).Grad().Float64s(), 1e-12)
		if xGrad {
			assert.InDeltaSlice(t, gx, xc.Grad().Float64s(), 1e-12)
		}
		w1.ZeroGrad(true)
		w2.ZeroGrad(true)
		s.Close()
	}
	assert.Equal(t, 0, cgo.RegisteredCheckpoints(), "functions are unregistered when their scope closes")
	store.Close()
	assert.Equal(t, before, torch.LiveTensors())

	// an error inside the recomputed function comes back as an error, not a crash
	s := torch.NewScope()
	defer s.Close()
	x := s.Ones([]int64{2, 3}, torch.F32, testDevice)
	token := s.Zeros(nil, torch.F32, testDevice).SetRequiresGrad(true)
	err := torch.Try(func() {
		torch.Checkpoint(x, token, func(s *torch.Scope, x *torch.Tensor) *torch.Tensor { return x.Matmul(x) })
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot be multiplied")
}

// TestCheckpointSavesMemory: with recompute, the activations inside the block are not
// held between forward and backward.
func TestCheckpointSavesMemory(t *testing.T) {
	if testDevice.IsCUDA() {
		t.Skip("CPU allocator test")
	}
	store := torch.NewStore("w")
	defer store.Close()
	g := torch.NewGenerator(6, torch.CPU)
	defer g.Close()
	w := store.Randn([]int64{256, 256}, torch.F32, torch.CPU, g).SetRequiresGrad(true)
	block := func(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
		for i := 0; i < 8; i++ {
			x = x.Linear(w, nil).Tanh()
		}
		return x
	}
	held := func(ckpt bool) int64 {
		s := torch.NewScope()
		defer s.Close()
		x := s.Randn([]int64{512, 256}, torch.F32, torch.CPU, g)
		token := s.Zeros(nil, torch.F32, torch.CPU).SetRequiresGrad(true)
		c0, _ := torch.MemStats(torch.CPU)
		var y *torch.Tensor
		if ckpt {
			y = torch.Checkpoint(x, token, block)
		} else {
			y = block(s, x)
		}
		loss := y.Sum()
		c1, _ := torch.MemStats(torch.CPU)
		loss.Backward()
		w.ZeroGrad(true)
		return c1 - c0
	}
	plain, recomputed := held(false), held(true)
	t.Logf("bytes held after forward: plain %d, recompute %d", plain, recomputed)
	assert.Less(t, recomputed*4, plain, "recompute holds far fewer activation bytes")
}

// TestGradEnabledInCheckpoint: a checkpointed function sees grad mode off when
// Checkpoint runs it forward and on when backward recomputes it; NoGrad turns it off.
func TestGradEnabledInCheckpoint(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	assert.True(t, torch.GradEnabled())
	torch.NoGrad(func() { assert.False(t, torch.GradEnabled()) })
	var seen []bool
	x := s.Ones([]int64{3}, torch.F32, testDevice).SetRequiresGrad(true)
	token := s.Zeros(nil, torch.F32, testDevice).SetRequiresGrad(true)
	y := torch.Checkpoint(x, token, func(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
		seen = append(seen, torch.GradEnabled())
		return x.Square()
	})
	y.Sum().Backward()
	assert.Equal(t, []bool{false, true}, seen, "forward without grad, recompute with")
	assert.Equal(t, []float64{2, 2, 2}, x.Grad().Float64s())
	assert.True(t, torch.GradEnabled())
}

// TestGradSink: the function receives the gradient summed over every use of the view,
// w gets no .grad, and an in-place update there is visible after backward.
func TestGradSink(t *testing.T) {
	g := torch.NewGenerator(3, torch.CPU)
	defer g.Close()
	s := torch.NewScope()
	defer s.Close()
	x := s.Randn([]int64{4, 3}, torch.F64, testDevice, g)
	w0 := s.Randn([]int64{3, 2}, torch.F64, testDevice, g)
	loss := func(w *torch.Tensor) *torch.Tensor {
		return x.Matmul(w).Tanh().Sum().Add(w.Square().Sum()) // two uses of w
	}
	// plain: the gradient as autograd accumulates it
	wp := w0.Clone().SetRequiresGrad(true)
	loss(wp).Backward()
	want := wp.Grad().Float64s()

	w := w0.Clone().SetRequiresGrad(true)
	calls := 0
	var got []float64
	sink := torch.GradSink(w, func(_ *torch.Scope, gr *torch.Tensor) {
		calls++
		got = gr.Float64s()
		assert.False(t, torch.GradEnabled(), "the function runs without grad")
		w.AddInPlace(gr, -1) // an optimizer step, in place
	})
	loss(sink).Backward()
	assert.Equal(t, 1, calls, "one call with the summed gradient")
	near(t, want, got, 1e-12, "gradient")
	assert.Nil(t, w.Grad(), "no .grad accumulated")
	w0v, wv := w0.Float64s(), w.Float64s()
	for i := range wv {
		assert.InDelta(t, w0v[i]-want[i], wv[i], 1e-12, "updated in place")
	}

	bad := torch.GradSink(w0.Clone().SetRequiresGrad(true), func(*torch.Scope, *torch.Tensor) { panic("boom") })
	err := torch.Try(func() { loss(bad).Backward() })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "boom")
}
