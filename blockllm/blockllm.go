package blockllm

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
	"github.com/blockllm/blockllm-go/torch/dist"
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

// PenaltyKind is how a tensor's score is lowered by how often it was chosen before.
type PenaltyKind int

const (
	// PenaltyCount divides the score by 1 + the number of earlier selections that chose
	// the tensor (this project's default: a penalty that does not fade).
	PenaltyCount PenaltyKind = iota
	// PenaltyExpFreq divides it by exp(freq / t), as the authors' code does: freq is the
	// tensor's visit frequency (every eligible tensor starts at 1/N; each selection
	// after the first adds 1 to each chosen tensor's count and renormalises the counts
	// to sum to 1, one tensor at a time, in model order) and t the optimizer steps taken.
	PenaltyExpFreq
	// PenaltyNone scores by the gradient alone.
	PenaltyNone
)

var penaltyNames = []string{"count", "exp-freq", "none"}

// String returns "count", "exp-freq" or "none".
func (k PenaltyKind) String() string { return enumName(penaltyNames, int(k), "PenaltyKind") }

// ParsePenalty accepts "count", "exp-freq" and "none".
func ParsePenalty(s string) (PenaltyKind, error) {
	i, err := enumParse(penaltyNames, s, "penalty")
	return PenaltyKind(i), err
}

// BudgetRule says what happens to the tensor whose elements take the block to (or past)
// the budget.
type BudgetRule int

const (
	// BudgetOver takes it: tensors are added by descending score while the block holds
	// fewer than Budget() elements, so the block may exceed the budget by less than one
	// tensor (this project's default, as the paper describes it).
	BudgetOver BudgetRule = iota
	// BudgetUnder leaves it out: the block is the longest prefix of the ranking whose
	// elements stay below the budget (the authors' code), or the first tensor alone when
	// even it reaches the budget (their code then trains nothing).
	BudgetUnder
)

var budgetNames = []string{"over", "under"}

// String returns "over" or "under".
func (r BudgetRule) String() string { return enumName(budgetNames, int(r), "BudgetRule") }

// ParseBudgetRule accepts "over" and "under".
func ParseBudgetRule(s string) (BudgetRule, error) {
	i, err := enumParse(budgetNames, s, "budget rule")
	return BudgetRule(i), err
}

// FirstBlockKind is how the first block is chosen.
type FirstBlockKind int

const (
	// FirstNorm chooses it by a selection pass, like every later block (this project's
	// default).
	FirstNorm FirstBlockKind = iota
	// FirstRandom draws it at random (seeded by BlockLLMConfig.Seed) under the budget
	// rule, as the authors' code does, without a selection pass.
	FirstRandom
)

var firstNames = []string{"norm", "random"}

// String returns "norm" or "random".
func (k FirstBlockKind) String() string { return enumName(firstNames, int(k), "FirstBlockKind") }

// ParseFirstBlock accepts "norm" and "random".
func ParseFirstBlock(s string) (FirstBlockKind, error) {
	i, err := enumParse(firstNames, s, "first block")
	return FirstBlockKind(i), err
}

