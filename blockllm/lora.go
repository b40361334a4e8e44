package blockllm

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// LoRA defaults. The rank and alpha are those of the LoRA authors' RoBERTa-base GLUE
// scripts (microsoft/LoRA examples/NLU/roberta_base_*.sh: --lora_r 8 --lora_alpha 16);
// the dropout default is peft's (0; the commands use 0.1 for GLUE, peft's sequence-
// classification example, and 0.05 for causal LMs).
const (
	DefaultLoRARank  = 8
	DefaultLoRAAlpha = 16
)

// AllLinear is the Targets value that adapts every linear layer the model applies
// through adapters (peft's "all-linear": the transformer layers' projections, never
// the output layer).
const AllLinear = "all-linear"

// LoRAConfig configures LoRA (Hu et al., 2021) as Hugging Face peft's LoraConfig does:
// frozen base weights W, trainable adapters A [r, in] and B [out, r] on the target
// modules, whose output gains (alpha/r)·B·A·dropout(x).
type LoRAConfig struct {
	// Adam holds the AdamW hyper-parameters of the adapters and fully trained modules.
	Adam AdamConfig
	// Rank is r; 0 means DefaultLoRARank.
	Rank int
	// Alpha is lora_alpha (scaling alpha/r); 0 means DefaultLoRAAlpha.
	Alpha float64
	// RSLoRA scales by alpha/sqrt(r) instead (peft's use_rslora).
	RSLoRA bool
	// Dropout is the probability of peft's lora_dropout on the adapter input in
	// training passes (0: none, peft's default).
	Dropout float64
	// Targets are peft's target_modules as a list: a module (a linear layer's weight
	// name without ".weight") is adapted when it equals a target or ends with "."+target.
	// AllLinear adapts every linear layer. Empty: peft's default for the model family,
	// q_proj,v_proj for Llama and query,value for RoBERTa.
	Targets []string
	// TargetRegex, when set, replaces Targets: module names it matches whole are adapted
	// (peft's target_modules given as a string).
	TargetRegex string
	// Train lists modules trained in full beside the adapters (peft's modules_to_save): a
	// parameter's module trains when it equals an entry, ends with "."+entry, or lies
	// inside one ("classifier" covers "classifier.dense"); task heads (nn.Param.Head: the
	// classifier) always train.
	Train []string
	// TrainRest trains in full every parameter that is not adapted (embeddings, norms,
	// LM head): the LoRA baseline of the GaLore paper's pretraining table (ReLoRA's
	// code), for a model trained from scratch.
	TrainRest bool
	// Seed draws A (Kaiming-uniform) and the dropout masks.
	Seed uint64
}

func (c LoRAConfig) withDefaults() LoRAConfig {
	if c.Rank == 0 {
		c.Rank = DefaultLoRARank
	}
	if c.Alpha == 0 {
		c.Alpha = DefaultLoRAAlpha
	}
	c.Adam = c.Adam.withDefaults()
	return c
}

// Scaling is the factor of B·A: alpha/r, or alpha/sqrt(r) with RSLoRA.
func (c LoRAConfig) Scaling() float64 {
	c = c.withDefaults()
	if c.RSLoRA {
		return c.Alpha / math.Sqrt(float64(c.Rank))
	}
	return c.Alpha / float64(c.Rank)
}

// adapter is the LoRA pair of one target weight.
type adapter struct {
	base *nn.Param // the frozen weight W [out, in]
	a, b *nn.Param // lora_A [r, in], lora_B [out, r]
}

// LoRA trains low-rank adapters on the target linear layers of a model (whose base
// weights stay frozen) and, in full, the task heads and the modules of Train. It is an
// Optimizer: it owns the adapter tensors (Trainable returns them with the fully trained
// parameters; StateBytes counts them beside their Adam moments) and installs itself
// as the model's nn.Adapter, so the model's forward passes (training and evaluation)
// compute W·x + (alpha/r)·B·A·dropout(x), as peft's lora.Linear does. The adapters are
// float32 for bf16/f16 weights (peft's autocast_adapter_dtype), else the weights' dtype.
//
// SaveAdapter writes the adapters in peft's layout; Merged runs a function (a save)
// with the adapters merged into the weights; LoadLoRAAdapter reads peft's layout back.
type LoRA struct {
	cfg       LoRAConfig
	model     nn.Model
	scale     float64
	store     *nn.Params // the adapter parameters
	adapters  []*adapter // model order
	byBase    map[*nn.Param]*adapter
	full      []*nn.Param // trained in full
	trainable []*nn.Param
	adam      *adamState
	gen       *torch.Generator // dropout masks
	merged    bool
	begun     bool
	steps     int64
}

