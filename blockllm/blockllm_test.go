package blockllm

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// manualStep runs Prepare, sets requires_grad, forward/backward on b, and returns the
// parameters that hold a gradient before Step.
func manualStep(t *testing.T, m nn.Model, o Optimizer, b *nn.Batch, lr float64) []*nn.Param {
	t.Helper()
	changed, err := o.Prepare(b)
	require.NoError(t, err)
	if changed {
		setGrads(m.Parameters(), o.Trainable())
	}
	require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
		out, err := m.Forward(s, b, true)
		if err != nil {
			return err
		}
		out.Loss.Backward()
		return nil
	}))
	withGrad, err := GradParams(m.Parameters())
	require.NoError(t, err)
	require.NoError(t, o.Step(lr))
	return withGrad
}

func names(ps []*nn.Param) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestTrigger(t *testing.T) {
	// the pure rule: len > m and mean(last m) >= mean(all)
	assert.False(t, triggerFires([]float64{3, 3, 3}, 3, false), "exactly m losses: not more than m")
	assert.True(t, triggerFires([]float64{3, 3, 3, 3}, 3, false), "flat: recent mean equals overall mean")
	assert.False(t, triggerFires([]float64{5, 4, 3, 2}, 3, false), "improving")
	assert.True(t, triggerFires([]float64{1, 2, 3, 4}, 3, false), "worsening")
	assert.False(t, triggerFires(nil, 1, false))
	assert.True(t, triggerFires([]float64{2, 2}, 1, false), "m = 1, plateau")
	assert.False(t, triggerFires([]float64{2, 1.999}, 1, false))
	assert.False(t, triggerFires([]float64{3, 3, 3, 3}, 3, true), "strict: a flat history does not fire")
	assert.True(t, triggerFires([]float64{1, 2, 3, 4}, 3, true), "strict: worsening fires")

	m := newToy(t, toyOpts{}, 1)
	o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9, Patience: 3, CheckEvery: 2})
	require.NoError(t, err)
	defer o.Close()
	assert.True(t, o.Due(), "the first block is chosen by a selection pass")
	o.choose(make([]float64, len(o.eligible)), 0)
	assert.False(t, o.Due())
	// decreasing losses never fire
	for _, l := range []float64{10, 9, 8, 7, 6, 5, 4, 3} {
		o.ObserveLoss(l)
		assert.False(t, o.Due(), "loss %v", l)
	}
	o.choose(make([]float64, len(o.eligible)), 0) // resets the history
	// flat losses: after 4 (> m = 3) losses the trigger would fire, but checks happen
	// only every 2 observations: at 2 (too few) and at 4 (fires)
	o.ObserveLoss(1)
	o.ObserveLoss(1)
	assert.False(t, o.Due(), "2 losses <= patience")
	o.ObserveLoss(1)
	assert.False(t, o.Due(), "3 losses: not a check step")
	o.ObserveLoss(1)
	assert.True(t, o.Due(), "4 flat losses at a check step")

	// CheckEvery 1: fires at exactly m+1 plateau losses, not at m
	o2, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9, Patience: 2})
	require.NoError(t, err)
	defer o2.Close()
	o2.choose(make([]float64, len(o2.eligible)), 0)
	o2.ObserveLoss(4)
	o2.ObserveLoss(4)
	assert.False(t, o2.Due())
	o2.ObserveLoss(4.5)
	assert.True(t, o2.Due(), "mean(4, 4.5) >= mean(4, 4, 4.5)")
}