func enumName(names []string, i int, typ string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

func enumParse(names []string, s, what string) (int, error) {
	for i, n := range names {
		if s == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("blockllm: unknown %s %q (want %s)", what, s, strings.Join(names, ", "))
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
	// StrictTrigger fires the trigger only when the recent mean loss is strictly above
	// the mean of the whole history (the authors' code); by default also when equal.
	StrictTrigger bool
	// Penalty is the visit penalty of the score (PenaltyCount by default).
	Penalty PenaltyKind
	// Budget is the rule for the tensor that reaches the budget (BudgetOver by default).
	Budget BudgetRule
	// FirstBlock is how the first block is chosen (FirstNorm by default).
	FirstBlock FirstBlockKind
	// Seed drives FirstRandom.
	Seed uint64
	// HeadsEligible makes task heads (Param.Head) ordinary eligible tensors, chosen or
	// not like the others (the authors' code); by default they always train, outside
	// the budget.
	// Score is the gradient score (ScoreNorm by default).
	Score         ScoreKind
	HeadsEligible bool
	// Eligible are regular expressions over parameter names; a parameter is eligible
	// when it matches one (empty: every parameter that is neither an embedding, the LM
	// head nor a task head). Task heads (Param.Head) are always trained, outside the
	// budget, unless HeadsEligible.
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
	case c.Penalty < PenaltyCount || c.Penalty > PenaltyNone:
		return fmt.Errorf("blockllm: unknown penalty %d", int(c.Penalty))
	case c.Budget < BudgetOver || c.Budget > BudgetUnder:
		return fmt.Errorf("blockllm: unknown budget rule %d", int(c.Budget))
	case c.FirstBlock < FirstNorm || c.FirstBlock > FirstRandom:
		return fmt.Errorf("blockllm: unknown first-block kind %d", int(c.FirstBlock))
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

	visits    []int     // per eligible: selections that chose it
	freq      []float64 // per eligible: PenaltyExpFreq's normalised visit frequency
	chosen    []bool    // per eligible: in the block now
	trainable []*nn.Param

	adam  *adamState
	group *dist.Group // data parallelism: the selection pass averages gradients across ranks

	hist       []float64 // losses since the last selection
	sinceCheck int
	due        bool // a selection runs at the next Prepare
	steps      int64
	selections int
	last       Selection
}

// NewBlockLLM returns BlockLLM over m's parameters. The first Prepare chooses the first
// block: by a selection pass (FirstNorm, the default) or at random (FirstRandom).
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
		if p.Head && !cfg.HeadsEligible {
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
	o.freq = make([]float64, len(o.eligible))
	for i := range o.freq {
		o.freq[i] = 1 / float64(len(o.eligible))
	}
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
	if o.selections == 0 && o.cfg.FirstBlock == FirstRandom {
		o.chooseRandom()
		return true, nil
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
		parallel := o.group != nil && o.group.Size() > 1
		if parallel {
			// gradient sinks need their tensors to require grad; the sinks take the
			// gradients, so none is accumulated
			setGrads(o.params, o.eligible)
			defer setGrads(o.params, nil)
		}
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
			var t *torch.Tensor
			if parallel {
				// data parallel: the norm of the gradient averaged across ranks, taken as
				// each gradient is complete in backward (the same order on every rank)
				t = torch.GradSink(s.In(p.T), func(_ *torch.Scope, g *torch.Tensor) {
					if err := o.group.AllReduce(g, dist.Avg); err != nil {
						panic(&torch.Error{Op: "selection pass", Msg: err.Error()})
					}
					n := g.Norm(2).To(torch.F64)
					buf.Narrow(0, int64(i), 1).CopyFrom(n.Mul(n).Reshape(1))
				})
			} else {
				t = torch.NormProbe(p.T, token, buf, i)
			}
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
		if o.group != nil && o.group.Size() > 1 {
			l, err := o.group.AllReduceFloat64s([]float64{loss}, dist.Avg)
			if err != nil {
				return err
			}
			loss = l[0]
		}
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
		switch o.cfg.Penalty {
		case PenaltyCount:
			v /= float64(1 + o.visits[i])
		case PenaltyExpFreq:
			v /= math.Exp(o.freq[i] / float64(max(o.steps, 1)))
		}
		if math.IsNaN(v) {
			v = math.Inf(-1)
		}
		sc[i] = v
	}
	return sc
}

// choose picks the block from gradient norms (eligible order) and applies it.
func (o *BlockLLM) choose(norms []float64, loss float64) {
	sc := o.scores(norms)
	order := make([]int, len(sc))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sc[order[a]] > sc[order[b]] })
	o.apply(order, sc, norms, loss)
}

// chooseRandom draws the first block: the eligible tensors in a seeded random order,
// under the budget rule.
func (o *BlockLLM) chooseRandom() {
	r := rand.New(rand.NewPCG(o.cfg.Seed, 0xb10c))
	order := r.Perm(len(o.eligible))
	nan := make([]float64, len(o.eligible))
	for i := range nan {
		nan[i] = math.NaN()
	}
	o.apply(order, nan, nan, math.NaN())
}

// take returns the block: a prefix of order, under the budget rule.
func (o *BlockLLM) take(order []int) []int {
	budget := o.Budget()
	var out []int
	var n int64
	for _, i := range order {
		e := o.eligible[i].Numel()
		if o.cfg.Budget == BudgetUnder {
			if n+e >= budget {
				if len(out) == 0 {
					out = append(out, i) // never an empty block
				}
				break
			}
		} else if n >= budget {
			break
		}
		out = append(out, i)
		n += e
	}
	return out
}

