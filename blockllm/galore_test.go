package blockllm

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// mat is a dense row-major float64 matrix of the reference computation.
type mat struct {
	r, c int
	v    []float64
}

func newMat(r, c int) mat             { return mat{r, c, make([]float64, r*c)} }
func (a mat) at(i, j int) float64     { return a.v[i*a.c+j] }
func (a mat) set(i, j int, x float64) { a.v[i*a.c+j] = x }
func (a mat) clone() mat              { return mat{a.r, a.c, append([]float64(nil), a.v...)} }
func matOf(r, c int, v []float64) mat { return mat{r, c, append([]float64(nil), v...)} }
func (a mat) t() mat {
	b := newMat(a.c, a.r)
	for i := 0; i < a.r; i++ {
		for j := 0; j < a.c; j++ {
			b.set(j, i, a.at(i, j))
		}
	}
	return b
}

func (a mat) mul(b mat) mat {
	out := newMat(a.r, b.c)
	for i := 0; i < a.r; i++ {
		for j := 0; j < b.c; j++ {
			s := 0.0
			for k := 0; k < a.c; k++ {
				s += a.at(i, k) * b.at(k, j)
			}
			out.set(i, j, s)
		}
	}
	return out
}

// rightSingular returns the right singular vectors of a (as rows, singular values
// descending) by one-sided Jacobi rotations on the columns of a copy of a: a V = U S.
func rightSingular(a mat) mat {
	u := a.clone()
	n := a.c
	v := newMat(n, n)
	for i := 0; i < n; i++ {
		v.set(i, i, 1)
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for p := 0; p < n-1; p++ {
			for q := p + 1; q < n; q++ {
				var al, be, ga float64
				for i := 0; i < u.r; i++ {
					al += u.at(i, p) * u.at(i, p)
					be += u.at(i, q) * u.at(i, q)
					ga += u.at(i, p) * u.at(i, q)
				}
				if ga == 0 {
					continue
				}
				off = math.Max(off, math.Abs(ga)/math.Sqrt(al*be))
				zeta := (be - al) / (2 * ga)
				tn := math.Copysign(1, zeta) / (math.Abs(zeta) + math.Sqrt(1+zeta*zeta))
				cs := 1 / math.Sqrt(1+tn*tn)
				sn := cs * tn
				for i := 0; i < u.r; i++ {
					x, y := u.at(i, p), u.at(i, q)
					u.set(i, p, cs*x-sn*y)
					u.set(i, q, sn*x+cs*y)
				}
				for i := 0; i < n; i++ {
					x, y := v.at(i, p), v.at(i, q)
					v.set(i, p, cs*x-sn*y)
					v.set(i, q, sn*x+cs*y)
				}
			}
		}
		if off < 1e-15 {
			break
		}
	}
	norms := make([]float64, n)
	idx := make([]int, n)
	for j := 0; j < n; j++ {
		for i := 0; i < u.r; i++ {
			norms[j] += u.at(i, j) * u.at(i, j)
		}
		idx[j] = j
	}
	sort.Slice(idx, func(x, y int) bool { return norms[idx[x]] > norms[idx[y]] })
	out := newMat(n, n)
	for k, j := range idx {
		for i := 0; i < n; i++ {
			out.set(k, i, v.at(i, j))
		}
	}
	return out
}

// positiveMax flips each row of a so that its entry of largest magnitude is positive.
func positiveMax(a mat) mat {
	b := a.clone()
	for i := 0; i < b.r; i++ {
		best := 0
		for j := range b.c {
			if math.Abs(b.at(i, j)) > math.Abs(b.at(i, best)) {
				best = j
			}
		}
		if b.at(i, best) < 0 {
			for j := range b.c {
				b.set(i, j, -b.at(i, j))
			}
		}
	}
	return b
}

// galoreRef is GaLore's step on one matrix written out in float64: the projection from
// the SVD at steps 0, T, 2T, ... (right side for m >= n, left otherwise), Adam in the
// projected space (torch.optim.AdamW's formula), the update projected back times alpha.
type galoreRef struct {
	w                      mat
	p                      mat // [k, n] (right) or [m, k] (left)
	m, v                   mat
	step                   int
	rank, gap              int
	alpha, b1, b2, eps, wd float64
}