func TestSelectionBudgetVisitsPenalty(t *testing.T) {
	m := newToy(t, toyOpts{}, 1)
	o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9})
	require.NoError(t, err)
	defer o.Close()
	// eligible: all but the embedding and the LM head
	assert.Len(t, o.Eligible(), 3*8+1)
	for _, p := range o.Eligible() {
		assert.False(t, p.Embed, p.Name)
	}
	eligN := numel(o.Eligible())
	assert.Equal(t, int64(math.Ceil(0.1*float64(eligN))), o.Budget())

	// scripted norms: w1 of layer 3 largest, then w2 of layer 5, then everything tiny
	norms := make([]float64, len(o.eligible))
	for i := range norms {
		norms[i] = 0.01 * float64(i+1) / float64(len(norms))
	}
	idx := func(name string) int { return o.slot[m.Get(name)] }
	norms[idx("layers.3.w1")] = 10
	norms[idx("layers.5.w2")] = 6
	o.choose(norms, 0)
	sel := o.LastSelection()
	// 16x16 tensors (256 elements) against a budget of ceil(0.1 * 4240) = 424: two
	// tensors fill it
	assert.Equal(t, []string{"layers.3.w1", "layers.5.w2"}, sel.Names)
	assert.Equal(t, int64(512), sel.Elements)
	assert.Equal(t, 1, o.Visits()["layers.3.w1"])
	assert.Equal(t, 0, o.Visits()["layers.0.w1"])

	// second selection with the same norms: the penalty halves both chosen scores
	// (10/2 = 5, 6/2 = 3) and a fresh tensor with norm 4 now beats w2 of layer 5
	norms[idx("layers.7.w1")] = 4
	o.due = true
	o.choose(norms, 0)
	assert.Equal(t, []string{"layers.3.w1", "layers.7.w1"}, o.LastSelection().Names)
	assert.Equal(t, 2, o.Visits()["layers.3.w1"])
	assert.Equal(t, 1, o.Visits()["layers.5.w2"])
	assert.Equal(t, 1, o.Visits()["layers.7.w1"])
	assert.InDeltaSlice(t, []float64{10.0 / 2, 4}, o.LastSelection().Scores, 1e-12)
	assert.Equal(t, 1, o.LastSelection().Entered)
	assert.Equal(t, 1, o.LastSelection().Left)

	// without the penalty the same norms choose by norm alone
	o3, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9, Penalty: PenaltyNone})
	require.NoError(t, err)
	defer o3.Close()
	o3.choose(norms, 0)
	o3.choose(norms, 0)
	assert.Equal(t, []string{"layers.3.w1", "layers.5.w2"}, o3.LastSelection().Names)
	assert.Equal(t, 2, o3.Visits()["layers.5.w2"])

	// per-element score: a bias (16 elements) with norm 1 beats a 256-element matrix with
	// norm 3 (1/4 > 3/16)
	o4, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9, Score: ScorePerElement})
	require.NoError(t, err)
	defer o4.Close()
	n4 := make([]float64, len(o4.eligible))
	n4[idx("layers.2.b1")] = 1
	n4[idx("layers.2.w1")] = 3
	o4.choose(n4, 0)
	assert.Equal(t, "layers.2.b1", o4.LastSelection().Names[0])
	assert.Equal(t, "layers.2.w1", o4.LastSelection().Names[1])
}

func TestEligiblePatternsAndHeads(t *testing.T) {
	m := newToy(t, toyOpts{taskHead: true}, 1)
	o, err := NewBlockLLM(m, BlockLLMConfig{Eligible: []string{`^layers\.[0-3]\.`}, Exclude: []string{`\.b1$`}})
	require.NoError(t, err)
	defer o.Close()
	assert.Len(t, o.Eligible(), 8)
	for _, p := range o.Eligible() {
		assert.Regexp(t, `^layers\.[0-3]\.w[12]$`, p.Name)
	}
	_, err = NewBlockLLM(m, BlockLLMConfig{Eligible: []string{"("}})
	assert.ErrorContains(t, err, "blockllm: parameter pattern")
	_, err = NewBlockLLM(m, BlockLLMConfig{Eligible: []string{"nothing"}})
	assert.ErrorContains(t, err, "no eligible")
	_, err = NewBlockLLM(m, BlockLLMConfig{Sparsity: 1})
	assert.ErrorContains(t, err, "sparsity")

	// the task head is always trainable, and outside the budget
	d := newFixedData(m.V, 4, 8, 1, 3)
	b, _ := d.Next(torch.NewScope())
	withGrad := manualStep(t, m, o, b, 1e-3)
	assert.Contains(t, names(o.Trainable()), "head.weight")
	assert.Equal(t, names(o.Trainable()), names(withGrad))
	assert.NotContains(t, o.LastSelection().Names, "head.weight")
}

