package blockllm

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Default BlockLLM settings.
const (
	// DefaultSparsity is the fine-tuning default: 5% of the eligible elements train.
	DefaultSparsity = 0.95
	// DefaultPretrainSparsity is the pretraining default (pass it explicitly).
	DefaultPretrainSparsity = 0.9
	// DefaultPatience is the loss window m of the reselection trigger.
	DefaultPatience = 100
)

// ScoreKind selects how BlockLLM scores a tensor from its gradient.
type ScoreKind int

const (
	// ScoreNorm scores by the gradient's 2-norm (the paper).
	ScoreNorm ScoreKind = iota
	// ScorePerElement scores by the 2-norm divided by sqrt(numel), which does not favour
	// large tensors.
	ScorePerElement
)

// String returns "norm" or "per-element".
func (k ScoreKind) String() string {
	switch k {
	case ScoreNorm:
		return "norm"
	case ScorePerElement:
		return "per-element"
	}
	return fmt.Sprintf("ScoreKind(%d)", int(k))
}

// ParseScoreKind accepts "norm" and "per-element".
func ParseScoreKind(s string) (ScoreKind, error) {
	switch s {
	case "norm", "":
		return ScoreNorm, nil
	case "per-element", "per_element", "perelement":
		return ScorePerElement, nil
	}
	return 0, fmt.Errorf("blockllm: unknown score %q (want norm or per-element)", s)
}

// BlockLLMConfig configures BlockLLM. Zero values mean the defaults noted.
type BlockLLMConfig struct {
	Adam AdamConfig
	// Sparsity is the fraction of eligible elements left out of the block, in [0, 1);
	// 0 means DefaultSparsity (use DefaultPretrainSparsity for pretraining). A very
	// small positive value trains (almost) everything. Tensors are added by descending
	// score while the block holds fewer than Budget() elements, so (as in the paper)
	// the last one may take the block past the budget by less than its own size.
	Sparsity float64
	// Patience is the loss window m of the trigger; 0 means DefaultPatience.
	Patience int
	// CheckEvery is how many steps pass between trigger checks; 0 means 1.
	CheckEvery int
	// NoVisitPenalty scores by gradient alone; by default the score is divided by
	// (1 + the number of earlier selections that chose the tensor).
	NoVisitPenalty bool
	// Score is the gradient score (ScoreNorm by default).
	Score ScoreKind
	// Eligible are regular expressions over parameter names; a parameter is eligible
	// when it matches one (empty: every parameter that is neither an embedding, the LM
	// head nor a task head). Task heads (Param.Head) are always trained, outside the
	// budget.
	Eligible []string
	// Exclude are regular expressions removing parameters from the eligible set.
	Exclude []string
	// MaskFraction in (0, 1) keeps, within each selected tensor, Adam state only for the
	// top ceil(MaskFraction*numel) coordinates by |gradient| at the first update after
	// selection (int64 indices plus values); the other coordinates stay frozen. 0: dense.
	MaskFraction float64
	// KeepMoments keeps the Adam state of tensors that stay in the block across a
	// reselection; by default every selection starts fresh moments.
	KeepMoments bool
	// ProbeRows > 0 runs the selection pass on only the first ProbeRows sequences of the
	// batch; 0 uses the whole batch.
	ProbeRows int
	// ProbeKeepActivations keeps every layer's activations in the selection pass. By
	// default, models that can (nn.Recomputer) recompute them in its backward instead:
	// the pass goes through every layer, so it would otherwise set the peak memory, and
	// it runs once per selection, so the extra forward costs little.
	ProbeKeepActivations bool
}

func (c BlockLLMConfig) withDefaults() BlockLLMConfig {
	c.Adam = c.Adam.withDefaults()
	if c.Sparsity == 0 {
		c.Sparsity = DefaultSparsity
	}
	if c.Patience == 0 {
		c.Patience = DefaultPatience
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = 1
	}
	return c
}