func (r *galoreRef) update(g mat, lr float64) {
	right := g.r >= g.c
	if r.step%r.gap == 0 {
		if right {
			vs := positiveMax(rightSingular(g)) // rows: right singular vectors
			k := min(r.rank, g.c)
			r.p = matOf(k, g.c, vs.v[:k*g.c])
		} else {
			us := positiveMax(rightSingular(g.t())) // left singular vectors of g, as rows
			k := min(r.rank, g.r)
			r.p = matOf(k, g.r, us.v[:k*g.r]).t()
		}
	}
	var low mat
	if right {
		low = g.mul(r.p.t())
	} else {
		low = r.p.t().mul(g)
	}
	if r.m.v == nil {
		r.m, r.v = newMat(low.r, low.c), newMat(low.r, low.c)
	}
	r.step++
	bc1 := 1 - math.Pow(r.b1, float64(r.step))
	bc2 := 1 - math.Pow(r.b2, float64(r.step))
	n := newMat(low.r, low.c)
	for i := range low.v {
		r.m.v[i] = r.b1*r.m.v[i] + (1-r.b1)*low.v[i]
		r.v.v[i] = r.b2*r.v.v[i] + (1-r.b2)*low.v[i]*low.v[i]
		n.v[i] = lr / bc1 * r.m.v[i] / (math.Sqrt(r.v.v[i])/math.Sqrt(bc2) + r.eps)
	}
	var back mat
	if right {
		back = n.mul(r.p)
	} else {
		back = r.p.mul(n)
	}
	for i := range r.w.v {
		r.w.v[i] = r.w.v[i]*(1-lr*r.wd) - r.alpha*back.v[i]
	}
}

// galoreModel is a paramsModel with two projected weights (a tall one, right side; a
// wide one, left side) and a bias (plain AdamW), in float64.
func galoreModel(t *testing.T, seed uint64) (paramsModel, map[string]mat) {
	t.Helper()
	m := paramsModel{nn.NewParams("galore-test")}
	t.Cleanup(m.Close)
	rng := rand.New(rand.NewPCG(seed, 1))
	init := map[string]mat{}
	for _, spec := range []struct {
		name string
		r, c int
	}{{"layers.0.mlp.tall.weight", 7, 4}, {"layers.0.mlp.wide.weight", 3, 6}, {"layers.0.mlp.bias", 1, 5}} {
		v := make([]float64, spec.r*spec.c)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		init[spec.name] = matOf(spec.r, spec.c, v)
		shape := []int64{int64(spec.r), int64(spec.c)}
		if spec.r == 1 {
			shape = shape[1:]
		}
		x := m.Store.FromFloat64(v, shape...)
		if testDevice != torch.CPU {
			y := m.Store.Empty(shape, torch.F64, testDevice)
			y.CopyFrom(x)
			x = y
		}
		m.Add(spec.name, x, 0)
	}
	return m, init
}

// randomGrads draws a gradient for every parameter of m.
func randomGrads(s *torch.Scope, m paramsModel, rng *rand.Rand) (map[string]*torch.Tensor, map[string]mat) {
	ts, ms := map[string]*torch.Tensor{}, map[string]mat{}
	for _, p := range m.Parameters() {
		shape := p.T.Shape()
		r, c := 1, int(shape[0])
		if len(shape) == 2 {
			r, c = int(shape[0]), int(shape[1])
		}
		v := make([]float64, r*c)
		for i := range v {
			v[i] = rng.NormFloat64() * (1 + float64(i%3))
		}
		ms[p.Name] = matOf(r, c, v)
		ts[p.Name] = s.FromFloat64(v, shape...).ToDevice(torch.F64, testDevice)
	}
	return ts, ms
}

