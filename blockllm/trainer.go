package blockllm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
	"github.com/blockllm/blockllm-go/torch/dist"
)

// ErrNonFinite is wrapped by the error Train returns when a loss is NaN or Inf.
var ErrNonFinite = errors.New("blockllm: non-finite loss")

// ErrDiverged is wrapped by the error Run returns when the divergence guard stops a run
// (TrainConfig.DivergeFactor, ZeroGradSteps).
var ErrDiverged = errors.New("blockllm: training diverged")

// MaxLR is the largest learning rate a Trainer accepts: above it, Adam's step size
// (lr over the bias correction, up to 10 lr at the first step) leaves float32's range.
const MaxLR = 1e30

// divergeWindow is the number of steps whose mean loss the divergence guard compares.
const divergeWindow = 10

// TrainConfig configures a Trainer. Zero values mean the defaults noted.
type TrainConfig struct {
	// Steps is the number of optimizer steps (the schedule's length). Required.
	Steps int
	// GradAccum is the number of micro-batches per step; 0 means 1.
	GradAccum int
	// LR is the peak learning rate. Required.
	LR float64
	// Schedule shapes the learning rate; it reaches the optimizer at every step.
	Schedule Schedule
	// MaxGradNorm clips the global 2-norm of the trainable gradients; 0 means no clipping.
	MaxGradNorm float64
	// DivergeFactor > 0 stops the run with ErrDiverged when the mean loss of the last 10
	// steps exceeds DivergeFactor times the mean of the first 10 steps of the run's
	// history (a loss that explodes without reaching NaN). No checkpoint of the diverged
	// state is written: the error names the last one written before.
	DivergeFactor float64
	// ZeroGradSteps > 0 stops the run with ErrDiverged when the global gradient norm is
	// exactly zero for that many consecutive steps (a run that no longer learns, e.g. a
	// saturated softmax after a huge learning rate). The norm is taken even without
	// clipping; with StepInBackward it is not available and the check is off.
	ZeroGradSteps int
	// StepInBackward updates each trainable tensor during backward, as soon as its
	// gradient is complete (torch.GradSink), and frees that gradient at once: no step
	// holds every trainable gradient. The updates are those of the optimizer's Step
	// (per tensor; AdamW, BlockLLM and GaLore). It needs GradAccum 1 and no clipping (both need
	// every gradient first), and the model's parameter hook (BlockLLM's selection pass
	// uses it only in Prepare). The loss is checked before backward: a non-finite loss
	// returns ErrNonFinite with the weights untouched.
	StepInBackward bool

	// EvalEvery runs Eval every that many steps (and after the last); 0 never.
	EvalEvery int
	// Eval computes metrics; it runs with autograd disabled.
	Eval func(step int) (map[string]float64, error)

	// CheckpointDir receives checkpoints "step-NNNNNNNN"; "" writes none.
	CheckpointDir string
	// CheckpointEvery writes a checkpoint every that many steps; 0 only at the end and
	// on interruption.
	CheckpointEvery int
	// KeepCheckpoints keeps only the newest that many checkpoints; 0 keeps all.
	KeepCheckpoints int
	// SaveExtra writes additional files (config.json, a tokenizer) into a checkpoint
	// directory being assembled.
	SaveExtra func(dir string) error
	// MaxShardBytes splits the checkpoint's model weights into shards of at most this
	// size; 0 means safetensors.DefaultMaxShardBytes (5 GB, as transformers).
	MaxShardBytes int64
	// Generators are torch generators whose state checkpoints save and restore.
	Generators []*torch.Generator
	// Settings describe the run (for a command, the flags that define it: learning
	// rate, sequence length, batch, schedule, sparsity, ...). Checkpoints record them,
	// and Resume refuses a checkpoint whose settings differ, except for the keys in
	// AllowChanged ("*": any).
	Settings     map[string]string
	AllowChanged []string

	// Dist runs data-parallel training across the ranks of a process group (nil, or one
	// rank: a single process): see parallel.go. Every rank must build the same model,
	// optimizer and configuration; each reads its own shard of the data.
	Dist *dist.Group
	// ShardState splits the Adam state across the ranks (ZeRO stage 1): each trainable
	// tensor's moments live on one rank, which updates it and broadcasts the result.
	ShardState bool

	// Observers receive the run's events (see Event): a progress bar, a JSON-lines
	// writer, a test.
	Observers []Observer
}

