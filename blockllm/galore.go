package blockllm

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// GaLore defaults: the authors' Llama-60M C4 setting (jiaweizzhao/GaLore,
// scripts/benchmark_c4/llama_60m.sh: --rank 128 --update_proj_gap 200 --galore_scale
// 0.25). Their GLUE setting (README, run_glue.py: --lora_r 4 --update_proj_gap 500
// --galore_scale 4) is GaLoreGLUE.
const (
	DefaultGaLoreRank  = 128
	DefaultGaLoreGap   = 200
	DefaultGaLoreScale = 0.25
)

// GaLoreGLUE is the authors' RoBERTa GLUE setting (rank 4, gap 500, scale 4).
var GaLoreGLUE = GaLoreConfig{Rank: 4, UpdateProjGap: 500, Scale: 4}

// GaLoreConfig configures GaLore (Zhao et al., 2024): the gradient G [m, n] of each
// target weight is projected onto a rank-r subspace taken from its SVD, Adam runs on
// the projected gradient, and the update is projected back and scaled by Scale.
type GaLoreConfig struct {
	// Adam holds the AdamW hyper-parameters (of the projected and the other tensors).
	Adam AdamConfig
	// Rank is r (at most min(m, n) is used); 0 means DefaultGaLoreRank.
	Rank int
	// UpdateProjGap is T: the projection is recomputed from the gradient at a
	// weight's steps 0, T, 2T, ...; 0 means DefaultGaLoreGap.
	UpdateProjGap int
	// Scale is alpha, the factor of the projected-back update; 0 means
	// DefaultGaLoreScale.
	Scale float64
	// Targets are substrings of module names (a weight's name without ".weight"): the
	// 2-D weights whose module contains one are projected (GaLore's target_modules_list);
	// empty: "attn", "mlp" for Llama (torchrun_main.py) and "query", "value", "key",
	// "intermediate.dense", "output.dense" for RoBERTa (run_glue.py).
	Targets []string
}

func (c GaLoreConfig) withDefaults() GaLoreConfig {
	if c.Rank == 0 {
		c.Rank = DefaultGaLoreRank
	}
	if c.UpdateProjGap == 0 {
		c.UpdateProjGap = DefaultGaLoreGap
	}
	if c.Scale == 0 {
		c.Scale = DefaultGaLoreScale
	}
	c.Adam = c.Adam.withDefaults()
	return c
}

// DefaultGaLoreTargets is the authors' target list for the model family of ps.
func DefaultGaLoreTargets(ps []*nn.Param) []string {
	for _, p := range ps {
		switch {
		case strings.Contains(p.Name, ".self_attn."):
			return []string{"attn", "mlp"}
		case strings.Contains(p.Name, ".attention.self."):
			return []string{"query", "value", "key", "intermediate.dense", "output.dense"}
		}
	}
	return nil
}

// projected is the GaLore state of one target weight.
type projected struct {
	p      *torch.Tensor // projection: [r, n] (right, m >= n) or [m, r] (left)
	m, v   *torch.Tensor // Adam moments of the projected gradient (uint8 codes when 8-bit)
	am, av *torch.Tensor // with 8-bit moments: float32 maxima per block of quantBlock values
	master *torch.Tensor // float32 copy of a half weight (AdamConfig.MasterF32)
	step   int64
	right  bool
}

func (g *projected) tensors() []*torch.Tensor {
	return []*torch.Tensor{g.p, g.m, g.v, g.am, g.av, g.master}
}

// quantized reports whether the projected moments are 8-bit.
func (g *projected) quantized() bool { return g.am.Valid() }

func (g *projected) bytes() int64 {
	var n int64
	for _, t := range g.tensors() {
		if t.Valid() {
			n += t.NBytes()
		}
	}
	return n
}

func (g *projected) free() {
	for _, t := range g.tensors() {
		t.Free()
	}
}