// TestGaLoreStepMatchesReference: GaLore's steps on a tall and a wide float64 matrix
// equal the computation written out above (Jacobi SVD, projection, Adam in the
// projected space, back-projection times alpha, refresh every T steps), and the bias
// gets plain AdamW; the projection is refreshed at steps 0, T, 2T only.
func TestGaLoreStepMatchesReference(t *testing.T) {
	const rank, gap, alpha, lr, wd = 2, 3, 0.5, 0.05, 0.1
	m, init := galoreModel(t, 1)
	o, err := NewGaLore(m, GaLoreConfig{Adam: AdamConfig{WeightDecay: wd}, Rank: rank, UpdateProjGap: gap, Scale: alpha, Targets: []string{"mlp.tall", "mlp.wide"}})
	require.NoError(t, err)
	defer o.Close()
	assert.Equal(t, []string{"layers.0.mlp.tall.weight", "layers.0.mlp.wide.weight"}, names(o.Targets()))
	refs := map[string]*galoreRef{}
	for _, n := range []string{"layers.0.mlp.tall.weight", "layers.0.mlp.wide.weight"} {
		refs[n] = &galoreRef{w: init[n].clone(), rank: rank, gap: gap, alpha: alpha, b1: 0.9, b2: 0.999, eps: 1e-8, wd: wd}
	}
	bias := init["layers.0.mlp.bias"].clone()
	bm, bv := make([]float64, bias.c), make([]float64, bias.c)
	rng := rand.New(rand.NewPCG(7, 7))
	var projs []string
	for step := 1; step <= 8; step++ {
		s := torch.NewScope()
		gts, gms := randomGrads(s, m, rng)
		setGradsTo(t, m.Parameters(), gts)
		require.NoError(t, o.Step(lr))
		for n, r := range refs {
			r.update(gms[n], lr)
		}
		// the bias: torch.optim.AdamW
		g := gms["layers.0.mlp.bias"].v
		bc1, bc2 := 1-math.Pow(0.9, float64(step)), 1-math.Pow(0.999, float64(step))
		for i := range bias.v {
			bm[i] = 0.9*bm[i] + 0.1*g[i]
			bv[i] = 0.999*bv[i] + 0.001*g[i]*g[i]
			bias.v[i] = bias.v[i]*(1-lr*wd) - lr/bc1*bm[i]/(math.Sqrt(bv[i])/math.Sqrt(bc2)+1e-8)
		}
		for n, r := range refs {
			got := m.Get(n).T.Float64s()
			for i := range got {
				require.InDelta(t, r.w.v[i], got[i], 1e-12*(1+math.Abs(r.w.v[i])), "%s after step %d [%d]", n, step, i)
			}
			st := o.proj[m.Get(n)]
			gp := st.p.Float64s()
			for i := range gp {
				require.InDelta(t, r.p.v[i], gp[i], 1e-12, "%s projection after step %d", n, step)
			}
			if n == "layers.0.mlp.tall.weight" {
				projs = append(projs, string(st.p.Bytes()))
			}
		}
		gotB := m.Get("layers.0.mlp.bias").T.Float64s()
		for i := range gotB {
			require.InDelta(t, bias.v[i], gotB[i], 1e-12, "bias after step %d", step)
		}
		s.Close()
	}
	for i := 1; i < len(projs); i++ {
		if i%gap == 0 {
			assert.NotEqual(t, projs[i-1], projs[i], "refresh at step %d", i)
		} else {
			assert.Equal(t, projs[i-1], projs[i], "no refresh at step %d", i)
		}
	}
}

// TestGaLoreIdentityIsAdamW: with the projection fixed to the identity and scale 1,
// GaLore's steps are AdamW's, bit for bit.
func TestGaLoreIdentityIsAdamW(t *testing.T) {
	for _, dt := range []torch.DType{torch.F32, torch.F64} {
		a, _ := galoreModel(t, 3)
		b, _ := galoreModel(t, 3)
		for _, m := range []paramsModel{a, b} {
			for _, p := range m.Parameters() {
				require.NoError(t, torch.WithScope(func(s *torch.Scope) error {
					x := s.In(p.T).To(dt)
					p.T = x.MoveTo(m.Store)
					return nil
				}))
			}
		}
		adam := AdamConfig{WeightDecay: 0.01}
		ga, err := NewGaLore(a, GaLoreConfig{Adam: adam, Rank: 100, UpdateProjGap: 2, Scale: 1, Targets: []string{"mlp"}})
		require.NoError(t, err)
		defer ga.Close()
		ga.fixed = func(s *torch.Scope, g *torch.Tensor, right bool) *torch.Tensor {
			n := g.Size(1)
			if !right {
				n = g.Size(0)
			}
			return s.Ones([]int64{n, n}, g.DType(), g.Device()).Tril(0).Triu(0) // the identity
		}
		aw, err := NewAdamW(b, adam)
		require.NoError(t, err)
		defer aw.Close()
		rng1, rng2 := rand.New(rand.NewPCG(5, 5)), rand.New(rand.NewPCG(5, 5))
		for step := 0; step < 6; step++ {
			s := torch.NewScope()
			g1, _ := randomGrads(s, a, rng1)
			g2, _ := randomGrads(s, b, rng2)
			for k := range g1 {
				g1[k], g2[k] = g1[k].To(dt), g2[k].To(dt)
			}
			setGradsTo(t, a.Parameters(), g1)
			setGradsTo(t, b.Parameters(), g2)
			require.NoError(t, ga.Step(1e-2))
			require.NoError(t, aw.Step(1e-2))
			s.Close()
		}
		for _, p := range a.Parameters() {
			assert.True(t, bytes.Equal(p.T.Bytes(), b.Get(p.Name).T.Bytes()), "%v %s equals AdamW's", dt, p.Name)
		}
	}
}