// Status says how a run ended.
type Status int

const (
	// Completed: all steps ran.
	Completed Status = iota
	// Interrupted: the context was cancelled (SIGINT); a checkpoint was written when a
	// checkpoint directory is set.
	Interrupted
	// Failed: Run returned an error (a non-finite loss, a data or checkpoint error).
	Failed
)

// String returns "completed", "interrupted" or "failed".
func (s Status) String() string {
	switch s {
	case Interrupted:
		return "interrupted"
	case Failed:
		return "failed"
	}
	return "completed"
}

// StepStats describes one optimizer step.
type StepStats struct {
	Step     int           `json:"step"` // steps completed, this one included
	Loss     float64       `json:"loss"`
	LR       float64       `json:"lr"`
	GradNorm float64       `json:"grad_norm,omitempty"` // before clipping; only when clipping or ZeroGradSteps is set
	Tokens   int64         `json:"tokens"`
	Duration time.Duration `json:"-"`
	Memory   Memory        `json:"memory"`
	// Selection is set when the step began with a new BlockLLM selection.
	Selection *Selection `json:"selection,omitempty"`
}

// Result summarises a run.
type Result struct {
	Status     Status
	Step       int       // steps completed (including those before a resume)
	Losses     []float64 // loss of every step (including those before a resume)
	Evals      []EvalRecord
	Checkpoint string // the last checkpoint written, or ""
	Memory     Memory // at the last step, with the run's peak
	// OptimizerBytes is the largest optimizer state held after a step of this run, and
	// PeakBytes the largest allocator peak seen (the figures of the result tables).
	OptimizerBytes int64
	PeakBytes      int64
	// Selections counts the BlockLLM selections made in this run.
	Selections int
	// TokensPerSec is the throughput of this run (tokens / wall time of its steps).
	TokensPerSec float64
	Elapsed      time.Duration
}

// EvalRecord is one evaluation.
type EvalRecord struct {
	Step    int                `json:"step"`
	Metrics map[string]float64 `json:"metrics"`
}

// Trainer runs the training loop of a model with an optimizer over a data source.
type Trainer struct {
	model nn.Model
	opt   Optimizer
	data  Data
	cfg   TrainConfig

	step     int
	losses   []float64
	tokens   int64
	lastCkpt string
	applied  bool
	peak     int64

	runTokens  int64
	runTime    time.Duration
	evals      []EvalRecord
	maxOpt     int64
	selections int
	zeroGrads  int

	setAside      string
	setAsideSteps []int

	owner map[*nn.Param]int // ZeRO-1: the rank that updates each trainable tensor
}

