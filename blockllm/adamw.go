package blockllm

import (
	"encoding/json"
	"fmt"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// AdamW is full AdamW over every parameter of a model: the same numbers as
// torch.optim.AdamW (decoupled weight decay, bias correction, one step count per
// parameter), with the moments created lazily at a parameter's first update.
type AdamW struct {
	params []*nn.Param
	adam   *adamState
	begun  bool
}

// NewAdamW returns full AdamW over all of m's parameters.
func NewAdamW(m nn.Model, cfg AdamConfig) (*AdamW, error) {
	if m == nil {
		return nil, fmt.Errorf("blockllm: nil model")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &AdamW{params: m.Parameters(), adam: newAdamState(cfg)}, nil
}

// Name returns "adamw".
func (o *AdamW) Name() string { return "adamw" }

// Prepare reports changed only on the first call (the trainable set never changes).
func (o *AdamW) Prepare(*nn.Batch) (bool, error) {
	changed := !o.begun
	o.begun = true
	return changed, nil
}

// Trainable lists every parameter.
func (o *AdamW) Trainable() []*nn.Param { return o.params }

// Step updates every parameter that has a gradient and frees the gradients.
func (o *AdamW) Step(lr float64) error {
	return catch(func() error { return o.adam.stepParams(o.params, lr, nil) })
}

// updateInBackward is Step's update of one tensor (TrainConfig.StepInBackward).
func (o *AdamW) updateInBackward(s *torch.Scope, p *nn.Param, g *torch.Tensor, lr float64) {
	o.adam.updateOne(s, p, g, lr, 0)
}

// ObserveLoss does nothing for AdamW.
func (o *AdamW) ObserveLoss(float64) {}

// StateBytes is the storage of the moments (2 x numel x dtype size once every parameter
// has been updated; with 8-bit moments 2 x (numel + 4 x blocks of 256) per quantised
// tensor plus the two 1 KiB maps).
func (o *AdamW) StateBytes() int64 { return o.adam.bytes() }

type adamwMeta struct {
	Method string               `json:"method"`
	Params map[string]stateMeta `json:"params"`
	Begun  bool                 `json:"begun"`
}

// SaveState snapshots the moments and step counts.
func (o *AdamW) SaveState() (*State, error) {
	var st *State
	err := catch(func() error {
		ts, meta := o.adam.snapshot()
		b, err := json.Marshal(adamwMeta{Method: o.Name(), Params: meta, Begun: o.begun})
		st = &State{Tensors: ts, Meta: b}
		return err
	})
	return st, err
}

// LoadState restores a snapshot made by SaveState.
func (o *AdamW) LoadState(st *State) error {
	var meta adamwMeta
	if err := decodeMeta(st, o.Name(), &meta); err != nil {
		return err
	}
	return catch(func() error {
		o.begun = meta.Begun
		return o.adam.restore(st.Tensors, meta.Params, paramIndex(o.params))
	})
}

// Close frees the moments.
func (o *AdamW) Close() { o.adam.close() }

// decodeMeta parses st.Meta into v and checks its "method" field.
func decodeMeta(st *State, method string, v any) error {
	if st == nil {
		return fmt.Errorf("blockllm: nil optimizer state")
	}
	var head struct {
		Method string `json:"method"`
	}
	if err := json.Unmarshal(st.Meta, &head); err != nil {
		return fmt.Errorf("blockllm: optimizer state metadata: %w", err)
	}
	if head.Method != method {
		return fmt.Errorf("blockllm: optimizer state is for method %q, not %q", head.Method, method)
	}
	if err := json.Unmarshal(st.Meta, v); err != nil {
		return fmt.Errorf("blockllm: optimizer state metadata: %w", err)
	}
	return nil
}