func (c BlockLLMConfig) validate() error {
	if err := c.Adam.validate(); err != nil {
		return err
	}
	switch {
	case !(c.Sparsity >= 0 && c.Sparsity < 1):
		return fmt.Errorf("blockllm: sparsity %g outside [0, 1)", c.Sparsity)
	case c.Patience < 1:
		return fmt.Errorf("blockllm: patience %d must be positive", c.Patience)
	case c.CheckEvery < 1:
		return fmt.Errorf("blockllm: check interval %d must be positive", c.CheckEvery)
	case !(c.MaskFraction >= 0 && c.MaskFraction < 1):
		return fmt.Errorf("blockllm: mask fraction %g outside [0, 1)", c.MaskFraction)
	case c.ProbeRows < 0:
		return fmt.Errorf("blockllm: negative probe rows %d", c.ProbeRows)
	case c.Score != ScoreNorm && c.Score != ScorePerElement:
		return fmt.Errorf("blockllm: unknown score kind %d", int(c.Score))
	}
	return nil
}

// Selection describes one (re)selection of the block.
type Selection struct {
	Index    int       `json:"index"`       // 1 for the first selection
	Step     int64     `json:"step"`        // optimizer steps taken before it
	Names    []string  `json:"names"`       // chosen eligible tensors, by descending score
	Scores   []float64 `json:"scores"`      // their scores
	Norms    []float64 `json:"norms"`       // their gradient norms
	Elements int64     `json:"elements"`    // chosen eligible elements
	Budget   int64     `json:"budget"`      // ceil((1 - sparsity) * eligible elements)
	Eligible int64     `json:"eligible"`    // eligible elements
	Entered  int       `json:"entered"`     // tensors new to the block
	Left     int       `json:"left"`        // tensors that left it
	Freed    int64     `json:"freed_bytes"` // optimizer state bytes freed
	Loss     float64   `json:"probe_loss"`  // loss of the selection pass
}

// BlockLLM is the BlockLLM optimizer over an nn.Model (see the package comment).
type BlockLLM struct {
	cfg   BlockLLMConfig
	model nn.Model

	params   []*nn.Param
	eligible []*nn.Param       // in model order
	slot     map[*nn.Param]int // index into eligible
	heads    []*nn.Param
	eligN    int64

	visits    []int  // per eligible: selections that chose it
	chosen    []bool // per eligible: in the block now
	trainable []*nn.Param

	adam *adamState

	hist       []float64 // losses since the last selection
	sinceCheck int
	due        bool // a selection runs at the next Prepare
	steps      int64
	selections int
	last       Selection
}

