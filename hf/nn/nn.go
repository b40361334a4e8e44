// Package nn holds what the model families (hf/llama, hf/roberta) and the optimizers
// (blockllm) share: named parameters owned by a model's store, a forward hook that can
// substitute a parameter inside a forward pass (gradient-norm probes for BlockLLM's
// selection), an adapter that adds a term to linear layers (LoRA), the batch type, and the
// Model interface the trainer drives.
package nn

import (
	"fmt"
	"sort"

	"github.com/blockllm/blockllm-go/torch"
)

// Param is a named parameter. T is owned by the model's store and lives until the
// model closes; optimizers update it in place.
type Param struct {
	Name  string        // Hugging Face key, e.g. "model.layers.0.self_attn.q_proj.weight"
	T     *torch.Tensor // the weight, owned by the model's store
	Layer int           // transformer layer index, or -1 for embeddings, final norms and heads
	Head  bool          // a task head (classifier): always trained by BlockLLM
	Embed bool          // an embedding or LM head (not eligible for BlockLLM by default)
	// Linear marks the weight [out, in] of a linear layer that the model's forward passes
	// apply through Params.Linear, where an Adapter (LoRA) adds its term.
	Linear bool
}

// Numel is the number of elements of the parameter.
func (p *Param) Numel() int64 { return p.T.Numel() }

// Hook substitutes a parameter inside a forward pass: it gets the scope of the pass and
// returns the tensor to use in place of p.T (e.g. torch.NormProbe(p.T, ...)).
type Hook func(s *torch.Scope, p *Param) *torch.Tensor

// Adapter adds a term to the output of a linear layer applied through Params.Linear: it
// gets the layer's weight p (a Param.Linear), its input x and the forward pass's train
// flag (dropout), and returns the term to add to x·Wᵀ + b, or nil for none. The term may
// have another float dtype than the output (LoRA keeps float32 adapters for bf16
// weights, as peft): the sum is taken in the wider dtype and cast back, as peft does.
type Adapter func(p *Param, x *torch.Tensor, train bool) *torch.Tensor

// Adaptable is implemented by models whose linear layers (the Param.Linear weights) go
// through Params.Linear, so that an Adapter applies (hf/llama, hf/roberta).
type Adaptable interface {
	// SetAdapter installs (nil: removes) the adapter used by the next forward passes.
	SetAdapter(a Adapter)
}

// Batch is one training or evaluation batch. Shapes: InputIDs [B, T] int64;
// AttentionMask [B, T] int64 (1 = token, 0 = padding) or nil; Labels: for causal LMs
// [B, T] int64 (-100 ignored; nil means "use InputIDs"), for sequence classification
// [B] int64, for regression [B] float.
type Batch struct {
	InputIDs      *torch.Tensor
	AttentionMask *torch.Tensor
	Labels        *torch.Tensor
}

// Output is what a forward pass returns: the logits and, when labels were given, the
// Hugging Face loss (a scalar).
type Output struct {
	Logits *torch.Tensor
	Loss   *torch.Tensor
}

// Recomputer is implemented by models that can recompute layer activations in backward
// (activation checkpointing). SetRecompute switches it for the next forward passes and
// returns the previous setting.
type Recomputer interface {
	SetRecompute(on bool) (previous bool)
}

// Model is what optimizers and the trainer need of a model family.
type Model interface {
	// Parameters lists every parameter in module order (stable across calls).
	Parameters() []*Param
	// SetHook installs (nil: removes) the parameter hook used by the next forward passes.
	SetHook(h Hook)
	// Forward runs the model on b in scope s; the loss is set when b has labels (or, for
	// causal LMs, always). train enables dropout.
	Forward(s *torch.Scope, b *Batch, train bool) (*Output, error)
	// Device is where the parameters live.
	Device() torch.Device
	// Close frees the parameters.
	Close()
}

// Params is an ordered parameter registry with a hook, embedded by model structs.
type Params struct {
	Store  *torch.Scope
	list   []*Param
	byName map[string]*Param
	hook   Hook
	adapt  Adapter
}

// NewParams returns an empty registry with its own store.
func NewParams(name string) *Params {
	return &Params{Store: torch.NewStore(name), byName: map[string]*Param{}}
}

// Add registers a parameter (t must be owned by p.Store) and returns it.
func (p *Params) Add(name string, t *torch.Tensor, layer int) *Param {
	if _, dup := p.byName[name]; dup {
		panic(fmt.Sprintf("nn: parameter %q registered twice", name))
	}
	q := &Param{Name: name, T: t, Layer: layer}
	p.list = append(p.list, q)
	p.byName[name] = q
	return q
}

// Parameters lists the parameters in registration order.
func (p *Params) Parameters() []*Param { return p.list }

// Get returns the parameter with the given name, or nil.
func (p *Params) Get(name string) *Param { return p.byName[name] }

// Names lists parameter names sorted.
func (p *Params) Names() []string {
	out := make([]string, 0, len(p.list))
	for _, q := range p.list {
		out = append(out, q.Name)
	}
	sort.Strings(out)
	return out
}

// HasHook reports whether a forward hook is installed.
func (p *Params) HasHook() bool { return p.hook != nil }

// SetHook installs or removes (nil) the forward hook.
func (p *Params) SetHook(h Hook) { p.hook = h }

// W returns the tensor to use for q in a forward pass in scope s: q.T, or what the hook
// substitutes.
func (p *Params) W(s *torch.Scope, q *Param) *torch.Tensor {
	if q == nil {
		return nil
	}
	if p.hook != nil {
		return p.hook(s, q)
	}
	return q.T
}

// SetAdapter installs or removes (nil) the linear-layer adapter (nn.Adaptable).
func (p *Params) SetAdapter(a Adapter) { p.adapt = a }

// HasAdapter reports whether an adapter is installed.
func (p *Params) HasAdapter() bool { return p.adapt != nil }

// Linear applies the linear layer of weight w and bias b (nil: none) to x in a forward
// pass in scope s: x·Wᵀ + b with the hook's substitutes, plus the adapter's term for w
// when one is installed (train is the pass's train flag).
func (p *Params) Linear(s *torch.Scope, x *torch.Tensor, w, b *Param, train bool) *torch.Tensor {
	y := x.Linear(p.W(s, w), p.W(s, b))
	if p.adapt == nil {
		return y
	}
	d := p.adapt(w, x, train)
	if d == nil {
		return y
	}
	if dt := y.DType(); d.DType() != dt {
		return y.Add(d).To(dt) // peft: result + lora(x) in the wider dtype, cast back
	}
	return y.Add(d)
}

// Close frees every parameter.
func (p *Params) Close() { p.Store.Close() }

// NumParams is the total number of elements over all parameters.
func (p *Params) NumParams() int64 {
	var n int64
	for _, q := range p.list {
		n += q.Numel()
	}
	return n
}

// Bytes is the total storage of all parameters in bytes.
func (p *Params) Bytes() int64 {
	var n int64
	for _, q := range p.list {
		n += q.T.NBytes()
	}
	return n
}
