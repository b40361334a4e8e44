package blockllm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/blockllm/blockllm-go/hf/nn"
)

// BlockOrder is the order in which BAdam visits the layer blocks.
type BlockOrder int

const (
	// Ascending visits layers 0, 1, ..., L-1, 0, ...
	Ascending BlockOrder = iota
	// Descending visits layers L-1, ..., 0, L-1, ...
	Descending
	// Random visits every layer once per round, in a fresh random order each round.
	Random
)

// ParseBlockOrder accepts "ascending", "descending" and "random".
func ParseBlockOrder(s string) (BlockOrder, error) {
	switch s {
	case "ascending", "":
		return Ascending, nil
	case "descending":
		return Descending, nil
	case "random":
		return Random, nil
	}
	return 0, fmt.Errorf("blockllm: unknown block order %q (want ascending, descending or random)", s)
}

// BAdamConfig configures BAdam-style block coordinate descent over transformer layers.
type BAdamConfig struct {
	Adam AdamConfig
	// SwitchEvery is the number of steps per block; 0 means 100.
	SwitchEvery int
	// Order of the blocks (Ascending by default).
	Order BlockOrder
	// Seed drives the Random order.
	Seed uint64
}

// LISAConfig configures LISA-style layerwise importance sampling.
type LISAConfig struct {
	Adam AdamConfig
	// Layers is the number of transformer layers trained at a time; 0 means 2.
	Layers int
	// SwitchEvery is the number of steps between samples; 0 means 50.
	SwitchEvery int
	// Seed drives the sampling.
	Seed uint64
	// FreezeOuter stops LISA from always training the parameters outside the
	// transformer layers (embeddings, final norm, LM head), which it does by default.
	FreezeOuter bool
}

// layerwise is the machinery shared by BAdam and LISA: blocks are whole transformer
// layers (Param.Layer >= 0), task heads always train, and the Adam state of a layer is
// freed when it leaves.
type layerwise struct {
	name      string
	params    []*nn.Param
	layers    []int // distinct layer indices, ascending
	always    []*nn.Param
	every     int
	adam      *adamState
	rng       *rand.PCG
	pick      func() []int // next set of layers
	active    []int        // layers training now
	queue     []int        // BAdam: rest of the current round
	steps     int64        // optimizer steps taken
	trainable []*nn.Param
	begun     bool
}

func newLayerwise(name string, m nn.Model, cfg AdamConfig, every int, seed uint64, outer bool) (*layerwise, error) {
	if m == nil {
		return nil, fmt.Errorf("blockllm: nil model")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if every <= 0 {
		return nil, fmt.Errorf("blockllm: %s: switch interval %d must be positive", name, every)
	}
	o := &layerwise{name: name, params: m.Parameters(), every: every, adam: newAdamState(cfg),
		rng: rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)}
	seen := map[int]bool{}
	for _, p := range o.params {
		switch {
		case p.Head:
			o.always = append(o.always, p)
		case p.Layer >= 0:
			if !seen[p.Layer] {
				seen[p.Layer] = true
				o.layers = append(o.layers, p.Layer)
			}
		case outer:
			o.always = append(o.always, p)
		}
	}
	if len(o.layers) == 0 {
		return nil, fmt.Errorf("blockllm: %s: the model has no layer-indexed parameters", name)
	}
	sort.Ints(o.layers)
	return o, nil
}

// Prepare switches blocks every SwitchEvery steps (and at the first call).
func (o *layerwise) Prepare(*nn.Batch) (bool, error) {
	if o.begun && o.steps%int64(o.every) != 0 {
		return false, nil
	}
	o.switchTo(o.pick())
	o.begun = true
	return true, nil
}

func (o *layerwise) switchTo(layers []int) {
	in := map[int]bool{}
	for _, l := range layers {
		in[l] = true
	}
	// free the state of leaving layers (BAdam and LISA restart the moments of a block)
	for _, p := range o.params {
		if p.Layer >= 0 && !p.Head {
			o.adam.drop(p)
		}
	}
	o.active = append([]int(nil), layers...)
	o.trainable = o.build(in)
}

func (o *layerwise) build(in map[int]bool) []*nn.Param {
	var out []*nn.Param
	always := map[*nn.Param]bool{}
	for _, p := range o.always {
		always[p] = true
	}
	for _, p := range o.params {
		if always[p] || (p.Layer >= 0 && in[p.Layer]) {
			out = append(out, p)
		}
	}
	return out
}

// Trainable lists the active layers' parameters and the always-trained ones, in model
// order.
func (o *layerwise) Trainable() []*nn.Param { return o.trainable }

// Step updates the trainable parameters that have gradients and frees the gradients.
func (o *layerwise) Step(lr float64) error {
	if !o.begun {
		return fmt.Errorf("blockllm: %s: Step before the first Prepare", o.name)
	}
	err := catch(func() error { return o.adam.stepParams(o.trainable, lr, nil) })
	if err == nil {
		o.steps++
	}
	return err
}

// ObserveLoss does nothing: blocks switch on a fixed schedule.
func (o *layerwise) ObserveLoss(float64) {}

// StateBytes is the storage of the Adam state held now.
func (o *layerwise) StateBytes() int64 { return o.adam.bytes() }

