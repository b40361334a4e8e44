package blockllm

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// scriptModel has four eligible tensors a [4], b [3], c [2], d [1] (10 elements) and a
// scripted loss: at step k the loss is L[k] and the gradient of every element of tensor
// i is G[k][i], so tensor i's gradient norm is |G[k][i]|·sqrt(numel_i). The step index
// travels in the batch.
type scriptModel struct {
	*nn.Params
	L []float64
	G [][4]float64
}

func newScriptModel(t *testing.T, L []float64, G [][4]float64) *scriptModel {
	m := &scriptModel{Params: nn.NewParams("script"), L: L, G: G}
	for i, n := range []int64{4, 3, 2, 1} {
		m.Add(string(rune('a'+i)), m.Store.Ones([]int64{n}, torch.F32, torch.CPU), i)
	}
	t.Cleanup(m.Close)
	return m
}

func (m *scriptModel) Device() torch.Device { return torch.CPU }

func (m *scriptModel) Forward(s *torch.Scope, b *nn.Batch, _ bool) (*nn.Output, error) {
	var out *nn.Output
	err := torch.Try(func() {
		k := int(s.In(b.InputIDs).Int64s()[0])
		loss := s.FromFloat32([]float32{0}, 1).Sum()
		for i, p := range m.Parameters() {
			w := s.In(m.W(s, p))
			// zero in value, gradient G[k][i] per element
			loss = loss.Add(w.Sub(w.Detach()).Sum().MulScalar(m.G[k][i]))
		}
		out = &nn.Output{Loss: loss.AddScalar(m.L[k])}
	})
	return out, err
}

// stepData yields batch k = [[k]] for k = 1, 2, ...
type stepData struct{ n int }

func (d *stepData) Next(s *torch.Scope) (*nn.Batch, error) {
	d.n++
	return &nn.Batch{InputIDs: s.FromInt64([]int64{int64(d.n)}, 1, 1)}, nil
}
func (d *stepData) State() (json.RawMessage, error) { return json.Marshal(d.n) }
func (d *stepData) Restore(r json.RawMessage) error { return json.Unmarshal(r, &d.n) }

// TestReferenceSelectionSequence runs the reference preset (the authors' rules) on a
// scripted case and checks every selection against values worked out by hand:
//
//   - patience m = 2, trigger checked every N = 4 steps, strict comparison;
//   - sparsity 0.5 of 10 elements: budget 5, filled under the budget;
//   - exp-freq penalty: score = norm / exp(freq / t), t = steps taken; freq starts at
//     1/4 each, and each selection after the first adds 1 per chosen tensor and
//     renormalises (tensor by tensor, in model order).
//
// Losses: steps 1-4 flat at 3 (at the check after step 4, recent mean 3 = overall mean
// 3: the strict trigger does not fire, >= would), steps 5-8: 3, 3, 4, 4 (after step 8:
// recent 4 > overall 3.25: fire), so the second selection runs at step 9 with t = 8.
// Step 9's gradients a..d: 1, 2, 2, 5, norms 2, 3.464, 2.828, 5; every freq is 1/4, so
// the order is d, b, c, a; under the budget: d (1 element), b (4), then c would make 6:
// block {d, b}. Freqs after it: b += 1 -> (.25, 1.25, .25, .25)/2 = (.125, .625, .125,
// .125); d += 1 -> (.125, .625, .125, 1.125)/2 = (.0625, .3125, .0625, .5625).
// Steps 9-12 flat at 2 (no fire), 13-16: 2, 2, 3, 3 (fire: 3 > 2.25): third selection
// at step 17, t = 16, gradients 3, 4, 4.914, 7: norms 6, 6.928, 6.949, 7; scores
// 6/e^(.0625/16) = 5.9766, 6.928/e^(.3125/16) = 6.7942, 6.949/e^(.0625/16) = 6.9224,
// 7/e^(.5625/16) = 6.7582: order c, b, d, a; under the budget: c (2), then b would make
// 5 = budget: block {c}. (Without the penalty d would rank first and the block be
// {d, c}.) Freqs after it: c += 1 -> (.0625, .3125, 1.0625, .5625)/2.
func TestReferenceSelectionSequence(t *testing.T) {
	n := 20
	L := make([]float64, n+1)
	G := make([][4]float64, n+1)
	for k := 1; k <= n; k++ {
		switch {
		case k <= 4:
			L[k] = 3
		case k <= 6:
			L[k] = 3
		case k <= 8:
			L[k] = 4
		case k <= 14:
			L[k] = 2
		default:
			L[k] = 3
		}
		G[k] = [4]float64{0.1, 0.1, 0.1, 0.1}
	}
	L[17], L[18], L[19], L[20] = 2, 2, 2, 2
	G[9] = [4]float64{1, 2, 2, 5}
	G[17] = [4]float64{3, 4, 4.914, 7}

	m := newScriptModel(t, L, G)
	cfg, err := BlockLLMConfig{Sparsity: 0.5, Patience: 2, Seed: 3}.WithPreset(PresetReference, 4)
	require.NoError(t, err)
	o, err := NewBlockLLM(m, cfg)
	require.NoError(t, err)
	defer o.Close()
	assert.Equal(t, int64(5), o.Budget())
	var sels []Selection
	obs := ObserverFunc(func(e Event) {
		if s, ok := e.(*SelectionEvent); ok {
			sels = append(sels, s.Selection)
		}
	})
	_, err = Train(context.Background(), m, o, &stepData{}, TrainConfig{Steps: n, LR: 1e-9, Observers: []Observer{obs}}, "")
	require.NoError(t, err)
	require.Len(t, sels, 3, "selections: the random first, then at steps 9 and 17 only")

	first := sels[0]
	assert.Equal(t, int64(0), first.Step)
	assert.NotEmpty(t, first.Names)
	assert.Less(t, first.Elements, int64(5), "the random first block stays under the budget")
	assert.True(t, math.IsNaN(first.Norms[0]), "no selection pass for a random block")

	assert.Equal(t, int64(8), sels[1].Step)
	assert.Equal(t, []string{"d", "b"}, sels[1].Names)
	assert.Equal(t, int64(4), sels[1].Elements)
	assert.InDeltaSlice(t, []float64{5 / math.Exp(0.25/8), math.Sqrt(12) / math.Exp(0.25/8)}, sels[1].Scores, 1e-6)

	assert.Equal(t, int64(16), sels[2].Step)
	assert.Equal(t, []string{"c"}, sels[2].Names)
	assert.Equal(t, int64(2), sels[2].Elements)
	assert.InDelta(t, 4.914*math.Sqrt(2)/math.Exp(0.0625/16), sels[2].Scores[0], 1e-5)
	assert.InDelta(t, 6.9224, sels[2].Scores[0], 1e-4)
	assert.InDeltaSlice(t, []float64{0.03125, 0.15625, 0.53125, 0.28125}, o.freq, 1e-12)
	assert.Equal(t, []string{"c"}, names(o.Selected()))

	// The same script with this project's defaults (>=, count penalty, over the budget)
	// fires at the flat check after step 4 and chooses differently.
	m2 := newScriptModel(t, L, G)
	o2, err := NewBlockLLM(m2, BlockLLMConfig{Sparsity: 0.5, Patience: 2, CheckEvery: 4})
	require.NoError(t, err)
	defer o2.Close()
	sels = nil
	_, err = Train(context.Background(), m2, o2, &stepData{}, TrainConfig{Steps: n, LR: 1e-9, Observers: []Observer{obs}}, "")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(sels), 2)
	assert.Equal(t, int64(4), sels[1].Step, ">= fires on the flat history")
}