// TestGaLoreState: on the llama-tiny fixture with rank 4, the optimizer state is exactly
// the projection matrices plus the projected moments of the attention and MLP weights
// (left or right by shape) plus AdamW's moments of the rest; every parameter trains.
func TestGaLoreState(t *testing.T) {
	m := loadTinyLlama(t)
	o, err := NewGaLore(m, GaLoreConfig{Rank: 4})
	require.NoError(t, err)
	defer o.Close()
	assert.Len(t, o.Targets(), 14, "q, k, v, o, gate, up, down in 2 layers (GaLore's 'attn', 'mlp')")
	assert.Equal(t, names(m.Parameters()), names(o.Trainable()))
	s := torch.NewScope()
	defer s.Close()
	b := randomBatch(t, s, m.Config().VocabSize)
	manualStep(t, m, o, b, 1e-3)
	var want, proj int64
	isTarget := map[*nn.Param]bool{}
	for _, p := range o.Targets() {
		isTarget[p] = true
		rows, cols := p.T.Size(0), p.T.Size(1)
		if rows >= cols { // right: P [4, cols], moments [rows, 4]
			proj += 4 * cols * 4
			want += 2 * rows * 4 * 4
		} else { // left: P [rows, 4], moments [4, cols]
			proj += rows * 4 * 4
			want += 2 * 4 * cols * 4
		}
	}
	for _, p := range m.Parameters() {
		if !isTarget[p] {
			want += 2 * p.Numel() * 4
		}
	}
	assert.Equal(t, proj, o.ProjectionBytes())
	assert.Equal(t, want+proj, o.StateBytes())
	st, err := o.SaveState()
	require.NoError(t, err)
	v := st.Tensors["model.layers.0.self_attn.v_proj.weight.galore_proj"]
	require.NotNil(t, v)
	assert.Equal(t, []int64{32, 4}, v.Shape(), "v_proj [32, 64]: left projection")
	assert.Equal(t, []int64{4, 64}, st.Tensors["model.layers.0.self_attn.v_proj.weight.galore_exp_avg"].Shape())
	assert.Equal(t, []int64{4, 64}, st.Tensors["model.layers.0.mlp.gate_proj.weight.galore_proj"].Shape(), "gate_proj [160, 64]: right")
	assert.Equal(t, []int64{160, 4}, st.Tensors["model.layers.0.mlp.gate_proj.weight.galore_exp_avg_sq"].Shape())
	assert.Nil(t, st.Tensors["model.layers.0.mlp.gate_proj.weight.exp_avg"], "no full-size moments for targets")
	assert.NotNil(t, st.Tensors["model.embed_tokens.weight.exp_avg"])
	var sum int64
	for _, t := range st.Tensors {
		sum += t.NBytes()
	}
	assert.Equal(t, o.StateBytes(), sum, "the snapshot is the whole state")
	// a projection column basis is orthonormal
	pt := s.In(v)
	eye := pt.T().Matmul(pt)
	assert.True(t, torch.AllClose(eye, s.Ones([]int64{4, 4}, torch.F32, testDevice).Tril(0).Triu(0), 1e-5, 1e-5), "PᵀP = I")

	_, err = NewGaLore(m, GaLoreConfig{Targets: []string{"nothing"}})
	assert.ErrorContains(t, err, "target modules nothing match no 2-D weight")
	_, err = NewGaLore(m, GaLoreConfig{Scale: -1})
	assert.ErrorContains(t, err, "scale -1 must be positive")
}