// NewLoRA adds adapters to m's target modules (A Kaiming-uniform as nn.Linear and peft,
// B zero: the first forward equals the base model's) and returns the optimizer. m must
// apply its linear layers through nn.Params.Linear (nn.Adaptable: hf/llama, hf/roberta).
func NewLoRA(m nn.Model, cfg LoRAConfig) (*LoRA, error) {
	if m == nil {
		return nil, fmt.Errorf("blockllm: nil model")
	}
	cfg = cfg.withDefaults()
	if err := cfg.Adam.validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Rank < 0:
		return nil, fmt.Errorf("blockllm: lora: rank %d must be positive", cfg.Rank)
	case cfg.Alpha < 0 || math.IsNaN(cfg.Alpha) || math.IsInf(cfg.Alpha, 0):
		return nil, fmt.Errorf("blockllm: lora: alpha %g must be positive", cfg.Alpha)
	case cfg.Dropout < 0 || cfg.Dropout >= 1 || math.IsNaN(cfg.Dropout):
		return nil, fmt.Errorf("blockllm: lora: dropout %g outside [0, 1)", cfg.Dropout)
	}
	ad, ok := m.(nn.Adaptable)
	if !ok {
		return nil, fmt.Errorf("blockllm: lora: the model (%T) does not apply its linear layers through adapters (nn.Adaptable)", m)
	}
	linear := false
	for _, p := range m.Parameters() {
		linear = linear || p.Linear
	}
	if !linear {
		return nil, fmt.Errorf("blockllm: lora: the model (%T) does not apply its linear layers through adapters (no nn.Param.Linear weight)", m)
	}
	if err := checkRecompute(m, cfg.Dropout); err != nil {
		return nil, err
	}
	targets, full, err := loraTargets(m.Parameters(), cfg)
	if err != nil {
		return nil, err
	}
	o := &LoRA{cfg: cfg, model: m, scale: cfg.Scaling(), store: nn.NewParams("lora"), byBase: map[*nn.Param]*adapter{},
		adam: newAdamState(cfg.Adam)}
	err = catch(func() error {
		g := torch.NewGenerator(cfg.Seed, torch.CPU)
		defer g.Close()
		r := int64(cfg.Rank)
		for _, p := range targets {
			out, in := p.T.Size(0), p.T.Size(1)
			dt := adapterDType(p.T.DType())
			dev := p.T.Device()
			// kaiming_uniform_(a=sqrt(5)) on [r, in]: gain sqrt(2/(1+5)), bound
			// gain*sqrt(3/fan_in) = 1/sqrt(in); drawn in float32 on the CPU.
			bound := 1 / math.Sqrt(float64(in))
			s := torch.NewScope()
			u := s.Rand([]int64{r, in}, torch.F32, torch.CPU, g).MulScalar(2 * bound).AddScalar(-bound)
			at := u.ToDevice(dt, dev).Contiguous().MoveTo(o.store.Store)
			s.Close()
			bt := o.store.Store.Zeros([]int64{out, r}, dt, dev)
			module := strings.TrimSuffix(p.Name, ".weight")
			a := o.store.Add(module+".lora_A.weight", at.SetRequiresGrad(true), p.Layer)
			b := o.store.Add(module+".lora_B.weight", bt.SetRequiresGrad(true), p.Layer)
			x := &adapter{base: p, a: a, b: b}
			o.adapters = append(o.adapters, x)
			o.byBase[p] = x
		}
		o.gen = torch.NewGenerator(cfg.Seed^0x6c6f7261, m.Device())
		return nil
	})
	if err != nil {
		o.Close()
		return nil, err
	}
	o.full = full
	for _, p := range m.Parameters() {
		if containsParam(full, p) {
			o.trainable = append(o.trainable, p)
		}
		if x := o.byBase[p]; x != nil {
			o.trainable = append(o.trainable, x.a, x.b)
		}
	}
	ad.SetAdapter(o.adapt)
	return o, nil
}