// GaLore trains every parameter in full: the target weights with Adam on their
// gradients projected to rank r (state: the projection and the projected moments),
// the others with plain AdamW. One weight's step, for G [m, n] (k = min(r, m, n)):
//
//	at steps 0, T, 2T, ...: U, S, Vh = svd(G); P = Vh[:k] if m >= n else U[:, :k]
//	R = G Pᵀ (m >= n) or Pᵀ G                       the projected gradient
//	N = AdamW's update of R (moments of R's shape, bias correction, lr)
//	W = W·(1 - lr·wd) - alpha · (N P or P N)
//
// as GaLore's GaLoreProjector ('std') and AdamW, with two documented choices: Adam is
// torch.optim.AdamW's (eps added after the bias correction, weight decay before the
// update: exactly AdamW when P is the identity), where GaLore's copy of transformers'
// AdamW adds eps before and decays after; and each basis vector of P has its entry of
// largest magnitude positive (singular vectors are defined up to sign; this makes the
// steps the same on every LAPACK, CPU or CUDA). The SVD is taken in float32 (float64
// for float64 gradients).
type GaLore struct {
	cfg    GaLoreConfig
	params []*nn.Param
	proj   map[*nn.Param]*projected
	order  []*nn.Param // the targets, model order
	rest   []*nn.Param
	adam   *adamState
	store  *torch.Scope
	begun  bool
	// fixed replaces the SVD in tests (the identity projection).
	fixed func(s *torch.Scope, g *torch.Tensor, right bool) *torch.Tensor
}

// NewGaLore returns GaLore over all of m's parameters.
func NewGaLore(m nn.Model, cfg GaLoreConfig) (*GaLore, error) {
	if m == nil {
		return nil, fmt.Errorf("blockllm: nil model")
	}
	cfg = cfg.withDefaults()
	if err := cfg.Adam.validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Rank < 0:
		return nil, fmt.Errorf("blockllm: galore: rank %d must be positive", cfg.Rank)
	case cfg.UpdateProjGap < 0:
		return nil, fmt.Errorf("blockllm: galore: update_proj_gap %d must be positive", cfg.UpdateProjGap)
	case !(cfg.Scale > 0) || math.IsInf(cfg.Scale, 0):
		return nil, fmt.Errorf("blockllm: galore: scale %g must be positive", cfg.Scale)
	}
	ps := m.Parameters()
	targets := cfg.Targets
	if len(targets) == 0 {
		if targets = DefaultGaLoreTargets(ps); len(targets) == 0 {
			return nil, fmt.Errorf("blockllm: galore: no default target modules for this model: name them")
		}
		cfg.Targets = targets
	}
	o := &GaLore{cfg: cfg, params: ps, proj: map[*nn.Param]*projected{}, adam: newAdamState(cfg.Adam),
		store: torch.NewStore("blockllm-galore")}
	used := map[string]bool{}
	for _, p := range ps {
		module, ok := strings.CutSuffix(p.Name, ".weight")
		hit := ""
		for _, t := range targets {
			if ok && strings.Contains(module, t) {
				hit = t
				break
			}
		}
		if hit == "" || p.T.Dim() != 2 || p.Embed {
			o.rest = append(o.rest, p)
			continue
		}
		used[hit] = true
		o.proj[p] = &projected{right: p.T.Size(0) >= p.T.Size(1)}
		o.order = append(o.order, p)
	}
	var missing []string
	for _, t := range targets {
		if !used[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		o.Close()
		return nil, fmt.Errorf("blockllm: galore: target modules %s match no 2-D weight", strings.Join(missing, ", "))
	}
	return o, nil
}

// Name returns "galore".
func (o *GaLore) Name() string { return "galore" }

// Prepare reports changed only on the first call (every parameter trains).
func (o *GaLore) Prepare(*nn.Batch) (bool, error) {
	changed := !o.begun
	o.begun = true
	return changed, nil
}

// Trainable lists every parameter.
func (o *GaLore) Trainable() []*nn.Param { return o.params }

// Targets lists the projected weights, in model order.
func (o *GaLore) Targets() []*nn.Param { return append([]*nn.Param(nil), o.order...) }

// Config returns the settings (defaults filled in).
func (o *GaLore) Config() GaLoreConfig { return o.cfg }

