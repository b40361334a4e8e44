package torch

import (
	"fmt"
	"unsafe"

	"github.com/blockllm/blockllm-go/cgo"
)

// Checkpoint computes f(x) without keeping the activations inside f (activation
// recompute, as torch.utils.checkpoint with use_reentrant=True): only x is saved, and
// backward runs f again with grad enabled. Parameters used inside f receive their
// gradients during that backward. token is a scalar that requires grad (it makes the
// result differentiable when x itself does not require grad). f must be deterministic
// (no dropout) and must not keep tensors beyond its scope s. The result lands in x's
// scope; f stays registered until that scope closes, so backward must run before.
func Checkpoint(x, token *Tensor, f func(s *Scope, x *Tensor) *Tensor) *Tensor {
	rs := resultScope("checkpoint", x, token)
	token.check("checkpoint")
	id := register(rs, "checkpoint", f)
	h, err := cgo.Checkpoint(id, x.h, token.h)
	return wrap1("checkpoint", rs, h, err)
}

// register makes f callable from the shim (the checkpoint registry) until rs closes:
// the shim passes a tensor, f runs in a scope of its own, and its result goes back as a
// fresh handle the shim takes over.
func register(rs *Scope, op string, f func(s *Scope, x *Tensor) *Tensor) int64 {
	id := cgo.RegisterCheckpoint(func(xh unsafe.Pointer) (out unsafe.Pointer, err error) {
		s := NewScope()
		defer s.Close()
		err = Try(func() {
			r := f(s, &Tensor{h: xh, owner: s, alias: true})
			if r == nil || !r.Valid() {
				panic(&Error{Op: op, Msg: "function returned no tensor"})
			}
			h, e := cgo.Unary(cgo.OpAlias, r.h)
			if e != nil {
				fail(op, e)
			}
			out = h
		})
		if err != nil {
			return nil, fmt.Errorf("%v", err)
		}
		return out, nil
	})
	rs.OnClose(func() { cgo.UnregisterCheckpoint(id) })
	return id
}

// GradSink returns w (which must require grad) as a view whose gradient, summed over
// every use of the view in the forward pass, is handed to f during backward (with grad
// disabled) instead of being accumulated into w's .grad: f can update w in place (an
// optimizer step in backward), and the gradient is freed when f returns. f runs after
// every use of the view has run its backward. The result lands in w's scope (use
// scope.In for a stored tensor); f stays registered until that scope closes, so
// backward must run before. A panic in f fails the backward with its message.
func GradSink(w *Tensor, f func(s *Scope, g *Tensor)) *Tensor {
	rs := resultScope("grad_sink", w)
	id := register(rs, "grad_sink", func(s *Scope, g *Tensor) *Tensor {
		f(s, g)
		return g // the shim wants a tensor back; it drops it
	})
	h, err := cgo.GradSink(id, w.h)
	return wrap1("grad_sink", rs, h, err)
}