// TestProbeNorms: the selection pass's norms equal the norms of plain .grad, and it
// leaves no gradient behind.
func TestProbeNorms(t *testing.T) {
	m := newToy(t, toyOpts{}, 2)
	d := newFixedData(m.V, 4, 8, 1, 3)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)
	o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9})
	require.NoError(t, err)
	defer o.Close()
	norms, loss, err := o.probe(b)
	require.NoError(t, err)
	withGrad, err := GradParams(m.Parameters())
	require.NoError(t, err)
	assert.Empty(t, withGrad, "the probe keeps no gradient")

	setGrads(m.Parameters(), m.Parameters())
	require.NoError(t, torch.WithScope(func(ws *torch.Scope) error {
		out, err := m.Forward(ws, b, true)
		require.NoError(t, err)
		assert.Equal(t, loss, out.Loss.Item())
		out.Loss.Backward()
		for i, p := range o.Eligible() {
			want := p.T.GradIn(ws).Norm(2).Item()
			assert.InDelta(t, want, norms[i], 1e-5*want+1e-9, p.Name)
		}
		return nil
	}))
	for _, p := range m.Parameters() {
		p.T.ZeroGrad(true)
	}
	setGrads(m.Parameters(), nil)
}

// TestBlockMemory: with sparsity 0.9 the state is exactly 2 x 4 bytes x block elements
// and at most 12% of full AdamW's; only the block has gradients; a reselection frees the
// state of the tensors that leave (seen in the live-tensor byte count); the mask shrinks
// the state in proportion.
func TestBlockMemory(t *testing.T) {
	d := newFixedData(64, 4, 8, 4, 3)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)

	full := newToy(t, toyOpts{}, 5)
	adam, err := NewAdamW(full, AdamConfig{})
	require.NoError(t, err)
	defer adam.Close()
	withGrad := manualStep(t, full, adam, b, 1e-3)
	assert.Len(t, withGrad, len(full.Parameters()))
	fullBytes := adam.StateBytes()
	assert.Equal(t, 2*4*full.NumParams(), fullBytes)

	m := newToy(t, toyOpts{}, 5)
	o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9})
	require.NoError(t, err)
	defer o.Close()
	withGrad = manualStep(t, m, o, b, 1e-3)
	sel := o.Selected()
	require.NotEmpty(t, sel)
	assert.Equal(t, names(sel), names(withGrad), "gradients exist only for the block")
	assert.Equal(t, 2*4*numel(sel), o.StateBytes())
	assert.LessOrEqual(t, float64(o.StateBytes()), 0.12*float64(fullBytes))
	assert.GreaterOrEqual(t, numel(sel), o.Budget())
	t.Logf("block %v: %d of %d eligible elements; state %d bytes = %.1f%% of AdamW's %d",
		names(sel), numel(sel), numel(o.Eligible()), o.StateBytes(), 100*float64(o.StateBytes())/float64(fullBytes), fullBytes)

	// reselection: the visit penalty moves the block; freed state leaves the live bytes
	before := o.StateBytes()
	o.due = true
	live0 := torch.LiveTensorBytes(testDevice)
	changed, err := o.Prepare(b)
	require.NoError(t, err)
	require.True(t, changed)
	live1 := torch.LiveTensorBytes(testDevice)
	ls := o.LastSelection()
	require.Positive(t, ls.Left, "the block changed")
	assert.Equal(t, ls.Freed, live0-live1, "freed state is gone from the live-tensor bytes")
	assert.Equal(t, before-o.StateBytes(), ls.Freed)
	setGrads(m.Parameters(), o.Trainable())
	withGrad = manualStep(t, m, o, b, 1e-3)
	assert.Equal(t, names(o.Selected()), names(withGrad))
	assert.Equal(t, 2*4*numel(o.Selected()), o.StateBytes())

	// mask: state only for ceil(f * numel) coordinates per tensor (values + int64 index)
	mm := newToy(t, toyOpts{}, 5)
	om, err := NewBlockLLM(mm, BlockLLMConfig{Sparsity: 0.9, MaskFraction: 0.25})
	require.NoError(t, err)
	defer om.Close()
	manualStep(t, mm, om, b, 1e-3)
	var want int64
	for _, p := range om.Selected() {
		k := int64(math.Ceil(0.25 * float64(p.Numel())))
		want += k * (2*4 + 8)
	}
	assert.Equal(t, want, om.StateBytes())
	assert.Equal(t, names(sel), names(om.Selected()), "same seed, same block")
	assert.InDelta(t, 0.25*(16.0/8.0), float64(om.StateBytes())/float64(o2bytes(sel)), 0.02,
		"state shrinks in proportion to the mask (values and index: 16 bytes per kept coordinate)")
}

