package blockllm

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// TestStepInBackward: updating each tensor in backward gives the same weights, bit for
// bit, as the usual step after backward (AdamW, BlockLLM and GaLore, plain, with recomputed
// layers and MLPs, with the fused loss) and keeps no gradient.
func TestStepInBackward(t *testing.T) {
	type run struct {
		weights map[string][]float64
		grads   int64
		changed int
	}
	train := func(method string, o llama.Options, inBackward bool) run {
		m := loadTinyLlama(t)
		m.Opts.Recompute, m.Opts.RecomputeMLP, m.Opts.LossChunk = o.Recompute, o.RecomputeMLP, o.LossChunk
		var opt Optimizer
		var err error
		switch method {
		case "adamw":
			opt, err = NewAdamW(m, AdamConfig{})
		case "galore":
			opt, err = NewGaLore(m, GaLoreConfig{Rank: 4, UpdateProjGap: 2})
		default:
			opt, err = NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.5, Patience: 2})
		}
		require.NoError(t, err)
		defer opt.Close()
		data, err := NewRandomTokens(m.Config().VocabSize, 2, 16, 1, testDevice)
		require.NoError(t, err)
		tr, err := NewTrainer(m, opt, data, TrainConfig{Steps: 6, LR: 1e-2, StepInBackward: inBackward})
		require.NoError(t, err)
		r := run{weights: map[string][]float64{}}
		initial := map[string][]float64{}
		for _, p := range m.Parameters() {
			initial[p.Name] = p.T.Float64s()
		}
		for i := 0; i < 6; i++ {
			st, err := tr.Step()
			require.NoError(t, err)
			r.grads = max(r.grads, st.Memory.Gradients)
		}
		sc := torch.NewScope()
		defer sc.Close()
		for _, p := range m.Parameters() {
			r.weights[p.Name] = p.T.Float64s()
			assert.Nil(t, p.T.GradIn(sc), "%s: no gradient left", p.Name)
			if !assert.ObjectsAreEqual(initial[p.Name], r.weights[p.Name]) {
				r.changed++
			}
		}
		require.Positive(t, r.changed, "%s %+v: training changed the weights", method, o)
		return r
	}
	for _, method := range []string{"adamw", "blockllm", "galore"} {
		for _, o := range []llama.Options{{}, {Recompute: true}, {RecomputeMLP: true, LossChunk: 5}} {
			want := train(method, o, false)
			got := train(method, o, true)
			for name, w := range want.weights {
				require.Equal(t, w, got.weights[name], "%s %+v: %s", method, o, name)
			}
			assert.Zero(t, got.grads, "%s: no gradient held after backward", method)
		}
	}
}

// TestStepInBackwardMemory: AdamW over a 12-layer model: updating in backward never
// holds every gradient at once, so the step's peak above what stays resident is lower.
func TestStepInBackwardMemory(t *testing.T) {
	if testDevice != torch.CPU {
		t.Skip("peak statistics compared on the CPU allocator")
	}
	peak := func(inBackward bool) int64 {
		m := newToy(t, toyOpts{V: 64, D: 64, L: 12}, 3)
		o, err := NewAdamW(m, AdamConfig{Fused: true})
		require.NoError(t, err)
		defer o.Close()
		return secondStepPeak(t, m, o, newFixedData(64, 2, 8, 2, 1), TrainConfig{Steps: 3, LR: 1e-3, StepInBackward: inBackward})
	}
	after, in := peak(false), peak(true)
	t.Logf("step peak above resident: update after backward %d bytes, in backward %d", after, in)
	assert.Less(t, float64(in), 0.8*float64(after))
}

func TestStepInBackwardErrors(t *testing.T) {
	m := loadTinyLlama(t)
	data, err := NewRandomTokens(m.Config().VocabSize, 2, 16, 1, testDevice)
	require.NoError(t, err)
	a, err := NewAdamW(m, AdamConfig{})
	require.NoError(t, err)
	defer a.Close()
	_, err = NewTrainer(m, a, data, TrainConfig{Steps: 2, LR: 1e-3, StepInBackward: true, MaxGradNorm: 1})
	assert.ErrorContains(t, err, "no clipping")
	_, err = NewTrainer(m, a, data, TrainConfig{Steps: 2, LR: 1e-3, StepInBackward: true, GradAccum: 2})
	assert.ErrorContains(t, err, "no gradient accumulation")
	b, err := NewBAdam(m, BAdamConfig{})
	require.NoError(t, err)
	defer b.Close()
	_, err = NewTrainer(m, b, data, TrainConfig{Steps: 2, LR: 1e-3, StepInBackward: true})
	assert.ErrorContains(t, err, "cannot update in backward")

	// a non-finite loss is caught before backward: nothing is updated
	tr, err := NewTrainer(m, a, data, TrainConfig{Steps: 2, LR: 1e-3, StepInBackward: true})
	require.NoError(t, err)
	s := torch.NewScope()
	defer s.Close()
	norm := m.Parameters()[len(m.Parameters())-2]
	torch.NoGrad(func() { s.In(norm.T).Fill(math.NaN()) })
	before := map[string][]float64{}
	for _, p := range m.Parameters() {
		before[p.Name] = p.T.Float64s()
	}
	_, err = tr.Step()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNonFinite))
	for _, p := range m.Parameters() {
		if p != norm {
			assert.Equal(t, before[p.Name], p.T.Float64s(), p.Name)
		}
	}
}