// apply makes the tensors take(order) chooses the block, updates visit counts and Adam
// state, and resets the trigger. sc and norms (eligible order) are reported.
func (o *BlockLLM) apply(order []int, sc, norms []float64, loss float64) {
	newChosen := make([]bool, len(o.eligible))
	sel := Selection{Index: o.selections + 1, Step: o.steps, Budget: o.Budget(), Eligible: o.eligN, Loss: loss}
	for _, i := range o.take(order) {
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
			if o.selections > 0 { // the authors' first block does not count as a visit
				o.freq[i]++
				normalise(o.freq)
			}
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

// normalise scales xs to sum to 1.
func normalise(xs []float64) {
	var s float64
	for _, x := range xs {
		s += x
	}
	for i := range xs {
		xs[i] /= s
	}
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
	if triggerFires(o.hist, o.cfg.Patience, o.cfg.StrictTrigger) {
		o.due = true
	}
}

// triggerFires is BlockLLM's reselection test on the loss history since the last
// selection: len(h) > m and mean(h[len(h)-m:]) >= mean(h) (> when strict).
func triggerFires(h []float64, m int, strict bool) bool {
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
	r, a := recent/float64(m), all/float64(len(h))
	if strict {
		return r > a
	}
	return r >= a
}

// StateBytes is the storage of the Adam state held now: 2 x state dtype size x block
// elements when dense, k x (2 x dtype size + 8) per masked tensor; 8-bit moments take
// 1 byte per value and 4 per block of 256 values instead of the dtype size (plus the
// two 1 KiB maps).
func (o *BlockLLM) StateBytes() int64 { return o.adam.bytes() }

type blockMeta struct {
	Method     string               `json:"method"`
	Params     map[string]stateMeta `json:"params"`
	Visits     map[string]int       `json:"visits"`
	Freq       map[string]float64   `json:"visit_freq,omitempty"`
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
		freq := make(map[string]float64, len(o.eligible))
		for i, p := range o.eligible {
			freq[p.Name] = o.freq[i]
		}
		bm := blockMeta{Method: o.Name(), Params: meta, Visits: o.Visits(), Freq: freq, History: o.hist,
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
	freq := append([]float64(nil), o.freq...)
	for n, v := range bm.Freq {
		p := paramIndex(o.eligible)[n]
		if p == nil {
			return fmt.Errorf("blockllm: saved visit frequency for %q, which is not an eligible parameter", n)
		}
		freq[o.slot[p]] = v
	}
	if err := catch(func() error { return o.adam.restore(st.Tensors, bm.Params, paramIndex(o.params)) }); err != nil {
		return err
	}
	o.chosen, o.visits, o.freq = chosen, visits, freq
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

// BlockLLM presets: the project's selection settings, and the authors' released
// behaviour (arXiv 2406.17296, github.com/RAmruthaVignesh/blockllm) minus its plain bug
// (the learning-rate schedule never reached their inner optimizer; here it does).
const (
	PresetDefault   = "default"
	PresetReference = "reference"
)

// Presets lists the preset names.
var Presets = []string{PresetDefault, PresetReference}

// WithPreset returns c with the selection settings of preset name: CheckEvery,
// StrictTrigger, Penalty, Budget, FirstBlock, Eligible, Exclude, HeadsEligible,
// KeepMoments, MaskFraction and Score. Sparsity, Patience, Adam, Seed and the probe
// options are kept. checkEvery is the reference preset's check interval (the authors
// use 1000 for pretraining, 500 in their GLUE recipe; 0 means 1000).
func (c BlockLLMConfig) WithPreset(name string, checkEvery int) (BlockLLMConfig, error) {
	switch name {
	case PresetDefault, "":
		c.CheckEvery, c.StrictTrigger, c.Penalty, c.Budget, c.FirstBlock = 1, false, PenaltyCount, BudgetOver, FirstNorm
		c.Eligible, c.Exclude, c.HeadsEligible, c.KeepMoments, c.MaskFraction, c.Score = nil, nil, false, false, 0, ScoreNorm
	case PresetReference:
		if checkEvery <= 0 {
			checkEvery = 1000
		}
		c.CheckEvery, c.StrictTrigger, c.Penalty, c.Budget, c.FirstBlock = checkEvery, true, PenaltyExpFreq, BudgetUnder, FirstRandom
		// every tensor whose name has neither "embed" nor "lm_head", task heads included
		c.Eligible, c.Exclude, c.HeadsEligible = []string{".*"}, []string{"embed", "lm_head"}, true
		c.KeepMoments, c.MaskFraction, c.Score = false, 0, ScoreNorm
	default:
		return c, fmt.Errorf("blockllm: unknown preset %q (want %s)", name, strings.Join(Presets, " or "))
	}
	return c, nil
}
