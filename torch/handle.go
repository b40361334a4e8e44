package torch

import "unsafe"

// Handle returns t's shim handle, for packages of this module that call the shim
// through package cgo themselves (torch/dist's collectives). t keeps ownership: the
// handle is valid while t is, and must not be freed. It panics with a *Error on a nil
// or freed tensor.
func (t *Tensor) Handle() unsafe.Pointer {
	t.check("handle")
	return t.h
}