func containsParam(ps []*nn.Param, p *nn.Param) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// adapterDType is peft's adapter dtype for a weight dtype: float32 for half types
// (autocast_adapter_dtype), else the weight's.
func adapterDType(dt torch.DType) torch.DType {
	if dt == torch.BF16 || dt == torch.F16 {
		return torch.F32
	}
	return dt
}

// checkRecompute refuses adapter dropout on a model that recomputes activations in
// backward: the recompute would draw other dropout masks than the forward pass.
func checkRecompute(m nn.Model, dropout float64) error {
	if rc, ok := m.(interface{ Recomputes() bool }); ok && dropout > 0 && rc.Recomputes() {
		return fmt.Errorf("blockllm: lora: adapter dropout %g cannot be used with activation recompute (the recomputed pass would draw other masks): set the dropout to 0 or turn recompute off", dropout)
	}
	return nil
}

// loraTargets resolves the adapted weights and the fully trained parameters of ps.
func loraTargets(ps []*nn.Param, cfg LoRAConfig) (targets, full []*nn.Param, err error) {
	match, desc, err := targetMatcher(ps, cfg)
	if err != nil {
		return nil, nil, err
	}
	used := map[string]bool{}
	var notLinear []string
	for _, p := range ps {
		module, ok := strings.CutSuffix(p.Name, ".weight")
		if !ok || p.Head {
			continue // peft never adapts a module it trains in full (modules_to_save)
		}
		t := match(module)
		if t == "" || (t == AllLinear && !p.Linear) {
			continue
		}
		if !p.Linear || p.T.Dim() != 2 {
			notLinear = append(notLinear, module)
			continue
		}
		used[t] = true
		targets = append(targets, p)
	}
	if len(notLinear) > 0 {
		return nil, nil, fmt.Errorf("blockllm: lora: target modules %s match %s, which the model does not apply as adapted linear layers (linear layers: %s)",
			desc, strings.Join(notLinear, ", "), linearSummary(ps))
	}
	if cfg.TargetRegex == "" {
		var missing []string
		for _, t := range cfg.Targets {
			if !used[t] && t != AllLinear {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			return nil, nil, fmt.Errorf("blockllm: lora: target modules %s not found in the model (linear layers: %s)", strings.Join(missing, ", "), linearSummary(ps))
		}
	}
	if len(targets) == 0 {
		return nil, nil, fmt.Errorf("blockllm: lora: target modules %s match no linear layer (linear layers: %s)", desc, linearSummary(ps))
	}
	tr := func(module string) bool {
		for _, m := range cfg.Train {
			if module == m || strings.HasSuffix(module, "."+m) || strings.HasPrefix(module, m+".") || strings.Contains(module, "."+m+".") {
				return true
			}
		}
		return false
	}
	isTarget := map[*nn.Param]bool{}
	for _, p := range targets {
		isTarget[p] = true
	}
	trainUsed := map[string]bool{}
	for _, p := range ps {
		if isTarget[p] {
			continue
		}
		module := p.Name[:max(0, strings.LastIndex(p.Name, "."))]
		switch {
		case p.Head || cfg.TrainRest:
			full = append(full, p)
		case tr(module):
			full = append(full, p)
			for _, m := range cfg.Train {
				if module == m || strings.HasSuffix(module, "."+m) || strings.HasPrefix(module, m+".") || strings.Contains(module, "."+m+".") {
					trainUsed[m] = true
				}
			}
		}
	}
	for _, m := range cfg.Train {
		if !trainUsed[m] && !cfg.TrainRest {
			return nil, nil, fmt.Errorf("blockllm: lora: module to train in full %q not found among the model's non-adapted modules", m)
		}
	}
	return targets, full, nil
}

// targetMatcher returns the function naming the target a module matches ("" none).
func targetMatcher(ps []*nn.Param, cfg LoRAConfig) (func(string) string, string, error) {
	if cfg.TargetRegex != "" {
		re, err := regexp.Compile("^(?:" + cfg.TargetRegex + ")$")
		if err != nil {
			return nil, "", fmt.Errorf("blockllm: lora: target regular expression %q: %w", cfg.TargetRegex, err)
		}
		return func(m string) string {
			if re.MatchString(m) {
				return cfg.TargetRegex
			}
			return ""
		}, fmt.Sprintf("%q", cfg.TargetRegex), nil
	}
	targets := cfg.Targets
	if len(targets) == 0 {
		targets = DefaultLoRATargets(ps)
		if len(targets) == 0 {
			return nil, "", fmt.Errorf("blockllm: lora: no default target modules for this model (linear layers: %s): name them", linearSummary(ps))
		}
	}
	for _, t := range targets {
		if t == AllLinear && len(targets) > 1 {
			return nil, "", fmt.Errorf("blockllm: lora: %q cannot be combined with other target modules", AllLinear)
		}
	}
	return func(m string) string {
		for _, t := range targets {
			if t == AllLinear || m == t || strings.HasSuffix(m, "."+t) {
				return t
			}
		}
		return ""
	}, strings.Join(targets, ","), nil
}

// DefaultLoRATargets is peft's default target_modules for the model family of ps:
// q_proj,v_proj for Llama, query,value for RoBERTa, nil for others.
func DefaultLoRATargets(ps []*nn.Param) []string {
	for _, p := range ps {
		switch {
		case strings.HasSuffix(p.Name, ".q_proj.weight"):
			return []string{"q_proj", "v_proj"}
		case strings.HasSuffix(p.Name, ".query.weight"):
			return []string{"query", "value"}
		}
	}
	return nil
}

// linearSummary names the distinct linear module suffixes of ps ("q_proj, k_proj, ...").
func linearSummary(ps []*nn.Param) string {
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		if !p.Linear {
			continue
		}
		m := strings.TrimSuffix(p.Name, ".weight")
		if i := strings.Index(m, ".layers."); i >= 0 {
			m = m[i+len(".layers."):]
		} else if i := strings.Index(m, ".layer."); i >= 0 {
			m = m[i+len(".layer."):]
		}
		if j := strings.Index(m, "."); j >= 0 {
			m = m[j+1:] // drop the layer index
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// adapt is the model's nn.Adapter: (alpha/r)·B·A·dropout(x) for a target weight.
func (o *LoRA) adapt(p *nn.Param, x *torch.Tensor, train bool) *torch.Tensor {
	ad := o.byBase[p]
	if ad == nil || o.merged {
		return nil
	}
	h := x
	if dt := ad.a.T.DType(); h.DType() != dt {
		h = h.To(dt)
	}
	if q := o.cfg.Dropout; train && q > 0 {
		// nn.Dropout's function (x times a kept/(1-p) mask) with masks drawn from the
		// optimizer's own generator, whose state checkpoints carry (bit-for-bit resume);
		// autograd keeps the mask it needs when the temporary scope closes
		s := torch.NewScope()
		mask := s.Rand(h.Shape(), torch.F32, h.Device(), o.gen).LtScalar(1 - q).To(h.DType()).DivScalar(1 - q)
		h = h.Mul(mask)
		s.Close()
	}
	return h.Linear(ad.a.T, nil).Linear(ad.b.T, nil).MulScalar(o.scale)
}

// Name returns "lora".
func (o *LoRA) Name() string { return "lora" }

// Prepare (re)installs the adapter on the model; changed is true on the first call.
func (o *LoRA) Prepare(*nn.Batch) (bool, error) {
	if err := checkRecompute(o.model, o.cfg.Dropout); err != nil {
		return false, err
	}
	o.model.(nn.Adaptable).SetAdapter(o.adapt)
	changed := !o.begun
	o.begun = true
	return changed, nil
}

// Trainable lists the fully trained parameters and the adapters (each after its base
// weight), in model order.
func (o *LoRA) Trainable() []*nn.Param { return o.trainable }

// Adapters lists the adapter parameters (lora_A and lora_B of each target, in model
// order) under peft's names without the "base_model.model." prefix.
func (o *LoRA) Adapters() []*nn.Param { return o.store.Parameters() }

// Targets lists the adapted weights, in model order.
func (o *LoRA) Targets() []*nn.Param {
	out := make([]*nn.Param, len(o.adapters))
	for i, x := range o.adapters {
		out[i] = x.base
	}
	return out
}

// FullyTrained lists the parameters trained in full (heads, Train, TrainRest).
func (o *LoRA) FullyTrained() []*nn.Param { return append([]*nn.Param(nil), o.full...) }

// Config returns the settings (defaults filled in).
func (o *LoRA) Config() LoRAConfig { return o.cfg }

// Step updates the adapters and fully trained parameters that have gradients (AdamW)
// and frees the gradients.
func (o *LoRA) Step(lr float64) error {
	if o.merged {
		return fmt.Errorf("blockllm: lora: Step while the adapters are merged")
	}
	err := catch(func() error { return o.adam.stepParams(o.trainable, lr, nil) })
	if err == nil {
		o.steps++
	}
	return err
}

// ObserveLoss does nothing for LoRA.
func (o *LoRA) ObserveLoss(float64) {}

// AdapterBytes is the storage of the adapter tensors.
func (o *LoRA) AdapterBytes() int64 { return o.store.Bytes() }

// StateBytes is the storage of the adapters (A and B) plus the Adam moments of the
// adapters and fully trained parameters.
func (o *LoRA) StateBytes() int64 { return o.AdapterBytes() + o.adam.bytes() }

type loraMeta struct {
	Method  string               `json:"method"`
	Params  map[string]stateMeta `json:"params"`
	Begun   bool                 `json:"begun"`
	Steps   int64                `json:"steps"`
	Rank    int                  `json:"rank"`
	Alpha   float64              `json:"alpha"`
	RSLoRA  bool                 `json:"rslora,omitempty"`
	Dropout float64              `json:"dropout"`
	Targets []string             `json:"targets"` // adapted weights
	Full    []string             `json:"full"`    // trained in full
	RNG     []byte               `json:"rng"`     // dropout generator state
}

// adapterKey is the optimizer-state name of an adapter tensor.
const adapterKey = "adapter."

// SaveState snapshots the adapters ("adapter.<peft name>"), their Adam moments and step
// counts, and the dropout generator.
func (o *LoRA) SaveState() (*State, error) {
	var st *State
	err := catch(func() error {
		ts, meta := o.adam.snapshot()
		for _, p := range o.store.Parameters() {
			ts[adapterKey+p.Name] = p.T
		}
		m := loraMeta{Method: o.Name(), Params: meta, Begun: o.begun, Steps: o.steps, Rank: o.cfg.Rank, Alpha: o.cfg.Alpha,
			RSLoRA: o.cfg.RSLoRA, Dropout: o.cfg.Dropout, RNG: o.gen.State()}
		for _, x := range o.adapters {
			m.Targets = append(m.Targets, x.base.Name)
		}
		for _, p := range o.full {
			m.Full = append(m.Full, p.Name)
		}
		b, err := json.Marshal(m)
		st = &State{Tensors: ts, Meta: b}
		return err
	})
	return st, err
}

// LoadState restores a snapshot made by SaveState of a LoRA with the same targets,
// rank, alpha and fully trained set.
func (o *LoRA) LoadState(st *State) error {
	var m loraMeta
	if err := decodeMeta(st, o.Name(), &m); err != nil {
		return err
	}
	var targets, full []string
	for _, x := range o.adapters {
		targets = append(targets, x.base.Name)
	}
	for _, p := range o.full {
		full = append(full, p.Name)
	}
	switch {
	case m.Rank != o.cfg.Rank || m.Alpha != o.cfg.Alpha || m.RSLoRA != o.cfg.RSLoRA:
		return fmt.Errorf("blockllm: lora: saved state has rank %d, alpha %g (rslora %v); this LoRA rank %d, alpha %g (rslora %v)",
			m.Rank, m.Alpha, m.RSLoRA, o.cfg.Rank, o.cfg.Alpha, o.cfg.RSLoRA)
	case strings.Join(m.Targets, ",") != strings.Join(targets, ","):
		return fmt.Errorf("blockllm: lora: saved state adapts %d modules (%s), this LoRA %d (%s)",
			len(m.Targets), summarize(m.Targets), len(targets), summarize(targets))
	case strings.Join(m.Full, ",") != strings.Join(full, ","):
		return fmt.Errorf("blockllm: lora: saved state trains %d parameters in full (%s), this LoRA %d (%s)",
			len(m.Full), summarize(m.Full), len(full), summarize(full))
	}
	adamTs := map[string]*torch.Tensor{}
	for k, t := range st.Tensors {
		if !strings.HasPrefix(k, adapterKey) {
			adamTs[k] = t
		}
	}
	return catch(func() error {
		ps := o.store.Parameters()
		for _, p := range ps {
			src := st.Tensors[adapterKey+p.Name]
			if src == nil {
				return fmt.Errorf("blockllm: lora: saved state lacks adapter tensor %q", adapterKey+p.Name)
			}
			if fmt.Sprint(src.Shape()) != fmt.Sprint(p.T.Shape()) || src.DType() != p.T.DType() {
				return fmt.Errorf("blockllm: lora: adapter tensor %q is %v %v, want %v %v", adapterKey+p.Name, src.DType(), src.Shape(), p.T.DType(), p.T.Shape())
			}
		}
		if n := len(st.Tensors) - len(adamTs); n != len(ps) {
			return fmt.Errorf("blockllm: lora: saved state has %d adapter tensors, this LoRA %d", n, len(ps))
		}
		if err := o.adam.restore(adamTs, m.Params, paramIndex(o.trainable)); err != nil {
			return err
		}
		for _, p := range ps {
			p.T.CopyFrom(st.Tensors[adapterKey+p.Name])
		}
		o.gen.SetState(m.RNG)
		o.begun, o.steps = m.Begun, m.Steps
		return nil
	})
}

// summarize shortens a list of names for an error message.
func summarize(names []string) string {
	if len(names) <= 4 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + fmt.Sprintf(", ... (%d more)", len(names)-3)
}

// Merged runs f with the adapters merged into the base weights (W += (alpha/r)·B·A, in
// the weight's dtype, as peft's merge) and the adapter path off, so that f sees the
// model a Hugging Face checkpoint of it would hold (f saves it); the weights are then
// restored exactly from a copy of the adapted ones.
func (o *LoRA) Merged(f func() error) error {
	if o.merged {
		return f()
	}
	var orig []*torch.Tensor
	sc := torch.NewStore("lora-merge")
	defer sc.Close()
	err := catch(func() error {
		torch.NoGrad(func() {
			for _, x := range o.adapters {
				s := torch.NewScope()
				orig = append(orig, s.In(x.base.T).Clone().MoveTo(sc))
				s.Close()
			}
			for _, x := range o.adapters {
				s := torch.NewScope()
				d := o.delta(s, x)
				x.base.T.AddInPlace(d, 1)
				s.Close()
			}
		})
		return nil
	})
	if err != nil {
		o.restore(orig)
		return err
	}
	o.merged = true
	ferr := f()
	o.merged = false
	if err := o.restore(orig); err != nil {
		return err
	}
	return ferr
}

// restore copies the saved base weights back (after Merged).
func (o *LoRA) restore(orig []*torch.Tensor) error {
	return catch(func() error {
		for i, t := range orig {
			o.adapters[i].base.T.CopyFrom(t)
		}
		return nil
	})
}

// delta is (alpha/r)·B·A of x in s, in the adapter's dtype.
func (o *LoRA) delta(s *torch.Scope, x *adapter) *torch.Tensor {
	return s.In(x.b.T).Matmul(x.a.T).MulScalar(o.scale)
}

// Close removes the adapter from the model and frees the adapters and the Adam state.
func (o *LoRA) Close() {
	if ad, ok := o.model.(nn.Adaptable); ok && o.model != nil {
		ad.SetAdapter(nil)
	}
	if o.adam != nil {
		o.adam.close()
	}
	if o.store != nil {
		o.store.Close()
	}
	if o.gen != nil {
		o.gen.Close()
		o.gen = nil
	}
}
