package blockllm

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// adam8 is the 8-bit configuration of the toy tests: every tensor quantised (the toy's
// tensors are all below bitsandbytes' 4096-element minimum).
var adam8 = AdamConfig{WeightDecay: 0.01, EightBit: true, EightBitMinSize: 1}

// newOpt8 builds an 8-bit optimizer by method name for the toy model.
func newOpt8(t testing.TB, method string, m nn.Model) Optimizer {
	var o Optimizer
	var err error
	switch method {
	case "adamw":
		o, err = NewAdamW(m, adam8)
	case "blockllm":
		o, err = NewBlockLLM(m, BlockLLMConfig{Adam: adam8, Sparsity: 0.9, Patience: 2})
	case "blockllm-mask":
		o, err = NewBlockLLM(m, BlockLLMConfig{Adam: adam8, Sparsity: 0.8, Patience: 3, MaskFraction: 0.3, KeepMoments: true})
	case "blockllm-bf16-master":
		c := adam8
		c.MasterF32 = true
		o, err = NewBlockLLM(m, BlockLLMConfig{Adam: c, Sparsity: 0.8, Patience: 2, MaskFraction: 0.5})
	case "badam":
		o, err = NewBAdam(m, BAdamConfig{Adam: adam8, SwitchEvery: 3, Order: Random, Seed: 4})
	case "lisa":
		o, err = NewLISA(m, LISAConfig{Adam: adam8, SwitchEvery: 3, Layers: 2, Seed: 4})
	default:
		err = fmt.Errorf("unknown method %q", method)
	}
	require.NoError(t, err)
	return o
}

// bytes8 is the storage of 8-bit moments for a state of n values: codes and one
// float32 absmax per 256 values, for each of the two moments.
func bytes8(n int64) int64 { return 2 * (n + 4*((n+255)/256)) }

// mapBytes is the two 256-value float32 maps.
const mapBytes = 2 * 256 * 4

// TestAdam8bitStateBytes: the state is counted exactly. Toy model (every tensor
// quantised), worked out by hand: embed and head 64x16 = 1024 values, 4 blocks each:
// 2 x (1024 + 4 x 4) = 2080; per layer w1, w2 16x16 = 256 values, 1 block:
// 2 x (256 + 4) = 520, b1 16 values: 2 x (16 + 4) = 40; final bias 40. Total
// 2 x 2080 + 8 x (520 + 520 + 40) + 40 + 2048 (maps) = 14888 bytes, against
// 8 x 6288 = 50304 for float32 moments (small tensors pay a whole absmax per block).
// The llama-tiny fixture with bitsandbytes' minimum size 4096: embeddings and LM head
// 2 x (65536 + 4 x 256) = 133120 each; per layer q and o 2 x (4096 + 64) = 8320,
// gate, up, down 2 x (10240 + 160) = 20800, k and v (2048 values, unquantised)
// 8 x 2048 = 16384, two norms 8 x 64 = 512; final norm 512; maps 2048:
// 2 x 133120 + 2 x (2 x 8320 + 3 x 20800 + 2 x 16384 + 2 x 512) + 512 + 2048 = 494464,
// 0.284 of float32's 1739264; with every tensor quantised the ratio is near 1/4.
func TestAdam8bitStateBytes(t *testing.T) {
	d := newFixedData(64, 4, 8, 4, 3)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)

	m := newToy(t, toyOpts{}, 5)
	o, err := NewAdamW(m, adam8)
	require.NoError(t, err)
	defer o.Close()
	assert.Zero(t, o.StateBytes(), "no state before the first step")
	manualStep(t, m, o, b, 1e-3)
	assert.Equal(t, int64(14888), o.StateBytes())
	var want int64 = mapBytes
	for _, p := range m.Parameters() {
		want += bytes8(p.Numel())
		mo := o.adam.st[p]
		assert.Equal(t, torch.U8, mo.m.DType(), p.Name)
		assert.Equal(t, []int64{(p.Numel() + 255) / 256}, mo.am.Shape(), p.Name)
	}
	assert.Equal(t, want, o.StateBytes())
	assert.Equal(t, 2*4*m.NumParams(), int64(50304))

	// BlockLLM: the block's 8-bit moments; masked: codes, maxima and the int64 index
	for _, frac := range []float64{0, 0.25} {
		mb := newToy(t, toyOpts{}, 5)
		ob, err := NewBlockLLM(mb, BlockLLMConfig{Sparsity: 0.9, MaskFraction: frac, Adam: adam8})
		require.NoError(t, err)
		manualStep(t, mb, ob, b, 1e-3)
		want := int64(mapBytes)
		for _, p := range ob.Selected() {
			if frac == 0 {
				want += bytes8(p.Numel())
			} else {
				k := int64(math.Ceil(frac * float64(p.Numel())))
				want += bytes8(k) + 8*k
			}
		}
		require.NotEmpty(t, ob.Selected())
		assert.Equal(t, want, ob.StateBytes(), "blockllm mask %g", frac)
		ob.Close()
	}

	// llama-tiny, bitsandbytes' default minimum size, against float32 moments
	cfg, err := config.LoadLlama(filepath.Join(fixtureRoot(), "llama-tiny"))
	require.NoError(t, err)
	stateOf := func(c AdamConfig) (int64, Optimizer) {
		lm, err := llama.New(cfg, llama.Options{Device: testDevice}, 7)
		require.NoError(t, err)
		t.Cleanup(lm.Close)
		lo, err := NewAdamW(lm, c)
		require.NoError(t, err)
		t.Cleanup(lo.Close)
		manualStep(t, lm, lo, randomBatch(t, s, cfg.VocabSize), 1e-3)
		return lo.StateBytes(), lo
	}
	f32, _ := stateOf(AdamConfig{})
	q8, lo := stateOf(AdamConfig{EightBit: true})
	all8, _ := stateOf(AdamConfig{EightBit: true, EightBitMinSize: 1})
	assert.Equal(t, int64(1739264), f32)
	assert.Equal(t, int64(494464), q8)
	for p, mo := range lo.(*AdamW).adam.st {
		assert.Equal(t, p.Numel() >= 4096, mo.am.Valid(), "%s (%d values) quantised iff >= 4096 values", p.Name, p.Numel())
	}
	t.Logf("llama-tiny AdamW state: float32 %d bytes, 8-bit %d (%.3f), 8-bit for every tensor %d (%.3f)",
		f32, q8, float64(q8)/float64(f32), all8, float64(all8)/float64(f32))
	assert.InDelta(t, 0.25, float64(all8)/float64(f32), 0.01)
}