func o2bytes(ps []*nn.Param) int64 { return 2 * 4 * numel(ps) }

// TestMaskedUpdate: coordinates in the mask get exactly the dense AdamW update, the
// others stay unchanged.
func TestMaskedUpdate(t *testing.T) {
	d := newFixedData(64, 4, 8, 3, 3)
	dense := newToy(t, toyOpts{}, 6)
	masked := newToy(t, toyOpts{}, 6)
	cfg := BlockLLMConfig{Sparsity: 0.9, Adam: AdamConfig{WeightDecay: 0.1}}
	od, err := NewBlockLLM(dense, cfg)
	require.NoError(t, err)
	defer od.Close()
	cfg.MaskFraction = 0.3
	om, err := NewBlockLLM(masked, cfg)
	require.NoError(t, err)
	defer om.Close()
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)
	w0 := paramBytes(masked)
	// one step each on the same batch from the same weights
	manualStep(t, dense, od, b, 1e-2)
	manualStep(t, masked, om, b, 1e-2)
	require.Equal(t, names(od.Selected()), names(om.Selected()))
	for _, p := range om.Selected() {
		idx := om.adam.st[p].idx.Int64s()
		require.Len(t, idx, int(math.Ceil(0.3*float64(p.Numel()))))
		in := map[int64]bool{}
		for _, i := range idx {
			in[i] = true
		}
		got := p.T.Float32s()
		want := dense.Get(p.Name).T.Float32s()
		orig := torch.Float32sFromBytes(w0[p.Name])
		for i := range got {
			if in[int64(i)] {
				assert.InDelta(t, want[i], got[i], 1e-7, "%s[%d] in the mask", p.Name, i)
			} else {
				assert.Equal(t, orig[i], got[i], "%s[%d] outside the mask", p.Name, i)
			}
		}
	}
	for _, p := range masked.Parameters() {
		if !contains(names(om.Selected()), p.Name) {
			assert.Equal(t, w0[p.Name], p.T.Bytes(), "%s is frozen", p.Name)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestKeepMoments: tensors staying in the block keep their moments (and step count)
// when KeepMoments is set, and restart otherwise.
func TestKeepMoments(t *testing.T) {
	for _, keep := range []bool{false, true} {
		m := newToy(t, toyOpts{}, 7)
		o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9, KeepMoments: keep, Penalty: PenaltyNone})
		require.NoError(t, err)
		d := newFixedData(64, 4, 8, 1, 3)
		s := torch.NewScope()
		b, _ := d.Next(s)
		manualStep(t, m, o, b, 0) // lr 0: the weights (and so the norms) stay
		first := o.Selected()
		o.due = true
		manualStep(t, m, o, b, 0)
		require.Equal(t, names(first), names(o.Selected()), "no penalty, same batch, same block")
		for _, p := range o.Selected() {
			want := int64(1)
			if keep {
				want = 2
			}
			assert.Equal(t, want, o.adam.st[p].step, "keep=%v %s", keep, p.Name)
		}
		s.Close()
		o.Close()
	}
}