// ActiveLayers lists the transformer layers training now.
func (o *layerwise) ActiveLayers() []int { return append([]int(nil), o.active...) }

type layerMeta struct {
	Method string               `json:"method"`
	Params map[string]stateMeta `json:"params"`
	Active []int                `json:"active"`
	Queue  []int                `json:"queue"`
	Steps  int64                `json:"steps"`
	Begun  bool                 `json:"begun"`
	RNG    []byte               `json:"rng"`
}

// SaveState snapshots the Adam state, the active layers, the schedule and the RNG.
func (o *layerwise) SaveState() (*State, error) {
	var st *State
	err := catch(func() error {
		ts, meta := o.adam.snapshot()
		rng, err := o.rng.MarshalBinary()
		if err != nil {
			return err
		}
		b, err := json.Marshal(layerMeta{Method: o.name, Params: meta, Active: o.active, Queue: o.queue,
			Steps: o.steps, Begun: o.begun, RNG: rng})
		st = &State{Tensors: ts, Meta: b}
		return err
	})
	return st, err
}

// LoadState restores a snapshot made by SaveState.
func (o *layerwise) LoadState(st *State) error {
	var lm layerMeta
	if err := decodeMeta(st, o.name, &lm); err != nil {
		return err
	}
	if err := o.rng.UnmarshalBinary(lm.RNG); err != nil {
		return fmt.Errorf("blockllm: %s: RNG state: %w", o.name, err)
	}
	valid := map[int]bool{}
	for _, l := range o.layers {
		valid[l] = true
	}
	in := map[int]bool{}
	for _, l := range append(append([]int(nil), lm.Active...), lm.Queue...) {
		if !valid[l] {
			return fmt.Errorf("blockllm: %s: saved state names layer %d, which the model lacks", o.name, l)
		}
	}
	for _, l := range lm.Active {
		in[l] = true
	}
	if err := catch(func() error { return o.adam.restore(st.Tensors, lm.Params, paramIndex(o.params)) }); err != nil {
		return err
	}
	o.active, o.queue, o.steps, o.begun = lm.Active, lm.Queue, lm.Steps, lm.Begun
	o.trainable = nil
	if o.begun {
		o.trainable = o.build(in)
	}
	return nil
}

// Close frees the Adam state.
func (o *layerwise) Close() { o.adam.close() }

// BAdam trains one transformer layer at a time (plus task heads), switching to the next
// layer every SwitchEvery steps, with fresh Adam state for each block (Luo et al., 2024).
type BAdam struct{ *layerwise }

// NewBAdam returns BAdam over m's layers.
func NewBAdam(m nn.Model, cfg BAdamConfig) (*BAdam, error) {
	if cfg.SwitchEvery == 0 {
		cfg.SwitchEvery = 100
	}
	lw, err := newLayerwise("badam", m, cfg.Adam, cfg.SwitchEvery, cfg.Seed, false)
	if err != nil {
		return nil, err
	}
	if cfg.Order < Ascending || cfg.Order > Random {
		return nil, fmt.Errorf("blockllm: badam: unknown block order %d", int(cfg.Order))
	}
	lw.pick = func() []int {
		if len(lw.queue) == 0 {
			lw.queue = append([]int(nil), lw.layers...)
			switch cfg.Order {
			case Descending:
				for i, j := 0, len(lw.queue)-1; i < j; i, j = i+1, j-1 {
					lw.queue[i], lw.queue[j] = lw.queue[j], lw.queue[i]
				}
			case Random:
				r := rand.New(lw.rng)
				r.Shuffle(len(lw.queue), func(i, j int) { lw.queue[i], lw.queue[j] = lw.queue[j], lw.queue[i] })
			}
		}
		l := lw.queue[0]
		lw.queue = lw.queue[1:]
		return []int{l}
	}
	return &BAdam{lw}, nil
}

// Name returns "badam".
func (o *BAdam) Name() string { return "badam" }

// LISA trains Layers randomly sampled transformer layers at a time, resampled every
// SwitchEvery steps, and always the embeddings, final norm and LM head unless
// FreezeOuter (Pan et al., 2024).
type LISA struct{ *layerwise }

// NewLISA returns LISA over m's layers.
func NewLISA(m nn.Model, cfg LISAConfig) (*LISA, error) {
	if cfg.SwitchEvery == 0 {
		cfg.SwitchEvery = 50
	}
	if cfg.Layers == 0 {
		cfg.Layers = 2
	}
	lw, err := newLayerwise("lisa", m, cfg.Adam, cfg.SwitchEvery, cfg.Seed, !cfg.FreezeOuter)
	if err != nil {
		return nil, err
	}
	if cfg.Layers < 0 || cfg.Layers > len(lw.layers) {
		return nil, fmt.Errorf("blockllm: lisa: %d layers requested, the model has %d", cfg.Layers, len(lw.layers))
	}
	lw.pick = func() []int {
		r := rand.New(lw.rng)
		perm := r.Perm(len(lw.layers))[:cfg.Layers]
		out := make([]int, len(perm))
		for i, j := range perm {
			out[i] = lw.layers[j]
		}
		sort.Ints(out)
		return out
	}
	return &LISA{lw}, nil
}

// Name returns "lisa".
func (o *LISA) Name() string { return "lisa" }