// NewTrainer checks the configuration and returns a trainer at step 0.
func NewTrainer(model nn.Model, opt Optimizer, data Data, cfg TrainConfig) (*Trainer, error) {
	if model == nil || opt == nil || data == nil {
		return nil, fmt.Errorf("blockllm: trainer needs a model, an optimizer and data")
	}
	if cfg.GradAccum == 0 {
		cfg.GradAccum = 1
	}
	switch {
	case cfg.Steps < 1:
		return nil, fmt.Errorf("blockllm: steps %d must be positive", cfg.Steps)
	case cfg.GradAccum < 1:
		return nil, fmt.Errorf("blockllm: gradient accumulation %d must be positive", cfg.GradAccum)
	case !(cfg.LR > 0) || math.IsInf(cfg.LR, 0):
		return nil, fmt.Errorf("blockllm: learning rate %g must be positive and finite", cfg.LR)
	case cfg.LR > MaxLR:
		return nil, fmt.Errorf("blockllm: learning rate %g is above %g: Adam's float32 step arithmetic would overflow", cfg.LR, MaxLR)
	case cfg.MaxGradNorm < 0:
		return nil, fmt.Errorf("blockllm: negative gradient clip %g", cfg.MaxGradNorm)
	case cfg.DivergeFactor < 0 || math.IsNaN(cfg.DivergeFactor) || (cfg.DivergeFactor > 0 && cfg.DivergeFactor <= 1):
		return nil, fmt.Errorf("blockllm: divergence factor %g must be above 1 (0: off)", cfg.DivergeFactor)
	case cfg.ZeroGradSteps < 0:
		return nil, fmt.Errorf("blockllm: negative zero-gradient step count %d", cfg.ZeroGradSteps)
	case cfg.EvalEvery < 0 || cfg.CheckpointEvery < 0 || cfg.KeepCheckpoints < 0:
		return nil, fmt.Errorf("blockllm: negative eval, checkpoint or keep interval")
	case cfg.EvalEvery > 0 && cfg.Eval == nil:
		return nil, fmt.Errorf("blockllm: eval interval %d set without an Eval function", cfg.EvalEvery)
	}
	if err := cfg.Schedule.Validate(); err != nil {
		return nil, err
	}
	if cfg.StepInBackward {
		if _, ok := opt.(inBackward); !ok {
			return nil, fmt.Errorf("blockllm: %s cannot update in backward (StepInBackward: AdamW, BlockLLM and GaLore can)", opt.Name())
		}
		if cfg.GradAccum > 1 || cfg.MaxGradNorm > 0 {
			return nil, fmt.Errorf("blockllm: updating in backward needs every gradient only once: no gradient accumulation (%d) and no clipping (%g)",
				cfg.GradAccum, cfg.MaxGradNorm)
		}
	}
	t := &Trainer{model: model, opt: opt, data: data, cfg: cfg}
	if t.parallel() {
		if _, ok := opt.(sharded); cfg.ShardState && !ok {
			return nil, fmt.Errorf("blockllm: %s cannot shard its state across ranks (ShardState)", opt.Name())
		}
		if d, ok := opt.(distributed); ok {
			d.setGroup(cfg.Dist)
		}
		if err := t.broadcastWeights(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// StepCount is the number of optimizer steps completed.
func (t *Trainer) StepCount() int { return t.step }

// Losses returns the loss of every step so far.
func (t *Trainer) Losses() []float64 { return append([]float64(nil), t.losses...) }

// LastCheckpoint is the newest checkpoint written or resumed from, or "".
func (t *Trainer) LastCheckpoint() string { return t.lastCkpt }

// Step runs one optimizer step: next micro-batches, Prepare (BlockLLM's selection pass),
// forward/backward of each micro-batch, clipping, the optimizer update at the
// scheduled learning rate, and the loss report to the optimizer. A NaN or Inf loss
// returns an error wrapping ErrNonFinite and leaves the weights and optimizer untouched.
func (t *Trainer) Step() (StepStats, error) {
	st := StepStats{Step: t.step + 1, LR: t.cfg.Schedule.LR(t.cfg.LR, t.step, t.cfg.Steps)}
	start := time.Now()
	dev := t.model.Device()
	params := t.model.Parameters()
	err := catch(func() error {
		s := torch.NewScope()
		defer s.Close()
		batches := make([]*nn.Batch, t.cfg.GradAccum)
		for i := range batches {
			b, err := t.data.Next(s)
			if err != nil {
				return fmt.Errorf("blockllm: step %d: data: %w", st.Step, err)
			}
			if b == nil || b.InputIDs == nil {
				return fmt.Errorf("blockllm: step %d: data returned a batch without input ids", st.Step)
			}
			batches[i] = b
			st.Tokens += b.InputIDs.Numel()
		}
		changed, err := t.opt.Prepare(batches[0])
		if err != nil {
			return err
		}
		if changed || !t.applied {
			setGrads(params, t.opt.Trainable())
			t.applied = true
			if t.parallel() && t.cfg.ShardState {
				t.assignOwners(t.opt.Trainable())
			}
			if sel, ok := t.opt.(interface{ LastSelection() Selection }); ok && changed {
				if x := sel.LastSelection(); x.Index > 0 {
					st.Selection = &x
				}
			}
		}
		trainable := t.opt.Trainable()
		if t.cfg.StepInBackward {
			defer t.installSinks(trainable, st.LR)()
		}
		for i, b := range batches {
			err := torch.WithScope(func(ms *torch.Scope) error {
				out, err := t.model.Forward(ms, b, true)
				if err != nil {
					return err
				}
				if out == nil || out.Loss == nil {
					return fmt.Errorf("blockllm: step %d: the model returned no loss", st.Step)
				}
				l := out.Loss
				if t.cfg.GradAccum > 1 {
					l = l.DivScalar(float64(t.cfg.GradAccum))
				}
				if !l.RequiresGrad() {
					return fmt.Errorf("blockllm: step %d: the loss does not depend on any trainable parameter (%d trainable)", st.Step, len(trainable))
				}
				if t.cfg.StepInBackward {
					// the updates happen in backward: check the loss first (every rank)
					v := l.Item()
					if t.parallel() {
						var err error
						if v, err = t.averageLoss(v); err != nil {
							return err
						}
					}
					if math.IsNaN(v) || math.IsInf(v, 0) {
						return fmt.Errorf("%w %v at step %d (nothing updated)", ErrNonFinite, v, st.Step)
					}
				}
				l.Backward()
				st.Loss += l.Item() // read after backward is queued: no wait between the two
				return nil
			})
			if err != nil {
				return fmt.Errorf("blockllm: step %d, micro-batch %d: %w", st.Step, i, err)
			}
		}
		if t.parallel() {
			var err error
			if st.Loss, err = t.averageLoss(st.Loss); err != nil {
				return err
			}
		}
		if math.IsNaN(st.Loss) || math.IsInf(st.Loss, 0) {
			for _, p := range trainable {
				p.T.ZeroGrad(true)
			}
			return fmt.Errorf("%w %v at step %d", ErrNonFinite, st.Loss, st.Step)
		}
		grads := make([]*torch.Tensor, 0, len(trainable))
		for _, p := range trainable {
			if g := p.T.GradIn(s); g != nil {
				grads = append(grads, g)
				st.Memory.Gradients += g.NBytes()
			}
		}
		if t.parallel() && !t.cfg.StepInBackward && len(grads) > 0 {
			if err := averageGrads(t.cfg.Dist, grads); err != nil {
				return err
			}
		}
		if (t.cfg.MaxGradNorm > 0 || t.cfg.ZeroGradSteps > 0) && len(grads) > 0 {
			st.GradNorm = clipGrads(grads, t.cfg.MaxGradNorm)
			if math.IsNaN(st.GradNorm) || math.IsInf(st.GradNorm, 0) {
				for _, p := range trainable {
					p.T.ZeroGrad(true)
				}
				return fmt.Errorf("%w: gradient norm %v at step %d (loss %v)", ErrNonFinite, st.GradNorm, st.Step, st.Loss)
			}
		}
		st.Memory.TrainableParams = numel(trainable)
		return nil
	})
	if err != nil {
		return st, err
	}
	if err := t.opt.Step(st.LR); err != nil {
		return st, err
	}
	if t.parallel() && t.cfg.ShardState {
		if err := t.broadcastOwned(t.opt.Trainable()); err != nil {
			return st, err
		}
	}
	t.opt.ObserveLoss(st.Loss)
	t.step++
	t.losses = append(t.losses, st.Loss)
	t.tokens += st.Tokens
	st.Duration = time.Since(start)
	t.runTokens += st.Tokens
	t.runTime += st.Duration
	for _, p := range params {
		st.Memory.Params += p.Numel()
		st.Memory.Weights += p.T.NBytes()
	}
	st.Memory.OptimizerState = t.opt.StateBytes()
	st.Memory.Current, st.Memory.Peak = torch.MemStats(dev)
	t.peak = max(t.peak, st.Memory.Peak)
	t.maxOpt = max(t.maxOpt, st.Memory.OptimizerState)
	if st.Selection != nil {
		t.selections++
	}
	return st, nil
}

// installSinks makes the forward passes use, for each trainable tensor, a gradient sink
// that runs the optimizer's update of that tensor in backward (StepInBackward). The
// returned function removes the hook and the sinks.
func (t *Trainer) installSinks(trainable []*nn.Param, lr float64) func() {
	ib := t.opt.(inBackward)
	on := map[*nn.Param]bool{}
	for _, p := range trainable {
		on[p] = true
	}
	sc := torch.NewScope()
	sinks := map[*nn.Param]*torch.Tensor{}
	t.model.SetHook(func(_ *torch.Scope, p *nn.Param) *torch.Tensor {
		if !on[p] || !torch.GradEnabled() {
			return p.T // a recomputed layer's no-grad forward: its recompute makes the sink
		}
		if x := sinks[p]; x != nil {
			return x // one sink per tensor: its gradient summed over every use
		}
		x := torch.GradSink(sc.In(p.T), func(s *torch.Scope, g *torch.Tensor) {
			if t.parallel() { // average as soon as the gradient is complete: overlaps the rest of backward
				if err := t.cfg.Dist.AllReduce(g, dist.Avg); err != nil {
					panic(&torch.Error{Op: "step in backward", Msg: err.Error()})
				}
			}
			ib.updateInBackward(s, p, g, lr)
		})
		sinks[p] = x
		return x
	})
	return func() {
		t.model.SetHook(nil)
		sc.Close()
	}
}

// clipGrads scales grads in place so that their global 2-norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_ does (coefficient maxNorm / (norm + 1e-6), applied when
// below 1), and returns the norm before clipping; maxNorm 0 only measures. Norms are
// taken in float32 or better.
func clipGrads(grads []*torch.Tensor, maxNorm float64) float64 {
	norms := make([]*torch.Tensor, len(grads))
	for i, g := range grads {
		if g.DType() == torch.F32 || g.DType() == torch.F64 {
			norms[i] = g.Norm(2).To(torch.F64)
		} else {
			norms[i] = g.To(torch.F32).Norm(2).To(torch.F64)
		}
	}
	total := torch.Stack(norms, 0).Norm(2).Item()
	coef := maxNorm / (total + 1e-6)
	if maxNorm > 0 && coef < 1 {
		for _, g := range grads {
			g.MulScalarInPlace(coef)
		}
	}
	return total
}

// Run trains until Steps steps are done or ctx is cancelled. On cancellation it
// finishes the current step, writes a checkpoint (when CheckpointDir is set) and
// returns Status Interrupted with a nil error. A non-finite loss stops the run with an
// error naming the last good checkpoint. The observers see a StartEvent, then per step
// a SelectionEvent (when the step began with a new selection) and a StepEvent, the
// EvalEvents and CheckpointEvents, and last a SummaryEvent or an ErrorEvent.
func (t *Trainer) Run(ctx context.Context) (*Result, error) {
	start := time.Now()
	t.emit(&StartEvent{Method: t.opt.Name(), Step: t.step, Steps: t.cfg.Steps})
	res := &Result{}
	fill := func(status Status) {
		res.Status, res.Step, res.Losses, res.Checkpoint = status, t.step, t.Losses(), t.lastCkpt
		res.Evals, res.Elapsed = t.evals, time.Since(start)
		if t.runTime > 0 {
			res.TokensPerSec = float64(t.runTokens) / t.runTime.Seconds()
		}
		res.Memory.Peak = max(res.Memory.Peak, t.peak)
		res.OptimizerBytes = max(t.maxOpt, res.Memory.OptimizerState)
		res.PeakBytes = res.Memory.Peak
		res.Selections = t.selections
	}
	finish := func(status Status) (*Result, error) {
		fill(status)
		t.emit(&SummaryEvent{Status: status, Step: t.step, Loss: lastOrNaN(t.losses), TokensPerSec: res.TokensPerSec,
			Memory: res.Memory, Checkpoint: res.Checkpoint, Elapsed: res.Elapsed})
		return res, nil
	}
	fail := func(err error) (*Result, error) {
		fill(Failed)
		t.emit(&ErrorEvent{Step: t.step, Err: err, Checkpoint: t.lastCkpt})
		return res, err
	}
	for t.step < t.cfg.Steps {
		stop, err := t.stopRequested(ctx)
		if err != nil {
			return fail(err)
		}
		if stop {
			if err := t.checkpointIfSet(); err != nil {
				return fail(err)
			}
			return finish(Interrupted)
		}
		st, err := t.Step()
		if err != nil {
			if errors.Is(err, ErrNonFinite) {
				last := t.lastCkpt
				if last == "" {
					last = "none written"
				}
				err = fmt.Errorf("%w; training stopped, last good checkpoint: %s", err, last)
			}
			return fail(err)
		}
		if err := t.checkDivergence(st); err != nil {
			return fail(err)
		}
		res.Memory = st.Memory
		if st.Selection != nil {
			t.emit(&SelectionEvent{Step: st.Step, Selection: *st.Selection, Memory: st.Memory})
		}
		t.emit(&StepEvent{StepStats: st, RunTokensPerSec: float64(t.runTokens) / t.runTime.Seconds()})
		if t.cfg.EvalEvery > 0 && (t.step%t.cfg.EvalEvery == 0 || t.step == t.cfg.Steps) {
			if err := t.evaluate(); err != nil {
				return fail(err)
			}
		}
		if t.cfg.CheckpointEvery > 0 && t.step%t.cfg.CheckpointEvery == 0 && t.step < t.cfg.Steps {
			if err := t.checkpointIfSet(); err != nil {
				return fail(err)
			}
		}
		if t.step == t.cfg.Steps {
			break
		}
		if stop, err := t.stopRequested(ctx); err != nil {
			return fail(err)
		} else if stop {
			if err := t.checkpointIfSet(); err != nil {
				return fail(err)
			}
			return finish(Interrupted)
		}
	}
	if err := t.checkpointIfSet(); err != nil {
		return fail(err)
	}
	return finish(Completed)
}

// checkDivergence applies the divergence guard after step st.
func (t *Trainer) checkDivergence(st StepStats) error {
	last := t.lastCkpt
	if last == "" {
		last = "none written"
	}
	if t.cfg.ZeroGradSteps > 0 && !t.cfg.StepInBackward {
		if st.GradNorm == 0 {
			t.zeroGrads++
		} else {
			t.zeroGrads = 0
		}
		if t.zeroGrads >= t.cfg.ZeroGradSteps {
			return fmt.Errorf("%w: the gradient norm was exactly 0 for %d steps (to step %d, loss %.4g): nothing trains any more "+
				"(a learning rate far too large?); training stopped, last good checkpoint: %s", ErrDiverged, t.zeroGrads, st.Step, st.Loss, last)
		}
	}
	if n := len(t.losses); t.cfg.DivergeFactor > 0 && n >= 2*divergeWindow {
		first, recent := mean(t.losses[:divergeWindow]), mean(t.losses[n-divergeWindow:])
		if first > 0 && recent > t.cfg.DivergeFactor*first {
			return fmt.Errorf("%w: the mean loss of steps %d-%d, %.4g, is above %g times that of the first %d steps, %.4g "+
				"(a learning rate too large?); training stopped, last good checkpoint: %s",
				ErrDiverged, n-divergeWindow+1, n, recent, t.cfg.DivergeFactor, divergeWindow, first, last)
		}
	}
	return nil
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func (t *Trainer) emit(e Event) {
	for _, o := range t.cfg.Observers {
		o.Observe(e)
	}
}

func (t *Trainer) evaluate() error {
	var m map[string]float64
	var err error
	if e := torch.Try(func() { torch.NoGrad(func() { m, err = t.cfg.Eval(t.step) }) }); e != nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("blockllm: evaluation at step %d: %w", t.step, err)
	}
	t.evals = append(t.evals, EvalRecord{Step: t.step, Metrics: m})
	t.emit(&EvalEvent{Step: t.step, Metrics: m})
	return nil
}

// checkpointIfSet writes a checkpoint of the current step unless none is configured or
// one exists for it already.
func (t *Trainer) checkpointIfSet() error {
	if t.cfg.CheckpointDir == "" || t.step == 0 {
		return nil
	}
	dir := checkpointPath(t.cfg.CheckpointDir, t.step)
	if t.lastCkpt == dir {
		return nil
	}
	if t.parallel() {
		return t.checkpointParallel(dir)
	}
	if err := t.SaveCheckpoint(dir); err != nil {
		return err
	}
	t.emit(&CheckpointEvent{Step: t.step, Path: dir})
	return pruneCheckpoints(t.cfg.CheckpointDir, t.cfg.KeepCheckpoints)
}

func lastOrNaN(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return xs[len(xs)-1]
}

// Train is NewTrainer, Resume(resume) when resume is not "", then Run.
func Train(ctx context.Context, model nn.Model, opt Optimizer, data Data, cfg TrainConfig, resume string) (*Result, error) {
	t, err := NewTrainer(model, opt, data, cfg)
	if err != nil {
		return nil, err
	}
	if resume != "" {
		if err := t.Resume(resume); err != nil {
			return nil, err
		}
	}
	return t.Run(ctx)
}