// TestBF16State: moment dtype and size for bf16 weights, and float32 master copies of
// the block only.
func TestBF16State(t *testing.T) {
	d := newFixedData(64, 4, 8, 1, 3)
	s := torch.NewScope()
	defer s.Close()
	b, _ := d.Next(s)
	const lr = 1e-4
	for _, tc := range []struct {
		name    string
		adam    AdamConfig
		mask    float64
		perElem int64 // state bytes per updated coordinate
	}{
		{"bf16 moments", AdamConfig{}, 0, 2 * 2},
		{"f32 moments", AdamConfig{StateF32: true}, 0, 2 * 4},
		{"f32 master", AdamConfig{MasterF32: true}, 0, 3 * 4},
		{"f32 master, mask", AdamConfig{MasterF32: true}, 0.5, 3*4 + 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newToy(t, toyOpts{dt: torch.BF16}, 4)
			o, err := NewBlockLLM(m, BlockLLMConfig{Sparsity: 0.9, Adam: tc.adam, MaskFraction: tc.mask})
			require.NoError(t, err)
			defer o.Close()
			w0 := map[string][]float32{}
			for _, p := range m.Parameters() {
				w0[p.Name] = p.T.Float32s()
			}
			manualStep(t, m, o, b, lr)
			var coords int64
			for _, p := range o.Selected() {
				n := p.Numel()
				if tc.mask > 0 {
					n = int64(math.Ceil(tc.mask * float64(n)))
				}
				coords += n
			}
			assert.Equal(t, tc.perElem*coords, o.StateBytes())
			if !tc.adam.MasterF32 {
				return
			}
			for _, p := range o.Selected() {
				mo := o.adam.st[p]
				require.True(t, mo.master.Valid())
				master := mo.master.Float32s()
				got := p.T.Float32s()
				var idx []int64
				if tc.mask > 0 {
					idx = mo.idx.Int64s()
				} else {
					for i := range got {
						idx = append(idx, int64(i))
					}
				}
				moved := 0
				for j, i := range idx {
					// the parameter holds the rounded master
					bf := s.FromFloat32([]float32{master[j]}, 1).To(torch.BF16).Float32s()[0]
					assert.Equal(t, bf, got[i], "%s[%d]", p.Name, i)
					// the first Adam step moves each coordinate with a gradient by lr
					delta := math.Abs(float64(master[j] - w0[p.Name][i]))
					if delta > 0 {
						moved++
						assert.InDelta(t, lr, delta, lr*0.05, "%s[%d]", p.Name, i)
					}
				}
				assert.Greater(t, moved, len(idx)/2)
			}
		})
	}
}

func TestSelectionJSON(t *testing.T) {
	sel := Selection{Index: 2, Names: []string{"a", "b"}, Scores: []float64{1.5, math.Inf(-1)}, Norms: []float64{3, math.NaN()}, Loss: math.NaN()}
	b, err := json.Marshal(sel)
	require.NoError(t, err)
	assert.JSONEq(t, `{"index":2,"step":0,"names":["a","b"],"scores":[1.5,null],"norms":[3,null],"elements":0,
		"budget":0,"eligible":0,"entered":0,"left":0,"freed_bytes":0,"probe_loss":null}`, string(b))
	var back Selection
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, 2, back.Index)
	assert.Equal(t, []float64{1.5, 0}, back.Scores)
}

// TestProbeRows: the selection pass on the first rows equals the pass on a batch of
// just those rows.
func TestProbeRows(t *testing.T) {
	m := newToy(t, toyOpts{}, 2)
	s := torch.NewScope()
	defer s.Close()
	full := newFixedData(m.V, 6, 8, 1, 3)
	b, _ := full.Next(s)
	part := &fixedData{B: 2, T: 8, dev: testDevice, ids: [][]int64{full.ids[0][:16]}}
	pb, _ := part.Next(s)
	o, err := NewBlockLLM(m, BlockLLMConfig{ProbeRows: 2})
	require.NoError(t, err)
	defer o.Close()
	got, lossA, err := o.probe(b)
	require.NoError(t, err)
	ref, err := NewBlockLLM(m, BlockLLMConfig{})
	require.NoError(t, err)
	defer ref.Close()
	want, lossB, err := ref.probe(pb)
	require.NoError(t, err)
	assert.Equal(t, lossB, lossA)
	assert.InDeltaSlice(t, want, got, 1e-6)
	_, err = NewBlockLLM(m, BlockLLMConfig{ProbeRows: -1})
	assert.ErrorContains(t, err, "negative probe rows")
}