// NewBlockLLM returns BlockLLM over m's parameters. The first Prepare selects the first
// block by a selection pass (never at random).
func NewBlockLLM(m nn.Model, cfg BlockLLMConfig) (*BlockLLM, error) {
	if m == nil {
		return nil, fmt.Errorf("blockllm: nil model")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	inc, err := compileAll(cfg.Eligible)
	if err != nil {
		return nil, err
	}
	exc, err := compileAll(cfg.Exclude)
	if err != nil {
		return nil, err
	}
	o := &BlockLLM{cfg: cfg, model: m, params: m.Parameters(), slot: map[*nn.Param]int{}, due: true}
	for _, p := range o.params {
		if p.Head {
			o.heads = append(o.heads, p)
			continue
		}
		ok := !p.Embed
		if len(inc) > 0 {
			ok = matchAny(inc, p.Name)
		}
		if ok && !matchAny(exc, p.Name) {
			o.slot[p] = len(o.eligible)
			o.eligible = append(o.eligible, p)
			o.eligN += p.Numel()
		}
	}
	if len(o.eligible) == 0 {
		return nil, fmt.Errorf("blockllm: no eligible parameters (of %d)", len(o.params))
	}
	o.visits = make([]int, len(o.eligible))
	o.chosen = make([]bool, len(o.eligible))
	o.adam = newAdamState(cfg.Adam)
	return o, nil
}

func compileAll(pats []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, s := range pats {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("blockllm: parameter pattern %q: %w", s, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// Name returns "blockllm".
func (o *BlockLLM) Name() string { return "blockllm" }

// Config returns the configuration with defaults filled in.
func (o *BlockLLM) Config() BlockLLMConfig { return o.cfg }

// Eligible lists the eligible parameters in model order.
func (o *BlockLLM) Eligible() []*nn.Param { return o.eligible }

// Budget is ceil((1 - sparsity) * eligible elements), at least 1.
func (o *BlockLLM) Budget() int64 {
	b := int64(math.Ceil((1 - o.cfg.Sparsity) * float64(o.eligN)))
	return max(b, 1)
}

// Visits returns each eligible parameter's selection count, by name.
func (o *BlockLLM) Visits() map[string]int {
	out := make(map[string]int, len(o.eligible))
	for i, p := range o.eligible {
		out[p.Name] = o.visits[i]
	}
	return out
}

// Selected lists the eligible parameters in the block now, in model order.
func (o *BlockLLM) Selected() []*nn.Param {
	var out []*nn.Param
	for i, p := range o.eligible {
		if o.chosen[i] {
			out = append(out, p)
		}
	}
	return out
}

// Selections is the number of selections made so far.
func (o *BlockLLM) Selections() int { return o.selections }

// LastSelection describes the latest selection (zero before the first).
func (o *BlockLLM) LastSelection() Selection { return o.last }

// Trainable lists the block and the task heads, in model order.
func (o *BlockLLM) Trainable() []*nn.Param { return o.trainable }

// Due reports whether the next Prepare runs a selection.
func (o *BlockLLM) Due() bool { return o.due }

// Prepare runs the selection pass on b when a selection is due (the first call, or the
// trigger fired) and reports whether the block changed.
func (o *BlockLLM) Prepare(b *nn.Batch) (bool, error) {
	if !o.due {
		return false, nil
	}
	var norms []float64
	var loss float64
	err := catch(func() error {
		var err error
		norms, loss, err = o.probe(b)
		return err
	})
	if err != nil {
		return false, err
	}
	o.choose(norms, loss)
	return true, nil
}

// probe runs one forward/backward on b with every eligible tensor behind a norm probe
// and returns the gradient norms (eligible order) and the loss. No gradient is kept.
func (o *BlockLLM) probe(b *nn.Batch) ([]float64, float64, error) {
	if b == nil {
		return nil, 0, fmt.Errorf("blockllm: selection needs a batch")
	}
	var norms []float64
	var loss float64
	err := torch.WithScope(func(s *torch.Scope) error {
		setGrads(o.params, nil)
		dev := o.model.Device()
		token := s.Zeros(nil, torch.F32, dev).SetRequiresGrad(true)
		buf := s.Zeros([]int64{int64(len(o.eligible))}, torch.F64, dev)
		probes := map[*nn.Param]*torch.Tensor{}
		o.model.SetHook(func(_ *torch.Scope, p *nn.Param) *torch.Tensor {
			i, ok := o.slot[p]
			if !ok {
				return p.T
			}
			if !torch.GradEnabled() {
				// a recomputed layer's forward (torch.Checkpoint): no graph, no probe;
				// backward's recompute, with grad on, makes the probe
				return p.T
			}
			if t := probes[p]; t != nil {
				return t // one probe per tensor: the norm of the summed gradient
			}
			t := torch.NormProbe(p.T, token, buf, i)
			probes[p] = t
			return t
		})
		defer o.model.SetHook(nil)
		pb := b
		if n := int64(o.cfg.ProbeRows); n > 0 && b.InputIDs.Dim() > 0 && b.InputIDs.Size(0) > n {
			rows := func(t *torch.Tensor) *torch.Tensor {
				if t == nil || t.Dim() == 0 || t.Size(0) != b.InputIDs.Size(0) {
					return t
				}
				return s.In(t).Narrow(0, 0, n)
			}
			pb = &nn.Batch{InputIDs: rows(b.InputIDs), AttentionMask: rows(b.AttentionMask), Labels: rows(b.Labels)}
		}
		if r, ok := o.model.(nn.Recomputer); ok && !o.cfg.ProbeKeepActivations {
			prev := r.SetRecompute(true)
			defer r.SetRecompute(prev)
		}
		out, err := o.model.Forward(s, pb, true)
		if err != nil {
			return err
		}
		if out == nil || out.Loss == nil {
			return fmt.Errorf("blockllm: selection pass: the model returned no loss (batch without labels?)")
		}
		loss = out.Loss.Item()
		out.Loss.Backward()
		sq := buf.Float64s()
		norms = make([]float64, len(sq))
		for i, v := range sq {
			norms[i] = math.Sqrt(v)
		}
		return nil
	})
	return norms, loss, err
}

// scores turns gradient norms into selection scores.
func (o *BlockLLM) scores(norms []float64) []float64 {
	sc := make([]float64, len(norms))
	for i, n := range norms {
		v := n
		if o.cfg.Score == ScorePerElement {
			v /= math.Sqrt(float64(o.eligible[i].Numel()))
		}
		if !o.cfg.NoVisitPenalty {
			v /= float64(1 + o.visits[i])
		}
		if math.IsNaN(v) {
			v = math.Inf(-1)
		}
		sc[i] = v
	}
	return sc
}

// choose picks the block from gradient norms (eligible order), updates visit counts and
// Adam state, and resets the trigger.
func (o *BlockLLM) choose(norms []float64, loss float64) {
	sc := o.scores(norms)
	order := make([]int, len(sc))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sc[order[a]] > sc[order[b]] })
	budget := o.Budget()
	newChosen := make([]bool, len(o.eligible))
	sel := Selection{Index: o.selections + 1, Step: o.steps, Budget: budget, Eligible: o.eligN, Loss: loss}
	for _, i := range order {
		if sel.Elements >= budget {
			break
		}
		newChosen[i] = true
		sel.Elements += o.eligible[i].Numel()
		sel.Names = append(sel.Names, o.eligible[i].Name)
		sel.Scores = append(sel.Scores, sc[i])
		sel.Norms = append(sel.Norms, norms[i])
	}
	before := o.adam.bytes()
	for i, p := range o.eligible {
		switch {
		case o.chosen[i] && !newChosen[i]:
			o.adam.drop(p)
			sel.Left++
		case !o.chosen[i] && newChosen[i]:
			o.adam.drop(p) // none expected; keeps the invariant
			o.adam.ensure(p)
			sel.Entered++
		case newChosen[i] && !o.cfg.KeepMoments:
			o.adam.reset(p)
		}
		if newChosen[i] {
			o.visits[i]++
		}
	}
	if !o.cfg.KeepMoments {
		for _, p := range o.heads {
			o.adam.reset(p)
		}
	}
	sel.Freed = before - o.adam.bytes()
	o.chosen = newChosen
	o.trainable = o.buildTrainable()
	o.selections++
	o.last = sel
	o.hist = o.hist[:0]
	o.sinceCheck = 0
	o.due = false
}

// Step updates the block (and task heads) from their gradients and frees the gradients.
func (o *BlockLLM) Step(lr float64) error {
	if o.trainable == nil && o.due {
		return fmt.Errorf("blockllm: Step before the first Prepare")
	}
	err := catch(func() error { return o.adam.stepParams(o.trainable, lr, o.maskFor) })
	if err == nil {
		o.steps++
	}
	return err
}

// maskFor is the fraction of p's coordinates updated (0: all): MaskFraction, but task
// heads are always dense.
func (o *BlockLLM) maskFor(p *nn.Param) float64 {
	if p.Head {
		return 0
	}
	return o.cfg.MaskFraction
}

// updateInBackward is Step's update of one tensor of the block (StepInBackward); Step,
// called after backward, then finds no gradient and only counts the step.
func (o *BlockLLM) updateInBackward(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr float64) {
	o.adam.updateOne(s, p, g, lr, o.maskFor(p))
}

// ObserveLoss records the loss of the step just taken and, every CheckEvery losses,
// checks the trigger: more than Patience losses recorded since the last selection and
// mean(last Patience) >= mean(all of them) make the next Prepare reselect.
func (o *BlockLLM) ObserveLoss(loss float64) {
	o.hist = append(o.hist, loss)
	o.sinceCheck++
	if o.sinceCheck < o.cfg.CheckEvery {
		return
	}
	o.sinceCheck = 0
	if triggerFires(o.hist, o.cfg.Patience) {
		o.due = true
	}
}

// triggerFires is BlockLLM's reselection test on the loss history since the last
// selection: len(h) > m and mean(h[len(h)-m:]) >= mean(h).
func triggerFires(h []float64, m int) bool {
	if len(h) <= m {
		return false
	}
	var all, recent float64
	for i, v := range h {
		all += v
		if i >= len(h)-m {
			recent += v
		}
	}
	return recent/float64(m) >= all/float64(len(h))
}

// StateBytes is the storage of the Adam state held now: 2 x state dtype size x block
// elements when dense, k x (2 x dtype size + 8) per masked tensor.
func (o *BlockLLM) StateBytes() int64 { return o.adam.bytes() }

type blockMeta struct {
	Method     string               `json:"method"`
	Params     map[string]stateMeta `json:"params"`
	Visits     map[string]int       `json:"visits"`
	Chosen     []string             `json:"chosen"`
	History    []float64            `json:"loss_history"`
	SinceCheck int                  `json:"since_check"`
	Due        bool                 `json:"due"`
	Steps      int64                `json:"steps"`
	Selections int                  `json:"selections"`
	Last       Selection            `json:"last_selection"`
}

// SaveState snapshots the Adam state, the block, visit counts and the trigger.
func (o *BlockLLM) SaveState() (*State, error) {
	var st *State
	err := catch(func() error {
		ts, meta := o.adam.snapshot()
		bm := blockMeta{Method: o.Name(), Params: meta, Visits: o.Visits(), History: o.hist,
			SinceCheck: o.sinceCheck, Due: o.due, Steps: o.steps, Selections: o.selections, Last: o.last}
		for _, p := range o.Selected() {
			bm.Chosen = append(bm.Chosen, p.Name)
		}
		b, err := json.Marshal(bm)
		st = &State{Tensors: ts, Meta: b}
		return err
	})
	return st, err
}

// LoadState restores a snapshot made by SaveState.
func (o *BlockLLM) LoadState(st *State) error {
	var bm blockMeta
	if err := decodeMeta(st, o.Name(), &bm); err != nil {
		return err
	}
	chosen := make([]bool, len(o.eligible))
	for _, n := range bm.Chosen {
		p := paramIndex(o.eligible)[n]
		if p == nil {
			return fmt.Errorf("blockllm: saved block names %q, which is not an eligible parameter", n)
		}
		chosen[o.slot[p]] = true
	}
	visits := make([]int, len(o.eligible))
	for n, v := range bm.Visits {
		p := paramIndex(o.eligible)[n]
		if p == nil {
			return fmt.Errorf("blockllm: saved visit count for %q, which is not an eligible parameter", n)
		}
		visits[o.slot[p]] = v
	}
	if err := catch(func() error { return o.adam.restore(st.Tensors, bm.Params, paramIndex(o.params)) }); err != nil {
		return err
	}
	o.chosen, o.visits = chosen, visits
	o.hist = append([]float64(nil), bm.History...)
	o.sinceCheck, o.due, o.steps, o.selections, o.last = bm.SinceCheck, bm.Due, bm.Steps, bm.Selections, bm.Last
	o.trainable = nil
	if o.selections > 0 {
		o.trainable = o.buildTrainable()
	}
	return nil
}

// buildTrainable lists the chosen tensors and the heads in model order.
func (o *BlockLLM) buildTrainable() []*nn.Param {
	var out []*nn.Param
	for _, p := range o.params {
		if p.Head {
			out = append(out, p)
		} else if i, ok := o.slot[p]; ok && o.chosen[i] {
			out = append(out, p)
		}
	}
	return out
}

// Close frees the Adam state.
func (o *BlockLLM) Close() { o.adam.close() }

// MarshalJSON writes non-finite scores, norms and losses (a NaN gradient) as null.
func (s Selection) MarshalJSON() ([]byte, error) {
	type plain Selection
	fin := func(xs []float64) []any {
		out := make([]any, len(xs))
		for i, x := range xs {
			out[i] = finiteOrNil(x)
		}
		return out
	}
	return json.Marshal(struct {
		plain
		Scores []any `json:"scores"`
		Norms  []any `json:"norms"`
		Loss   any   `json:"probe_loss"`
	}{plain(s), fin(s.Scores), fin(s.Norms), finiteOrNil(s.Loss)})
}

func finiteOrNil(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return x
}