// TestReselectsAndTrains: on the toy model, BlockLLM with a short patience reselects at
// least three times in 80 steps and lowers the loss, with both presets.
func TestReselectsAndTrains(t *testing.T) {
	for _, preset := range Presets {
		m := newToy(t, toyOpts{}, 5)
		cfg, err := BlockLLMConfig{Sparsity: 0.9, Patience: 1, Seed: 1}.WithPreset(preset, 2)
		require.NoError(t, err)
		cfg.Eligible = []string{".*"}
		o, err := NewBlockLLM(m, cfg)
		require.NoError(t, err)
		res, err := Train(context.Background(), m, o, newFixedData(64, 4, 8, 40, 9), TrainConfig{Steps: 80, LR: 3e-2}, "")
		require.NoError(t, err)
		assert.GreaterOrEqual(t, res.Selections, 3, preset)
		t.Logf("%s: %d selections, loss %.3f -> %.3f", preset, res.Selections, mean(res.Losses[:5]), mean(res.Losses[75:]))
		assert.Less(t, mean(res.Losses[75:]), mean(res.Losses[:5]), preset)
		o.Close()
	}
}

// TestBAdamRandomRounds: BAdam's random order visits every layer once per round, in a
// fresh order each round; LISA trains γ sampled layers plus the embeddings, final norm
// and head.
func TestBAdamRandomRounds(t *testing.T) {
	m := newToy(t, toyOpts{}, 3)
	d := newFixedData(64, 2, 8, 1, 1)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)
	ba, err := NewBAdam(m, BAdamConfig{SwitchEvery: 1, Order: Random, Seed: 4})
	require.NoError(t, err)
	defer ba.Close()
	var rounds [][]int
	for r := 0; r < 3; r++ {
		var round []int
		for i := 0; i < 8; i++ {
			manualStep(t, m, ba, b, 1e-3)
			require.Len(t, ba.ActiveLayers(), 1)
			round = append(round, ba.ActiveLayers()[0])
		}
		assert.ElementsMatch(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, round, "round %d visits every layer once", r)
		rounds = append(rounds, round)
	}
	assert.NotEqual(t, rounds[0], rounds[1])
	assert.NotEqual(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, rounds[0], "not ascending")

	li, err := NewLISA(m, LISAConfig{SwitchEvery: 1, Layers: 2, Seed: 1})
	require.NoError(t, err)
	defer li.Close()
	for i := 0; i < 4; i++ {
		manualStep(t, m, li, b, 1e-3)
		assert.Len(t, li.ActiveLayers(), 2)
		tr := names(li.Trainable())
		for _, n := range []string{"embed.weight", "final.bias", "head.weight"} {
			assert.Contains(t, tr, n)
		}
		assert.Len(t, tr, 2*3+3)
	}
}