// mini is a small causal LM whose layers apply their linear weights through
// nn.Params.Linear (adapters apply): embedding [V, D], L residual MLP layers
// x + down(tanh(up(x))), an LM head [V, D].
type mini struct {
	*nn.Params
	V, D, L int
}

func newMini(t testing.TB, seed uint64) *mini {
	t.Helper()
	m := &mini{Params: nn.NewParams("mini"), V: 48, D: 12, L: 3}
	g := torch.NewGenerator(seed, torch.CPU)
	defer g.Close()
	add := func(name string, layer int, shape ...int64) *nn.Param {
		x := m.Store.Randn(shape, torch.F32, torch.CPU, g)
		x.MulScalarInPlace(0.3)
		if testDevice != torch.CPU {
			y := m.Store.Empty(shape, torch.F32, testDevice)
			y.CopyFrom(x)
			x = y
		}
		return m.Add(name, x, layer)
	}
	V, D := int64(m.V), int64(m.D)
	add("embed.weight", -1, V, D).Embed = true
	for l := 0; l < m.L; l++ {
		add(fmt.Sprintf("layers.%d.mlp.up.weight", l), l, 2*D, D).Linear = true
		add(fmt.Sprintf("layers.%d.mlp.down.weight", l), l, D, 2*D).Linear = true
		add(fmt.Sprintf("layers.%d.norm.weight", l), l, D)
	}
	add("head.weight", -1, V, D).Embed = true
	t.Cleanup(m.Close)
	return m
}

func (m *mini) Device() torch.Device { return testDevice }

func (m *mini) Forward(s *torch.Scope, b *nn.Batch, train bool) (*nn.Output, error) {
	var out *nn.Output
	err := torch.Try(func() {
		ids := s.In(b.InputIDs)
		T := ids.Size(1)
		x := torch.Embedding(m.W(s, m.Get("embed.weight")), ids)
		for l := 0; l < m.L; l++ {
			p := fmt.Sprintf("layers.%d.", l)
			h := m.Linear(s, x.Mul(m.W(s, m.Get(p+"norm.weight"))), m.Get(p+"mlp.up.weight"), nil, train).Tanh()
			x = x.Add(m.Linear(s, h, m.Get(p+"mlp.down.weight"), nil, train))
		}
		logits := x.Linear(m.W(s, m.Get("head.weight")), nil)
		pred := logits.Slice(1, 0, T-1, 1).Reshape(-1, int64(m.V))
		out = &nn.Output{Logits: logits, Loss: torch.CrossEntropy(pred, ids.Slice(1, 1, T, 1).Reshape(-1), -100, torch.ReduceMean)}
	})
	return out, err
}

// TestPEFTResumeBitForBit: LoRA (with adapter dropout, the rest trained in full) and
// GaLore (refreshing its projection across the cut): training k steps, checkpointing,
// rebuilding everything (other weights, other LoRA seed) and resuming gives the losses,
// weights and optimizer state of an uninterrupted run, bit for bit on the CPU (the mini
// model). On the llama-tiny fixture the loss trajectories agree to 1e-3: identical CPU
// runs of llama-tiny (any method, AdamW too) differ in their last bits on this machine,
// which is not a resume matter.
func TestPEFTResumeBitForBit(t *testing.T) {
	const total, cut = 9, 4
	for _, model := range []string{"mini", "llama-tiny"} {
		for _, method := range []string{"lora", "galore", "lora-8bit", "galore-8bit"} {
			t.Run(model+"/"+method, func(t *testing.T) {
				peftResume(t, model, method, total, cut)
			})
		}
	}
}

