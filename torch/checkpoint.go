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
	id := cgo.RegisterCheckpoint(func(xh unsafe.Pointer) (out unsafe.Pointer, err error) {
		s := NewScope()
		defer s.Close()
		err = Try(func() {
			r := f(s, &Tensor{h: xh, owner: s, alias: true})
			if r == nil || !r.Valid() {
				panic(&Error{Op: "checkpoint", Msg: "function returned no tensor"})
			}
			h, e := cgo.Unary(cgo.OpAlias, r.h) // a fresh handle the shim takes over
			if e != nil {
				fail("checkpoint", e)
			}
			out = h
		})
		if err != nil {
			return nil, fmt.Errorf("%v", err)
		}
		return out, nil
	})
	rs.OnClose(func() { cgo.UnregisterCheckpoint(id) })
	h, err := cgo.Checkpoint(id, x.h, token.h)
	return wrap1("checkpoint", rs, h, err)
}