// TestAdam8bitTracksFloat32: llama-tiny (random init) on the fortunes, 40 AdamW steps
// and 40 BlockLLM steps (batch 4 x 32 tokens), with 8-bit and with float32 moments. The tolerance: two
// float32 runs from different initialisations end up this far apart in loss; the 8-bit
// run must stay closer to its float32 twin than that at every step after warm-up
// (bounded below by 0.05 nats), and end within 0.05 nats (1%) of it. The 8-bit
// moments carry ~1% relative error per step (TestQuantizeBlockwise), which changes the
// step sizes by about as much and averages out over steps.
func TestAdam8bitTracksFloat32(t *testing.T) {
	const steps = 40
	cfg, err := config.LoadLlama(filepath.Join(fixtureRoot(), "llama-tiny"))
	require.NoError(t, err)
	run := func(method string, eightBit bool, seed uint64) ([]float64, int64) {
		m, err := llama.New(cfg, llama.Options{Device: testDevice}, seed)
		require.NoError(t, err)
		defer m.Close()
		adam := AdamConfig{WeightDecay: 0.01, EightBit: eightBit}
		var o Optimizer
		if method == "adamw" {
			o, err = NewAdamW(m, adam)
		} else {
			o, err = NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.5, Patience: 10, Adam: adam})
		}
		require.NoError(t, err)
		defer o.Close()
		res, err := Train(context.Background(), m, o, fortunesData(t, 4, 32),
			TrainConfig{Steps: steps, LR: 1e-2, Schedule: Schedule{Kind: Cosine, Warmup: 6, MinRatio: 0.1}, MaxGradNorm: 1}, "")
		require.NoError(t, err)
		return res.Losses, res.OptimizerBytes
	}
	for _, method := range []string{"adamw", "blockllm"} {
		f32, b32 := run(method, false, 7)
		q8, b8 := run(method, true, 7)
		other, _ := run(method, false, 8)
		assert.Less(t, float64(b8), 0.35*float64(b32), "%s: 8-bit state (tensors under 4096 values stay float32) (%d bytes, float32 %d)", method, b8, b32)
		var worst, seedGap float64
		for i := 10; i < steps; i++ {
			worst = math.Max(worst, math.Abs(q8[i]-f32[i]))
			seedGap = math.Max(seedGap, math.Abs(other[i]-f32[i]))
		}
		end8, end32, endOther := mean(q8[steps-5:]), mean(f32[steps-5:]), mean(other[steps-5:])
		t.Logf("%s: loss %.3f -> %.3f float32, -> %.3f 8-bit (mean of last 5); max |8-bit - float32| after step 10: %.3f; float32 from another init: max gap %.3f, ends %.3f; state %d vs %d bytes",
			method, mean(f32[:5]), end32, end8, worst, seedGap, endOther, b8, b32)
		assert.Less(t, end32, mean(f32[:5])-0.5, "%s: the float32 run learns", method)
		assert.Less(t, worst, math.Max(seedGap, 0.05), "%s: 8-bit stays closer to float32 than another init", method)
		assert.InDelta(t, end32, end8, 0.05, "%s: final loss", method)
	}
}

