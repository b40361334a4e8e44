package blockllm

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Optimizer is what the Trainer drives. One optimizer step is:
//
//	changed, err := opt.Prepare(batch) // first micro-batch of the step
//	// trainer: if changed, set requires_grad on exactly opt.Trainable()
//	// trainer: forward/backward over the micro-batches, clip gradients
//	err = opt.Step(lr)                 // update Trainable() from .grad, free the grads
//	opt.ObserveLoss(loss)
//
// Implementations are not safe for concurrent use.
type Optimizer interface {
	// Name is the method name: "adamw", "blockllm", "badam", "lisa", "galore" or "lora".
	Name() string
	// Prepare is called at the start of every optimizer step with the step's first
	// micro-batch (owned by the caller). BlockLLM runs its selection pass on it when a
	// selection is due. changed reports that Trainable() differs from the last call
	// (always true on the first call).
	Prepare(b *nn.Batch) (changed bool, err error)
	// Trainable lists the parameters updated by the next Step, in model order. The
	// slice must not be modified.
	Trainable() []*nn.Param
	// Step applies one update with learning rate lr to every trainable parameter that
	// has a gradient, then frees the gradients (zero_grad(set_to_none=True)).
	Step(lr float64) error
	// ObserveLoss records the training loss of the step just taken.
	ObserveLoss(loss float64)
	// StateBytes is the exact storage of the optimizer state tensors held now.
	StateBytes() int64
	// SaveState snapshots the optimizer for a checkpoint. The tensors are owned by the
	// optimizer and valid until its next Prepare, Step or Close.
	SaveState() (*State, error)
	// LoadState restores a snapshot made by SaveState of an optimizer of the same kind
	// over the same model (tensors are copied to the model's device).
	LoadState(st *State) error
	// Close frees the optimizer state.
	Close()
}

// State is an optimizer snapshot: named tensors (Adam moments, mask indices) and JSON
// metadata (step counts, selection, visit counts, loss history, RNG state).
type State struct {
	Tensors map[string]*torch.Tensor
	Meta    json.RawMessage
}

// AdamConfig holds the torch.optim.AdamW hyper-parameters; the learning rate is given
// to each Step. Zero values mean the defaults noted.
type AdamConfig struct {
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	Eps         float64 // default 1e-8
	WeightDecay float64 // decoupled weight decay; 0 means none
	// StateF32 keeps the moments in float32 whatever the parameter dtype (useful for
	// bf16 weights); otherwise they have the parameter's dtype, as in torch.
	StateF32 bool
	// Fused updates all dense parameters (without master copies) in one multi-tensor
	// call: libtorch's fused AdamW kernel (CUDA with libtorch 2.1+, CPU with 2.4+) when the parameters,
	// gradients and moments share one dtype; elsewhere the same per-tensor math.
	// It cannot be combined with EightBit (an error).
	Fused bool
	// EightBit stores both moments 8-bit, as bitsandbytes' block-wise 8-bit AdamW:
	// uint8 codes of the dynamic (non-linear) maps, signed for the first moment and
	// unsigned for the second, with a float32 absmax per block of 256 values. Each
	// tensor's update dequantises its moments to float32, runs the AdamW math and
	// quantises them again, one tensor at a time (see adam8bit.go). Tensors (or masked
	// coordinate sets) with fewer than EightBitMinSize elements keep ordinary moments.
	EightBit bool
	// EightBitMinSize is bitsandbytes' min_8bit_size: the smallest state quantised with
	// EightBit. 0 means bitsandbytes' default, 4096; 1 quantises every tensor.
	EightBitMinSize int64
	// MasterF32 keeps, for bf16/f16 parameters, a float32 master copy of every tensor
	// being updated (for BlockLLM only the block, or only its masked coordinates), with
	// float32 moments: the update runs on the master and the parameter receives its
	// rounded value, so small updates are not lost to bf16 rounding. The copies count
	// in the state bytes and are freed with the moments.
	MasterF32 bool
}

