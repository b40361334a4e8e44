package cgo

// #include "csrc/shim.h"
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// CheckpointFunc computes a function of x for activation recompute. It returns a new
// tensor handle that the shim takes over (and frees), or an error.
type CheckpointFunc func(x unsafe.Pointer) (unsafe.Pointer, error)

var ckpt = struct {
	sync.Mutex
	next int64
	fns  map[int64]CheckpointFunc
}{fns: map[int64]CheckpointFunc{}}

// RegisterCheckpoint stores f under a new id for Checkpoint.
func RegisterCheckpoint(f CheckpointFunc) int64 {
	ckpt.Lock()
	defer ckpt.Unlock()
	ckpt.next++
	ckpt.fns[ckpt.next] = f
	return ckpt.next
}

// UnregisterCheckpoint forgets id (after the graph that uses it is gone).
func UnregisterCheckpoint(id int64) {
	ckpt.Lock()
	delete(ckpt.fns, id)
	ckpt.Unlock()
}

// RegisteredCheckpoints is the number of registered functions (for leak tests).
func RegisteredCheckpoints() int {
	ckpt.Lock()
	defer ckpt.Unlock()
	return len(ckpt.fns)
}

//export btGoCheckpoint
func btGoCheckpoint(id C.int64_t, x C.bt_tensor, out *C.bt_tensor) (msg *C.char) {
	defer func() {
		if r := recover(); r != nil {
			msg = C.CString(fmt.Sprint("checkpoint function panicked: ", r))
		}
	}()
	ckpt.Lock()
	f := ckpt.fns[int64(id)]
	ckpt.Unlock()
	if f == nil {
		return C.CString(fmt.Sprintf("checkpoint: function %d is not registered (its scope was closed before backward)", int64(id)))
	}
	h, err := f(unsafe.Pointer(x))
	if err != nil {
		return C.CString(err.Error())
	}
	*out = C.bt_tensor(h)
	return nil
}