// TestAdam8bitResumeBitForBit: as TestResumeBitForBit, with 8-bit moments for every
// method: the checkpoint holds the uint8 codes, float32 maxima and maps, and the
// resumed run ends with the same losses and weights, bit for bit.
func TestAdam8bitResumeBitForBit(t *testing.T) {
	const total, cut = 11, 5
	for _, method := range []string{"adamw", "blockllm", "blockllm-mask", "blockllm-bf16-master", "badam", "lisa"} {
		t.Run(method, func(t *testing.T) {
			ctx := context.Background()
			opts := toyOpts{}
			if strings.Contains(method, "bf16") {
				opts.dt = torch.BF16
			}
			ref := newToy(t, opts, 21)
			ro := newOpt8(t, method, ref)
			defer ro.Close()
			rres, err := Train(ctx, ref, ro, newFixedData(64, 2, 8, 7, 9), trainCfg(method, total, ""), "")
			require.NoError(t, err)

			dir := t.TempDir()
			a := newToy(t, opts, 21)
			ao := newOpt8(t, method, a)
			ta, err := NewTrainer(a, ao, newFixedData(64, 2, 8, 7, 9), trainCfg(method, total, dir))
			require.NoError(t, err)
			for i := 0; i < cut; i++ {
				_, err := ta.Step()
				require.NoError(t, err)
			}
			ckpt := filepath.Join(dir, "mid")
			require.NoError(t, ta.SaveCheckpoint(ckpt))
			st, err := ao.SaveState()
			require.NoError(t, err)
			var codes, maxima int
			for k, v := range st.Tensors {
				switch {
				case strings.HasSuffix(k, ".absmax"):
					maxima++
					assert.Equal(t, torch.F32, v.DType(), k)
				case strings.HasSuffix(k, ".exp_avg") || strings.HasSuffix(k, ".exp_avg_sq"):
					codes++
					assert.Equal(t, torch.U8, v.DType(), k)
				}
			}
			assert.Positive(t, codes, "8-bit codes saved")
			assert.Equal(t, codes, maxima, "one maxima tensor per codes tensor")
			assert.Contains(t, st.Tensors, mapSignedKey)
			ao.Close()

			b := newToy(t, opts, 99)
			bo := newOpt8(t, method, b)
			defer bo.Close()
			res, err := Train(ctx, b, bo, newFixedData(64, 2, 8, 7, 9), trainCfg(method, total, ""), ckpt)
			require.NoError(t, err)
			if testDevice == torch.CPU {
				assert.Equal(t, rres.Losses, res.Losses, "loss trajectory")
				want := paramBytes(ref)
				for name, got := range paramBytes(b) {
					assert.True(t, bytes.Equal(want[name], got), "%s differs after resume", name)
				}
			} else {
				assert.InDeltaSlice(t, rres.Losses, res.Losses, 1e-4, "loss trajectory")
			}
			assert.Equal(t, ro.StateBytes(), bo.StateBytes())
		})
	}
}