// Step updates every parameter that has a gradient (the targets through their
// projection) and frees the gradients.
func (o *GaLore) Step(lr float64) error {
	return catch(func() error {
		err := torch.WithScope(func(s *torch.Scope) error {
			for _, p := range o.order {
				g := p.T.GradIn(s)
				if g == nil {
					continue
				}
				o.update(s, p, g, lr)
				p.T.ZeroGrad(true)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return o.adam.stepParams(o.rest, lr, nil)
	})
}

// updateInBackward is Step's update of one tensor (TrainConfig.StepInBackward, GaLore's
// per-layer weight updates).
func (o *GaLore) updateInBackward(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr float64) {
	if o.proj[p] != nil {
		o.update(s, p, g, lr)
		return
	}
	o.adam.updateOne(s, p, g, lr, 0)
}

// stateDType is the dtype of a target's projection and moments.
func (o *GaLore) stateDType(p *nn.Param) torch.DType {
	if o.cfg.Adam.StateF32 || o.useMaster(p) {
		return torch.F32
	}
	return p.T.DType()
}

func (o *GaLore) useMaster(p *nn.Param) bool {
	dt := p.T.DType()
	return o.cfg.Adam.MasterF32 && (dt == torch.BF16 || dt == torch.F16)
}

// update is one GaLore step of target p from its gradient g (owned by s).
func (o *GaLore) update(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr float64) {
	st := o.proj[p]
	c := o.cfg.Adam
	dt := o.stateDType(p)
	torch.NoGrad(func() {
		gg := s.In(g)
		if gg.DType() != dt {
			gg = gg.To(dt)
		}
		if !st.p.Valid() || st.step%int64(o.cfg.UpdateProjGap) == 0 {
			np := o.projection(s, gg, st.right).To(dt).Contiguous()
			st.p.Free()
			st.p = np.MoveTo(o.store)
		}
		var low *torch.Tensor
		if st.right {
			low = gg.Matmul(s.In(st.p).T()) // [m, k]
		} else {
			low = s.In(st.p).T().Matmul(gg) // [k, n]
		}
		if !st.m.Valid() {
			if o.adam.quantizedNumel(low.Numel()) { // 8-bit moments, as adamState's init8
				nb := []int64{numBlocks(low.Numel())}
				st.m = o.store.Zeros(low.Shape(), torch.U8, low.Device())
				st.v = o.store.Zeros(low.Shape(), torch.U8, low.Device())
				st.am = o.store.Zeros(nb, torch.F32, low.Device())
				st.av = o.store.Zeros(nb, torch.F32, low.Device())
			} else {
				st.m = o.store.Zeros(low.Shape(), dt, low.Device())
				st.v = o.store.Zeros(low.Shape(), dt, low.Device())
			}
		}
		if o.useMaster(p) && !st.master.Valid() {
			st.master = o.store.Empty(p.T.Shape(), torch.F32, p.T.Device())
			st.master.CopyFrom(p.T)
		}
		st.step++
		// N: AdamW's step from zero with no decay is -lr·m̂/(sqrt(v̂)+eps)
		z := s.Zeros(low.Shape(), dt, low.Device())
		if st.quantized() {
			o.adam.ensureMaps(low.Device())
			torch.AdamW8bitStep(z, low.Contiguous(), st.m, st.am, st.v, st.av, o.adam.maps.signed, o.adam.maps.unsigned, quantBlock,
				lr, c.Beta1, c.Beta2, c.Eps, 0, st.step)
		} else {
			torch.AdamWStep(z, low.Contiguous(), st.m, st.v, lr, c.Beta1, c.Beta2, c.Eps, 0, st.step)
		}
		var back *torch.Tensor
		if st.right {
			back = z.Matmul(s.In(st.p))
		} else {
			back = s.In(st.p).Matmul(z)
		}
		w := p.T
		if st.master.Valid() {
			w = st.master
		}
		if c.WeightDecay > 0 {
			w.MulScalarInPlace(1 - lr*c.WeightDecay)
		}
		w.AddInPlace(back, o.cfg.Scale)
		if st.master.Valid() {
			p.T.CopyFrom(st.master)
		}
	})
}

// projection is P of gradient g: the top-k right (Vh[:k], [k, n]) or left (U[:, :k],
// [m, k]) singular vectors, each with its largest-magnitude entry positive.
func (o *GaLore) projection(s *torch.Scope, g *torch.Tensor, right bool) *torch.Tensor {
	if o.fixed != nil {
		return o.fixed(s, g, right)
	}
	x := s.In(g)
	if x.DType() != torch.F64 && x.DType() != torch.F32 {
		x = x.To(torch.F32)
	}
	u, _, vh := x.SVD()
	k := int64(o.cfg.Rank)
	if right {
		k = min(k, vh.Size(0))
		return signFix(vh.Narrow(0, 0, k), 1)
	}
	k = min(k, u.Size(1))
	return signFix(u.Narrow(1, 0, k), 0)
}

// signFix flips each vector of b (rows for dim 1: the entries run along dim 1; columns
// for dim 0) so that its entry of largest magnitude is positive.
func signFix(b *torch.Tensor, dim int64) *torch.Tensor {
	idx := b.Abs().Argmax(dim, true)
	sign := b.Gather(dim, idx).Sign()
	sign = torch.Where(sign.EqScalar(0), sign.OnesLike(), sign)
	return b.Mul(sign)
}

// ObserveLoss does nothing for GaLore.
func (o *GaLore) ObserveLoss(float64) {}

// ProjectionBytes is the storage of the projection matrices.
func (o *GaLore) ProjectionBytes() int64 {
	var n int64
	for _, st := range o.proj {
		if st.p.Valid() {
			n += st.p.NBytes()
		}
	}
	return n
}

// StateBytes is the storage of the projections, the projected moments (and master
// copies) of the targets and the AdamW moments of the other tensors.
func (o *GaLore) StateBytes() int64 {
	n := o.adam.bytes()
	for _, st := range o.proj {
		n += st.bytes()
	}
	return n
}

type galoreParamMeta struct {
	Step   int64 `json:"step"`
	Right  bool  `json:"right"`
	Init   bool  `json:"init"`
	Master bool  `json:"master,omitempty"`
	// QuantBlock is the block size of 8-bit projected moments (0: ordinary moments).
	QuantBlock int64 `json:"quant_block,omitempty"`
}

type galoreMeta struct {
	Method    string                     `json:"method"`
	Params    map[string]stateMeta       `json:"params"` // the AdamW tensors
	Projected map[string]galoreParamMeta `json:"projected"`
	Rank      int                        `json:"rank"`
	Gap       int                        `json:"update_proj_gap"`
	Scale     float64                    `json:"scale"`
	Begun     bool                       `json:"begun"`
}

// GaLore state tensor names: "<name>.galore_proj", "<name>.galore_exp_avg",
// "<name>.galore_exp_avg_sq" (and "<name>.galore_master"); with 8-bit moments the two
// moments are uint8 codes and "<name>.galore_exp_avg.absmax",
// "<name>.galore_exp_avg_sq.absmax" their float32 maxima.
const (
	galoreProj   = ".galore_proj"
	galoreM      = ".galore_exp_avg"
	galoreV      = ".galore_exp_avg_sq"
	galoreMaster = ".galore_master"
)

// SaveState snapshots the projections, projected moments and step counts of the
// targets and the AdamW state of the others.
func (o *GaLore) SaveState() (*State, error) {
	var st *State
	err := catch(func() error {
		ts, meta := o.adam.snapshot()
		gm := galoreMeta{Method: o.Name(), Params: meta, Projected: map[string]galoreParamMeta{}, Rank: o.cfg.Rank,
			Gap: o.cfg.UpdateProjGap, Scale: o.cfg.Scale, Begun: o.begun}
		for _, p := range o.order {
			x := o.proj[p]
			pm := galoreParamMeta{Step: x.step, Right: x.right, Init: x.p.Valid(), Master: x.master.Valid()}
			gm.Projected[p.Name] = pm
			if pm.Init {
				ts[p.Name+galoreProj], ts[p.Name+galoreM], ts[p.Name+galoreV] = x.p, x.m, x.v
				if x.quantized() {
					pm.QuantBlock = quantBlock
					gm.Projected[p.Name] = pm
					ts[p.Name+galoreM+absmaxSuffix], ts[p.Name+galoreV+absmaxSuffix] = x.am, x.av
				}
			}
			if pm.Master {
				ts[p.Name+galoreMaster] = x.master
			}
		}
		b, err := json.Marshal(gm)
		st = &State{Tensors: ts, Meta: b}
		return err
	})
	return st, err
}

// LoadState restores a snapshot made by SaveState of a GaLore with the same targets
// and rank.
func (o *GaLore) LoadState(st *State) error {
	var gm galoreMeta
	if err := decodeMeta(st, o.Name(), &gm); err != nil {
		return err
	}
	if gm.Rank != o.cfg.Rank {
		return fmt.Errorf("blockllm: galore: saved state has rank %d, this GaLore %d", gm.Rank, o.cfg.Rank)
	}
	var names []string
	for _, p := range o.order {
		names = append(names, p.Name)
	}
	var saved []string
	for n := range gm.Projected {
		saved = append(saved, n)
	}
	sort.Strings(saved)
	want := append([]string(nil), names...)
	sort.Strings(want)
	if strings.Join(saved, ",") != strings.Join(want, ",") {
		return fmt.Errorf("blockllm: galore: saved state projects %d weights (%s), this GaLore %d (%s)",
			len(saved), summarize(saved), len(want), summarize(want))
	}
	adamTs := map[string]*torch.Tensor{}
	for k, t := range st.Tensors {
		if !strings.Contains(k, ".galore_") {
			adamTs[k] = t
		}
	}
	return catch(func() error {
		fresh := map[*nn.Param]*projected{}
		ok := false
		defer func() {
			if !ok {
				for _, x := range fresh {
					x.free()
				}
			}
		}()
		used := 0
		for _, p := range o.order {
			pm := gm.Projected[p.Name]
			x := &projected{step: pm.Step, right: p.T.Size(0) >= p.T.Size(1)}
			fresh[p] = x
			if pm.Right != x.right {
				return fmt.Errorf("blockllm: galore: saved state projects %q on the %s, this weight is %v", p.Name, side(pm.Right), p.T.Shape())
			}
			if !pm.Init {
				continue
			}
			dt := o.stateDType(p)
			load := func(suffix string, dt torch.DType) (*torch.Tensor, error) {
				src := st.Tensors[p.Name+suffix]
				if src == nil {
					return nil, fmt.Errorf("blockllm: galore: saved state lacks tensor %q", p.Name+suffix)
				}
				used++
				if src.DType() != dt || src.Dim() != 2 {
					return nil, fmt.Errorf("blockllm: galore: tensor %q is %v %v, want a 2-D %v", p.Name+suffix, src.DType(), src.Shape(), dt)
				}
				t := o.store.Empty(src.Shape(), dt, p.T.Device())
				t.CopyFrom(src)
				return t, nil
			}
			var err error
			if x.p, err = load(galoreProj, dt); err != nil {
				return err
			}
			m, n, k := p.T.Size(0), p.T.Size(1), x.p.Shape()
			wantP, wantM := []int64{k[0], n}, []int64{m, k[0]}
			if !x.right {
				wantP, wantM = []int64{m, k[1]}, []int64{k[1], n}
			}
			// 8-bit or not must match this GaLore's setting for moments of this size
			quant, err := o.adam.checkQuant(p.Name+galoreM, pm.QuantBlock, wantM[0]*wantM[1])
			if err != nil {
				return err
			}
			mdt := dt
			if quant {
				mdt = torch.U8
			}
			if x.m, err = load(galoreM, mdt); err != nil {
				return err
			}
			if x.v, err = load(galoreV, mdt); err != nil {
				return err
			}
			if fmt.Sprint(k) != fmt.Sprint(wantP) || fmt.Sprint(x.m.Shape()) != fmt.Sprint(wantM) || fmt.Sprint(x.v.Shape()) != fmt.Sprint(wantM) {
				return fmt.Errorf("blockllm: galore: saved projection of %q is %v with moments %v, which do not fit the weight %v", p.Name, k, x.m.Shape(), p.T.Shape())
			}
			if quant {
				nb := numBlocks(wantM[0] * wantM[1])
				for _, dst := range []struct {
					key string
					t   **torch.Tensor
				}{{galoreM + absmaxSuffix, &x.am}, {galoreV + absmaxSuffix, &x.av}} {
					src := st.Tensors[p.Name+dst.key]
					if src == nil || src.DType() != torch.F32 || src.Dim() != 1 || src.Size(0) != nb {
						return fmt.Errorf("blockllm: galore: saved state lacks tensor %q (float32, %d values)", p.Name+dst.key, nb)
					}
					used++
					*dst.t = o.store.Empty([]int64{nb}, torch.F32, p.T.Device())
					(*dst.t).CopyFrom(src)
				}
			}
			if pm.Master {
				if x.master, err = load(galoreMaster, torch.F32); err != nil {
					return err
				}
			}
		}
		if used+len(adamTs) != len(st.Tensors) {
			for k := range st.Tensors {
				if _, isAdam := adamTs[k]; !isAdam && !strings.HasSuffix(k, galoreProj) && !strings.HasSuffix(k, galoreM) &&
					!strings.HasSuffix(k, galoreV) && !strings.HasSuffix(k, galoreMaster) && !strings.HasSuffix(k, absmaxSuffix) {
					return fmt.Errorf("blockllm: galore: unexpected optimizer tensor %q", k)
				}
			}
			return fmt.Errorf("blockllm: galore: saved state has %d projection tensors not described by its metadata", len(st.Tensors)-len(adamTs)-used)
		}
		if err := o.adam.restore(adamTs, gm.Params, paramIndex(o.rest)); err != nil {
			return err
		}
		for _, x := range o.proj {
			x.free()
		}
		o.proj = fresh
		o.begun = gm.Begun
		ok = true
		return nil
	})
}

func side(right bool) string {
	if right {
		return "right"
	}
	return "left"
}

// Close frees the optimizer state.
func (o *GaLore) Close() {
	for _, x := range o.proj {
		x.free()
	}
	o.adam.close()
	o.store.Close()
}