func (c AdamConfig) withDefaults() AdamConfig {
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

func (c AdamConfig) validate() error {
	switch {
	case c.Beta1 < 0 || c.Beta1 >= 1:
		return fmt.Errorf("blockllm: beta1 %g outside [0, 1)", c.Beta1)
	case c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("blockllm: beta2 %g outside [0, 1)", c.Beta2)
	case c.Eps < 0 || math.IsNaN(c.Eps):
		return fmt.Errorf("blockllm: negative eps %g", c.Eps)
	case c.WeightDecay < 0 || math.IsNaN(c.WeightDecay):
		return fmt.Errorf("blockllm: negative weight decay %g", c.WeightDecay)
	case c.EightBitMinSize < 0:
		return fmt.Errorf("blockllm: negative 8-bit minimum size %d", c.EightBitMinSize)
	case c.EightBit && c.Fused:
		return fmt.Errorf("blockllm: fused multi-tensor AdamW does not apply to 8-bit moments (the 8-bit update runs per tensor); choose one of them")
	}
	return nil
}

// moments is the Adam state of one parameter: dense (m, v shaped like the parameter)
// or masked (idx: int64 flat indices [k]; m, v: [k]). With 8-bit moments m and v are
// uint8 codes and am, av their float32 block maxima (adam8bit.go).
type moments struct {
	m, v   *torch.Tensor
	am, av *torch.Tensor
	idx    *torch.Tensor
	master *torch.Tensor // float32 copy of the parameter (or of its masked coordinates)
	step   int64
}

func (mo *moments) bytes() int64 {
	var n int64
	for _, t := range []*torch.Tensor{mo.m, mo.v, mo.am, mo.av, mo.idx, mo.master} {
		if t.Valid() {
			n += t.NBytes()
		}
	}
	return n
}

func (mo *moments) free() {
	mo.m.Free()
	mo.v.Free()
	mo.am.Free()
	mo.av.Free()
	mo.idx.Free()
	mo.master.Free()
}

// adamState holds per-parameter AdamW state in its own store.
type adamState struct {
	cfg   AdamConfig
	store *torch.Scope
	st    map[*nn.Param]*moments
	// owned, when set (ZeRO-1), says which parameters this rank updates: the others'
	// gradients are freed without an update (their owner broadcasts the result).
	owned func(p *nn.Param) bool
	maps  quantMaps // the 8-bit maps, made with the first 8-bit moments
}

func newAdamState(cfg AdamConfig) *adamState {
	return &adamState{cfg: cfg, store: torch.NewStore("blockllm-adam"), st: map[*nn.Param]*moments{}}
}

func (a *adamState) stateDType(p *nn.Param) torch.DType {
	if a.cfg.StateF32 || a.useMaster(p) {
		return torch.F32
	}
	return p.T.DType()
}

// useMaster reports whether p gets a float32 master copy.
func (a *adamState) useMaster(p *nn.Param) bool {
	dt := p.T.DType()
	return a.cfg.MasterF32 && (dt == torch.BF16 || dt == torch.F16)
}

// ensure returns p's state, creating an empty record (moments made on first Step).
func (a *adamState) ensure(p *nn.Param) *moments {
	mo := a.st[p]
	if mo == nil {
		mo = &moments{}
		a.st[p] = mo
	}
	return mo
}

// drop frees p's state.
func (a *adamState) drop(p *nn.Param) {
	if mo := a.st[p]; mo != nil {
		mo.free()
		delete(a.st, p)
	}
}

// reset frees p's tensors but keeps an empty record (fresh moments on the next step).
func (a *adamState) reset(p *nn.Param) {
	if mo := a.st[p]; mo != nil {
		mo.free()
		a.st[p] = &moments{}
	}
}

func (a *adamState) dropAll() {
	for p := range a.st {
		a.drop(p)
	}
}

func (a *adamState) bytes() int64 {
	n := a.maps.bytes()
	for _, mo := range a.st {
		n += mo.bytes()
	}
	return n
}

func (a *adamState) close() {
	a.dropAll()
	a.store.Close()
}

// update runs one AdamW step on p from its gradient g (owned by s). maskFrac in (0, 1)
// keeps state only for the top ceil(maskFrac*numel) coordinates by |g| chosen at the
// first update after the state was created; other coordinates stay unchanged.
func (a *adamState) update(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr float64, maskFrac float64) {
	if a.quantized(p, maskFrac) {
		a.update8(p, g, lr, maskFrac)
		return
	}
	mo := a.ensure(p)
	c := a.cfg
	dt := a.stateDType(p)
	dev := p.T.Device()
	if maskFrac <= 0 || maskFrac >= 1 {
		a.initDense(p, mo)
		mo.step++
		if mo.master.Valid() {
			torch.AdamWStep(mo.master, g, mo.m, mo.v, lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, mo.step)
			p.T.CopyFrom(mo.master)
			return
		}
		torch.AdamWStep(p.T, g, mo.m, mo.v, lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, mo.step)
		return
	}
	torch.NoGrad(func() {
		gflat := g.Reshape(-1)
		if !mo.idx.Valid() {
			k := maskCount(p.T.Numel(), maskFrac)
			_, idx := gflat.Abs().TopK(k, 0, true)
			mo.idx = idx.MoveTo(a.store)
			mo.m = a.store.Zeros([]int64{k}, dt, dev)
			mo.v = a.store.Zeros([]int64{k}, dt, dev)
			mo.step = 0
			if a.useMaster(p) {
				mo.master = s.In(p.T).Reshape(-1).IndexSelect(0, mo.idx).To(torch.F32).MoveTo(a.store)
			}
		}
		mo.step++
		pflat := s.In(p.T).Reshape(-1)
		gsel := gflat.IndexSelect(0, mo.idx)
		if mo.master.Valid() {
			torch.AdamWStep(mo.master, gsel, mo.m, mo.v, lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, mo.step)
			pflat.IndexPut(mo.idx, s.In(mo.master).To(p.T.DType()), false)
			return
		}
		psel := pflat.IndexSelect(0, mo.idx)
		torch.AdamWStep(psel, gsel, mo.m, mo.v, lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, mo.step)
		pflat.IndexPut(mo.idx, psel, false)
	})
}

// initDense creates zeroed dense moments (and the master copy) on p's first update.
func (a *adamState) initDense(p *nn.Param, mo *moments) {
	if mo.m.Valid() {
		return
	}
	shape := p.T.Shape()
	dt, dev := a.stateDType(p), p.T.Device()
	mo.m = a.store.Zeros(shape, dt, dev)
	mo.v = a.store.Zeros(shape, dt, dev)
	mo.step = 0
	if a.useMaster(p) {
		mo.master = a.store.Empty(shape, torch.F32, dev)
		mo.master.CopyFrom(p.T)
	}
}

// fused reports whether stepParams updates p in its multi-tensor call (AdamConfig.Fused:
// dense, without a master copy).
func (a *adamState) fused(p *nn.Param, frac float64) bool {
	return a.cfg.Fused && (frac <= 0 || frac >= 1) && !a.useMaster(p) && !a.quantized(p, frac)
}

// denseStep readies p's dense moments for the multi-tensor call and counts its step.
func (a *adamState) denseStep(p *nn.Param) *moments {
	mo := a.ensure(p)
	a.initDense(p, mo)
	mo.step++
	return mo
}

// updateOne is stepParams's update of one tensor from its gradient g: through the
// multi-tensor call (libtorch's fused kernel where it applies, in place, with no
// temporaries) when fused, else update.
func (a *adamState) updateOne(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr, frac float64) {
	if a.owned != nil && !a.owned(p) {
		return
	}
	if !a.fused(p, frac) {
		a.update(s, p, g, lr, frac)
		return
	}
	mo := a.denseStep(p)
	c := a.cfg
	torch.AdamWStepMulti([]*torch.Tensor{p.T}, []*torch.Tensor{g}, []*torch.Tensor{mo.m}, []*torch.Tensor{mo.v},
		[]int64{mo.step}, lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, true)
}

// inBackward is an optimizer that can update one trainable tensor from its complete
// gradient during backward (TrainConfig.StepInBackward), as its Step would.
type inBackward interface {
	updateInBackward(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr float64)
}

// stepParams updates every parameter of ps that has a gradient and frees the
// gradients. maskFor gives each parameter's mask fraction (nil: dense). With
// AdamConfig.Fused the dense parameters without master copies are updated in one
// multi-tensor call (libtorch's fused kernel where it applies).
func (a *adamState) stepParams(ps []*nn.Param, lr float64, maskFor func(*nn.Param) float64) error {
	return torch.WithScope(func(s *torch.Scope) error {
		var fp, fg, fm, fv []*torch.Tensor
		var fsteps []int64
		var done []*nn.Param
		for _, p := range ps {
			g := p.T.GradIn(s)
			if g == nil {
				continue
			}
			if a.owned != nil && !a.owned(p) {
				p.T.ZeroGrad(true)
				continue
			}
			frac := 0.0
			if maskFor != nil {
				frac = maskFor(p)
			}
			if a.fused(p, frac) {
				mo := a.denseStep(p)
				fp, fg, fm, fv = append(fp, p.T), append(fg, g), append(fm, mo.m), append(fv, mo.v)
				fsteps = append(fsteps, mo.step)
				done = append(done, p)
				continue
			}
			a.update(s, p, g, lr, frac)
			p.T.ZeroGrad(true)
		}
		if len(fp) > 0 {
			c := a.cfg
			torch.AdamWStepMulti(fp, fg, fm, fv, fsteps, lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, true)
			for _, p := range done {
				p.T.ZeroGrad(true)
			}
		}
		return nil
	})
}

// stateMeta is the per-parameter JSON part of a snapshot.
type stateMeta struct {
	Step   int64 `json:"step"`
	Masked bool  `json:"masked,omitempty"`
	Master bool  `json:"master,omitempty"`
	Init   bool  `json:"init"` // moments exist (false: record only)
	// QuantBlock is set for 8-bit moments: the values per absmax (adam8bit.go).
	QuantBlock int64 `json:"quant_block,omitempty"`
}

// snapshot lists tensors "<name>.exp_avg", "<name>.exp_avg_sq" (and "<name>.mask_index",
// "<name>.master") and per-parameter metadata. 8-bit moments are their uint8 codes, with
// "<name>.exp_avg.absmax" and "<name>.exp_avg_sq.absmax" and the two maps.
func (a *adamState) snapshot() (map[string]*torch.Tensor, map[string]stateMeta) {
	ts := map[string]*torch.Tensor{}
	meta := map[string]stateMeta{}
	a.snapshot8(ts)
	for p, mo := range a.st {
		m := stateMeta{Step: mo.step, Init: mo.m.Valid(), Masked: mo.idx.Valid(), Master: mo.master.Valid()}
		if mo.am.Valid() {
			m.QuantBlock = quantBlock
		}
		meta[p.Name] = m
		if m.Init {
			ts[p.Name+".exp_avg"] = mo.m
			ts[p.Name+".exp_avg_sq"] = mo.v
		}
		if m.QuantBlock != 0 {
			ts[p.Name+".exp_avg"+absmaxSuffix] = mo.am
			ts[p.Name+".exp_avg_sq"+absmaxSuffix] = mo.av
		}
		if m.Masked {
			ts[p.Name+".mask_index"] = mo.idx
		}
		if m.Master {
			ts[p.Name+".master"] = mo.master
		}
	}
	return ts, meta
}

// restore replaces all state from a snapshot; byName resolves parameter names. The
// new state is built before the old one is freed, so a snapshot of this very state
// (or a failed restore) is safe.
func (a *adamState) restore(ts map[string]*torch.Tensor, meta map[string]stateMeta, byName map[string]*nn.Param) (err error) {
	fresh := map[*nn.Param]*moments{}
	var maps quantMaps
	defer func() {
		if err != nil {
			for _, mo := range fresh {
				mo.free()
			}
			maps.free()
		}
	}()
	names := make([]string, 0, len(meta))
	for n := range meta {
		names = append(names, n)
	}
	sort.Strings(names)
	used := map[string]bool{}
	need8 := false
	for _, m := range meta {
		need8 = need8 || (m.Init && m.QuantBlock != 0)
	}
	for _, p := range byName {
		if maps, err = a.restoreMaps(ts, used, need8, p.T.Device()); err != nil {
			return err
		}
		break
	}
	for _, name := range names {
		m := meta[name]
		p := byName[name]
		if p == nil {
			return fmt.Errorf("blockllm: optimizer state for unknown parameter %q", name)
		}
		mo := &moments{step: m.Step}
		fresh[p] = mo
		if !m.Init {
			continue
		}
		dev := p.T.Device()
		dt := a.stateDType(p)
		load := func(key string, want []int64, dt torch.DType) (*torch.Tensor, error) {
			src := ts[key]
			if src == nil {
				return nil, fmt.Errorf("blockllm: optimizer state lacks tensor %q", key)
			}
			used[key] = true
			if fmt.Sprint(src.Shape()) != fmt.Sprint(want) {
				return nil, fmt.Errorf("blockllm: optimizer tensor %q has shape %v, want %v", key, src.Shape(), want)
			}
			if src.DType() != dt {
				return nil, fmt.Errorf("blockllm: optimizer tensor %q has dtype %v, want %v", key, src.DType(), dt)
			}
			t := a.store.Empty(want, dt, dev)
			t.CopyFrom(src)
			return t, nil
		}
		shape := p.T.Shape()
		if m.Masked {
			src := ts[name+".mask_index"]
			if src == nil || src.Dim() != 1 || src.Size(0) > p.Numel() {
				return fmt.Errorf("blockllm: optimizer state lacks a 1-D tensor %q of at most %d indices", name+".mask_index", p.Numel())
			}
			shape = src.Shape()
			if mo.idx, err = load(name+".mask_index", shape, torch.I64); err != nil {
				return err
			}
		}
		var n int64 = 1
		for _, d := range shape {
			n *= d
		}
		var q8 bool
		if q8, err = a.checkQuant(name, m.QuantBlock, n); err != nil {
			return err
		}
		if q8 {
			dt = torch.U8
			if mo.am, err = load(name+".exp_avg"+absmaxSuffix, []int64{numBlocks(n)}, torch.F32); err != nil {
				return err
			}
			if mo.av, err = load(name+".exp_avg_sq"+absmaxSuffix, []int64{numBlocks(n)}, torch.F32); err != nil {
				return err
			}
		}
		if mo.m, err = load(name+".exp_avg", shape, dt); err != nil {
			return err
		}
		if mo.v, err = load(name+".exp_avg_sq", shape, dt); err != nil {
			return err
		}
		if m.Master {
			if mo.master, err = load(name+".master", shape, torch.F32); err != nil {
				return err
			}
		}
	}
	for k := range ts {
		if !used[k] {
			return fmt.Errorf("blockllm: unexpected optimizer tensor %q", k)
		}
	}
	a.dropAll()
	a.st = fresh
	a.maps.free()
	a.maps = maps
	return nil
}

// paramIndex maps names to parameters.
func paramIndex(ps []*nn.Param) map[string]*nn.Param {
	m := make(map[string]*nn.Param, len(ps))
	for _, p := range ps {
		m[p.Name] = p
	}
	return m
}

// SetTrainable sets requires_grad on exactly the parameters of trainable among all (the
// Trainer does this after every Prepare that reports a change; callers driving an
// Optimizer themselves must too).
func SetTrainable(all, trainable []*nn.Param) error {
	return catch(func() error { setGrads(all, trainable); return nil })
}

// setGrads sets requires_grad on exactly the parameters of on (others off).
func setGrads(all, on []*nn.Param) {
	in := make(map[*nn.Param]bool, len(on))
	for _, p := range on {
		in[p] = true
	}
	for _, p := range all {
		p.T.SetRequiresGrad(in[p])
	}
}

// numel sums element counts.
func numel(ps []*nn.Param) int64 {
	var n int64
	for _, p := range ps {
		n += p.Numel()
	}
	return n
}

// catch converts a torch panic in f to an error.
func catch(f func() error) (err error) {
	if e := torch.Try(func() { err = f() }); e != nil {
		return fmt.Errorf("blockllm: %w", e)
	}
	return err
}