// TestAdam8bitStateMismatch: a checkpoint of 8-bit moments does not load into an
// optimizer with float moments, nor the reverse, and fused AdamW is refused with 8-bit.
func TestAdam8bitStateMismatch(t *testing.T) {
	d := newFixedData(64, 4, 8, 4, 3)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)
	m := newToy(t, toyOpts{}, 5)
	o8, err := NewAdamW(m, adam8)
	require.NoError(t, err)
	defer o8.Close()
	manualStep(t, m, o8, b, 1e-3)
	st8, err := o8.SaveState()
	require.NoError(t, err)

	m2 := newToy(t, toyOpts{}, 5)
	o32, err := NewAdamW(m2, AdamConfig{})
	require.NoError(t, err)
	defer o32.Close()
	manualStep(t, m2, o32, b, 1e-3)
	st32, err := o32.SaveState()
	require.NoError(t, err)

	err = o32.LoadState(st8)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--adam-8bit")
	err = o8.LoadState(st32)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unquantised moments but 8-bit moments are on")
	// a failed load leaves the state as it was
	assert.Equal(t, int64(14888), o8.StateBytes())

	delete(st8.Tensors, "layers.0.w1.exp_avg.absmax")
	o8b, err := NewAdamW(newToy(t, toyOpts{}, 5), adam8)
	require.NoError(t, err)
	defer o8b.Close()
	err = o8b.LoadState(st8)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"layers.0.w1.exp_avg.absmax"`)

	_, err = NewAdamW(m, AdamConfig{EightBit: true, Fused: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fused")
	_, err = NewBlockLLM(m, BlockLLMConfig{Adam: AdamConfig{EightBit: true, EightBitMinSize: -1}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "negative 8-bit minimum size")
}

// TestAdam8bitStepInBackward: with 8-bit moments, updating each tensor in backward gives
// the weights of the usual step (to the float rounding TestStepInBackward allows) and
// holds no gradient; on a 12-layer toy the step's peak above resident memory is lower.
func TestAdam8bitStepInBackward(t *testing.T) {
	train := func(method string, inBackward bool) (map[string][]float64, int64) {
		m := loadTinyLlama(t)
		var opt Optimizer
		var err error
		adam := AdamConfig{EightBit: true}
		if method == "adamw" {
			opt, err = NewAdamW(m, adam)
		} else {
			opt, err = NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.5, Patience: 2, Adam: adam})
		}
		require.NoError(t, err)
		defer opt.Close()
		data, err := NewRandomTokens(m.Config().VocabSize, 2, 16, 1, testDevice)
		require.NoError(t, err)
		tr, err := NewTrainer(m, opt, data, TrainConfig{Steps: 4, LR: 1e-2, StepInBackward: inBackward})
		require.NoError(t, err)
		var grads int64
		for i := 0; i < 4; i++ {
			st, err := tr.Step()
			require.NoError(t, err)
			grads = max(grads, st.Memory.Gradients)
		}
		w := map[string][]float64{}
		sc := torch.NewScope()
		defer sc.Close()
		for _, p := range m.Parameters() {
			w[p.Name] = p.T.Float64s()
			assert.Nil(t, p.T.GradIn(sc), "%s: no gradient left", p.Name)
		}
		quantised := 0
		for _, mo := range stateOf(opt).st {
			if mo.am.Valid() {
				quantised++
			}
		}
		assert.Positive(t, quantised, "8-bit moments in use")
		return w, grads
	}
	for _, method := range []string{"adamw", "blockllm"} {
		want, _ := train(method, false)
		got, grads := train(method, true)
		for name, w := range want {
			scale := 0.0
			for _, v := range w {
				scale = math.Max(scale, math.Abs(v))
			}
			require.InDeltaSlice(t, w, got[name], 1e-5*scale, "%s: %s", method, name)
		}
		assert.Zero(t, grads, "%s: no gradient held after backward", method)
	}

	if testDevice != torch.CPU {
		return
	}
	peak := func(inBackward bool) int64 {
		m := newToy(t, toyOpts{V: 64, D: 64, L: 12}, 3)
		o, err := NewAdamW(m, adam8)
		require.NoError(t, err)
		defer o.Close()
		return secondStepPeak(t, m, o, newFixedData(64, 2, 8, 2, 1), TrainConfig{Steps: 3, LR: 1e-3, StepInBackward: inBackward})
	}
	after, in := peak(false), peak(true)
	t.Logf("8-bit step peak above resident: update after backward %d bytes, in backward %d", after, in)
	assert.Less(t, float64(in), 0.8*float64(after))
}

// stateOf returns an optimizer's Adam state.
func stateOf(o Optimizer) *adamState {
	switch x := o.(type) {
	case *AdamW:
		return x.adam
	case *BlockLLM:
		return x.adam
	}
	panic(fmt.Sprintf("no Adam state in %T", o))
}

// TestEightBitRefusedWhereNotWired: GaLore and LoRA keep their own state and do not take
// 8-bit moments yet; they say so instead of silently keeping float moments.
// TestGaLore8bit: GaLore's projected moments and the other tensors' moments take 8-bit
// moments: each projected moment is n uint8 codes plus a float32 maximum per block of 256,
// the projections stay as they are, and a short run ends within 0.05 nats of the float32
// run. A checkpoint of 8-bit projected moments is refused by a GaLore with float moments.
func TestGaLore8bit(t *testing.T) {
	const steps = 30
	run := func(eightBit bool) ([]float64, *GaLore, nn.Model) {
		m := loadLlama(t, torch.F32)
		o, err := NewGaLore(m, GaLoreConfig{Rank: 4, UpdateProjGap: 10, Scale: 0.5,
			Adam: AdamConfig{EightBit: eightBit, EightBitMinSize: 1}}) // llama-tiny's projected moments are small
		require.NoError(t, err)
		t.Cleanup(o.Close)
		res, err := Train(context.Background(), m, o, fortunesData(t, 4, 32), TrainConfig{Steps: steps, LR: 1e-2,
			Schedule: Schedule{Kind: Cosine, Warmup: 3, MinRatio: 0.1}}, "")
		require.NoError(t, err)
		return res.Losses, o, m
	}
	f32, of, _ := run(false)
	q8, oq, _ := run(true)
	var want, wantF int64
	for _, p := range oq.order {
		x := oq.proj[p]
		require.True(t, x.quantized(), p.Name)
		n := x.m.Numel()
		want += x.p.NBytes() + 2*(n+4*((n+255)/256))
		wantF += x.p.NBytes() + 2*4*n
	}
	assert.Equal(t, want+oq.adam.bytes(), oq.StateBytes(), "8-bit projected moments' bytes")
	assert.Equal(t, wantF+of.adam.bytes(), of.StateBytes())
	assert.Equal(t, of.ProjectionBytes(), oq.ProjectionBytes())
	assert.Less(t, float64(want-oq.ProjectionBytes()), 0.3*float64(wantF-of.ProjectionBytes()), "8-bit against float32 projected moments")
	end32, end8 := mean(f32[steps-5:]), mean(q8[steps-5:])
	t.Logf("galore: loss %.3f -> %.3f float32, -> %.3f 8-bit; state %d vs %d bytes", mean(f32[:5]), end32, end8, oq.StateBytes(), of.StateBytes())
	assert.Less(t, end32, mean(f32[:5])-0.3, "the float32 run learns")
	assert.InDelta(t, end32, end8, 0.05, "final loss with 8-bit moments")

	st, err := oq.SaveState()
	require.NoError(t, err)
	require.ErrorContains(t, of.LoadState(st), "8-bit moments are off")
	st32, err := of.SaveState()
	require.NoError(t, err)
	require.ErrorContains(t, oq.LoadState(st32), "unquantised moments but 8-bit moments are on")
}

// TestLoRA8bit: LoRA's adapters take 8-bit moments: the state is the adapters plus
// 2 x (n + 4 x blocks of 256) bytes per adapter tensor and the two maps (about a quarter
// of float32 moments), and a short run ends within 0.05 nats of the float32 run.
func TestLoRA8bit(t *testing.T) {
	const steps = 30
	run := func(eightBit bool) ([]float64, *LoRA) {
		m := loadLlama(t, torch.F32)
		o, err := NewLoRA(m, LoRAConfig{Rank: 8, Alpha: 16, Targets: []string{"q_proj", "v_proj", "up_proj"},
			Adam: AdamConfig{EightBit: eightBit, EightBitMinSize: 1}}) // llama-tiny's adapters are under 4096 values
		require.NoError(t, err)
		t.Cleanup(o.Close)
		res, err := Train(context.Background(), m, o, fortunesData(t, 4, 32), TrainConfig{Steps: steps, LR: 3e-2,
			Schedule: Schedule{Kind: Cosine, Warmup: 3, MinRatio: 0.1}}, "")
		require.NoError(t, err)
		return res.Losses, o
	}
	f32, of := run(false)
	q8, oq := run(true)
	var want int64
	for _, p := range oq.trainable {
		n := p.T.Numel()
		want += 2 * (n + 4*((n+255)/256))
	}
	want += 2 * 256 * 4 // the two maps
	assert.Equal(t, want, oq.adam.bytes(), "8-bit moments' bytes")
	assert.Equal(t, of.AdapterBytes(), oq.AdapterBytes())
	assert.Less(t, float64(oq.adam.bytes()), 0.3*float64(of.adam.bytes()), "8-bit moments against float32 ones")
	end32, end8 := mean(f32[steps-5:]), mean(q8[steps-5:])
	t.Logf("lora: loss %.3f -> %.3f float32, -> %.3f 8-bit; moments %d vs %d bytes", mean(f32[:5]), end32, end8, oq.adam.bytes(), of.adam.bytes())
	assert.Less(t, end32, mean(f32[:5])-0.3, "the float32 run learns")
	assert.InDelta(t, end32, end8, 0.05, "final loss with 8-bit moments")
}