func peftResume(t *testing.T, model, method string, total, cut int) {
	// lora-8bit: LoRA with 8-bit moments for every trainable tensor (the minimum size 1,
	// as the adapters here are small)
	adam := AdamConfig{WeightDecay: 0.01}
	if m, ok := strings.CutSuffix(method, "-8bit"); ok {
		method, adam.EightBit, adam.EightBitMinSize = m, true, 1
	}
	mc := func(seed uint64) MethodConfig {
		c := MethodConfig{Method: method, Adam: adam, Seed: seed,
			LoRA:   LoRAConfig{Dropout: 0.1, Targets: []string{"q_proj", "v_proj", "up_proj"}},
			GaLore: GaLoreConfig{Rank: 4, UpdateProjGap: 3, Scale: 0.5}}
		if model == "mini" {
			c.LoRA = LoRAConfig{Dropout: 0.1, Targets: []string{"up", "down"}, Rank: 2, TrainRest: true}
			c.GaLore = GaLoreConfig{Rank: 3, UpdateProjGap: 3, Scale: 0.5, Targets: []string{"mlp"}}
		}
		return c
	}
	cfg := func(dir string) TrainConfig {
		return TrainConfig{Steps: total, LR: 1e-2, GradAccum: 2, MaxGradNorm: 1, CheckpointDir: dir,
			Schedule: Schedule{Kind: Cosine, Warmup: 2, MinRatio: 0.1}}
	}
	newModel := func(seed uint64) nn.Model {
		if model == "mini" {
			return newMini(t, seed)
		}
		if seed == 1 {
			return loadLlama(t, torch.F32)
		}
		m, err := llama.New(loadTinyLlama(t).Config(), llama.Options{Device: testDevice}, seed)
		require.NoError(t, err)
		t.Cleanup(m.Close)
		return m
	}
	vocab := 48
	if model != "mini" {
		vocab = 1024
	}
	run := func(m nn.Model, seed uint64, dir string, steps int, resume string) (*Trainer, Optimizer) {
		o, err := NewOptimizer(m, mc(seed))
		require.NoError(t, err)
		t.Cleanup(o.Close)
		tr, err := NewTrainer(m, o, newRandomTokensT(t, vocab), cfg(dir))
		require.NoError(t, err)
		if resume != "" {
			require.NoError(t, tr.Resume(resume))
		}
		for tr.StepCount() < steps {
			_, err := tr.Step()
			require.NoError(t, err)
		}
		return tr, o
	}
	ref := newModel(1)
	rt, ro := run(ref, 1, "", total, "")
	dir := t.TempDir()
	a := newModel(1)
	at, _ := run(a, 1, dir, cut, "")
	ckpt := filepath.Join(dir, "mid")
	require.NoError(t, at.SaveCheckpoint(ckpt))
	b := newModel(77)                    // other weights: all come from the checkpoint
	bt, bo := run(b, 2, "", total, ckpt) // other LoRA seed: A and the dropout stream too
	rs, err := ro.SaveState()
	require.NoError(t, err)
	bs, err := bo.SaveState()
	require.NoError(t, err)
	require.Equal(t, len(rs.Tensors), len(bs.Tensors))
	if adam.EightBit {
		var codes int
		for k, x := range bs.Tensors {
			if strings.HasSuffix(k, ".exp_avg") || strings.HasSuffix(k, ".exp_avg_sq") {
				codes++
				assert.Equal(t, torch.U8, x.DType(), k)
			}
		}
		assert.Positive(t, codes, "8-bit codes in the resumed state")
		assert.Contains(t, bs.Tensors, mapSignedKey)
		if method == "galore" {
			var projected int
			for k, x := range bs.Tensors {
				if strings.HasSuffix(k, galoreM) || strings.HasSuffix(k, galoreV) {
					projected++
					assert.Equal(t, torch.U8, x.DType(), k)
					assert.Contains(t, bs.Tensors, k+absmaxSuffix)
				}
			}
			assert.Positive(t, projected, "8-bit projected moments in the resumed state")
		}
	}
	if testDevice == torch.CPU && model == "mini" {
		assert.Equal(t, rt.Losses(), bt.Losses(), "loss trajectory")
		want := paramBytes(ref)
		for name, got := range paramBytes(b) {
			assert.True(t, bytes.Equal(want[name], got), "%s differs after resume", name)
		}
		for k, x := range rs.Tensors {
			require.NotNil(t, bs.Tensors[k], k)
			assert.True(t, bytes.Equal(x.Bytes(), bs.Tensors[k].Bytes()), "optimizer tensor %s differs after resume", k)
		}
	} else {
		// last-bit differences between runs reach Adam's sign-like updates of rarely
		// seen embedding rows: compare the loss trajectory only
		assert.InDeltaSlice(t, rt.Losses(), bt.Losses(), 1e-3, "loss trajectory")
		for k := range rs.Tensors {
			assert.NotNil(t, bs.Tensors[k], k)
		}
	}
	assert.Equal(t, ro.StateBytes(), bo.StateBytes())
	assert.Less(t, rt.Losses()[total-1], rt.Losses()[0], "the loss goes down")
}
