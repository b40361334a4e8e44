// Package torch is blockllm-go's tensor API over libtorch (through package cgo): tensors
// with autograd, scopes that own them, dtypes, devices, random generators and memory
// statistics.
//
// Ownership. Every tensor is owned by a Scope. Tensors made by an op belong to the scope
// of the first operand whose owner is a working scope (not a Store); tensors owned by
// Stores (parameters, optimizer state) never collect op results, so `w.Matmul(x)` puts
// its result in x's scope. When no operand has a working scope, the op panics; use
// s.In(t) to direct results into s. Scope.Close frees what the scope owns; Keep/MoveTo
// move a tensor to another owner.
//
// Errors. Shape, dtype and device mistakes panic with a *Error carrying libtorch's
// message; Try (and the public entry points of higher packages) recover them as errors.
package torch

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/blockllm/blockllm-go/cgo"
)

// Error is the panic value of a failed op: the op's name and libtorch's message.
type Error struct {
	Op  string
	Msg string
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// Try runs f and returns a *Error panic from it as an error; other panics propagate.
func Try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

func fail(op string, err error) {
	msg := err.Error()
	// libtorch messages may carry a trailing source-location line; keep the message.
	msg = strings.TrimSpace(msg)
	panic(&Error{Op: op, Msg: msg})
}

var initOnce sync.Once

// Init loads the libtorch shim. Ops call it implicitly; commands call it first to print
// its clear message (what to build) instead of failing later.
func Init() error {
	if err := cgo.Load(); err != nil {
		return err
	}
	initOnce.Do(func() {})
	return nil
}

func mustInit(op string) {
	if err := cgo.Load(); err != nil {
		fail(op, err)
	}
}

// Tensor is a handle to a libtorch tensor. The zero value is not usable; tensors come
// from Scope constructors and ops. A Tensor must not be used after its owner closes.
type Tensor struct {
	h     unsafe.Pointer
	owner *Scope
	idx   int  // position in owner.ts
	alias bool // a non-owning view of another Tensor's handle (Scope.In)

	infoOnce sync.Once
	shape    []int64
	dtype    DType
	device   Device
}

// Scope owns tensors and frees them on Close. It is safe for concurrent use.
type Scope struct {
	mu      sync.Mutex
	ts      []*Tensor
	store   bool
	closed  bool
	name    string
	onClose []func()
}

// OnClose registers f to run when the scope closes or resets (after its tensors are
// freed).
func (s *Scope) OnClose(f func()) {
	s.mu.Lock()
	s.onClose = append(s.onClose, f)
	s.mu.Unlock()
}

func (s *Scope) runOnClose() {
	s.mu.Lock()
	fs := s.onClose
	s.onClose = nil
	s.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// NewScope returns a working scope: op results land here.
func NewScope() *Scope { return &Scope{} }

// NewStore returns a long-lived owner (parameters, optimizer state): op results never
// land in a store.
func NewStore(name string) *Scope { return &Scope{store: true, name: name} }

// WithScope runs f with a fresh scope, closes it, and returns f's error or a recovered
// *Error.
func WithScope(f func(s *Scope) error) (err error) {
	s := NewScope()
	defer s.Close()
	if e := Try(func() { err = f(s) }); e != nil {
		return e
	}
	return err
}

func (s *Scope) add(h unsafe.Pointer) *Tensor {
	t := &Tensor{h: h, owner: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = cgo.Free(h)
		panic(&Error{Op: "scope", Msg: "result added to a closed scope"})
	}
	t.idx = len(s.ts)
	s.ts = append(s.ts, t)
	s.mu.Unlock()
	return t
}

// remove drops t from s's list in O(1) (amortised), trimming trailing holes.
func (s *Scope) remove(t *Tensor) {
	s.mu.Lock()
	if t.idx < len(s.ts) && s.ts[t.idx] == t {
		s.ts[t.idx] = nil
		for len(s.ts) > 0 && s.ts[len(s.ts)-1] == nil {
			s.ts = s.ts[:len(s.ts)-1]
		}
	}
	s.mu.Unlock()
}

// Len is the number of tensors the scope owns.
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.ts {
		if t != nil && t.h != nil {
			n++
		}
	}
	return n
}

// Close frees every tensor the scope owns. Closing twice is a no-op.
func (s *Scope) Close() {
	s.mu.Lock()
	ts := s.ts
	s.ts = nil
	s.closed = true
	s.mu.Unlock()
	for i := len(ts) - 1; i >= 0; i-- {
		if t := ts[i]; t != nil && t.h != nil {
			_ = cgo.Free(t.h)
			t.h = nil
		}
	}
	s.runOnClose()
}

// Reset frees every tensor the scope owns and leaves it open for reuse.
func (s *Scope) Reset() {
	s.mu.Lock()
	ts := s.ts
	s.ts = nil
	s.mu.Unlock()
	for i := len(ts) - 1; i >= 0; i-- {
		if t := ts[i]; t != nil && t.h != nil {
			_ = cgo.Free(t.h)
			t.h = nil
		}
	}
	s.runOnClose()
}

// In returns a non-owning alias of t whose op results land in s. The alias is valid as
// long as t is.
func (s *Scope) In(t *Tensor) *Tensor {
	t.check("in")
	return &Tensor{h: t.h, owner: s, alias: true}
}

// MoveTo moves t out of its scope into dst (a Store or another scope) and returns it.
func (t *Tensor) MoveTo(dst *Scope) *Tensor {
	t.check("move")
	if t.alias {
		panic(&Error{Op: "move", Msg: "cannot move an alias made by Scope.In"})
	}
	src := t.owner
	if src == dst {
		return t
	}
	src.remove(t)
	dst.mu.Lock()
	t.owner = dst
	t.idx = len(dst.ts)
	dst.ts = append(dst.ts, t)
	dst.mu.Unlock()
	return t
}

// Free releases t now (instead of when its owner closes).
func (t *Tensor) Free() {
	if t == nil || t.h == nil {
		return
	}
	if t.alias {
		panic(&Error{Op: "free", Msg: "cannot free an alias made by Scope.In"})
	}
	t.owner.remove(t)
	_ = cgo.Free(t.h)
	t.h = nil
}

// Valid reports whether t still refers to a live tensor.
func (t *Tensor) Valid() bool { return t != nil && t.h != nil }

func (t *Tensor) check(op string) {
	if t == nil || t.h == nil {
		panic(&Error{Op: op, Msg: "use of a nil or freed tensor"})
	}
}

// resultScope picks where an op's result lands: the owner of the first operand that is a
// working scope.
func resultScope(op string, ts ...*Tensor) *Scope {
	for _, t := range ts {
		if t == nil {
			continue
		}
		t.check(op)
		if !t.owner.store {
			return t.owner
		}
	}
	panic(&Error{Op: op, Msg: "no operand belongs to a working scope (all are owned by stores); use scope.In(t)"})
}

func handle(t *Tensor) unsafe.Pointer {
	if t == nil {
		return nil
	}
	return t.h
}

// ---- metadata -------------------------------------------------------------------

func (t *Tensor) loadInfo() {
	t.infoOnce.Do(func() {
		info, err := cgo.GetInfo(t.h)
		if err != nil {
			fail("info", err)
		}
		t.shape = info.Shape
		t.dtype = DType(info.DType)
		t.device = Device{Type: DeviceType(info.DevType), Index: info.DevIdx}
	})
}

// Shape returns the sizes (a copy).
func (t *Tensor) Shape() []int64 {
	t.check("shape")
	t.loadInfo()
	return append([]int64(nil), t.shape...)
}

// Dim is the number of dimensions.
func (t *Tensor) Dim() int {
	t.check("dim")
	t.loadInfo()
	return len(t.shape)
}

// Size returns the size of dim d (negative counts from the end).
func (t *Tensor) Size(d int) int64 {
	t.check("size")
	t.loadInfo()
	if d < 0 {
		d += len(t.shape)
	}
	if d < 0 || d >= len(t.shape) {
		panic(&Error{Op: "size", Msg: fmt.Sprintf("dim %d out of range for shape %v", d, t.shape)})
	}
	return t.shape[d]
}

// Numel is the number of elements.
func (t *Tensor) Numel() int64 {
	t.check("numel")
	t.loadInfo()
	return numel(t.shape)
}

// NBytes is Numel times the element size.
func (t *Tensor) NBytes() int64 { return t.Numel() * int64(t.DType().Size()) }

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}

// DType is the element type.
func (t *Tensor) DType() DType {
	t.check("dtype")
	t.loadInfo()
	return t.dtype
}

// Device is where the data lives.
func (t *Tensor) Device() Device {
	t.check("device")
	t.loadInfo()
	return t.device
}

// RequiresGrad reports the autograd flag.
func (t *Tensor) RequiresGrad() bool {
	t.check("requires_grad")
	info, err := cgo.GetInfo(t.h)
	if err != nil {
		fail("requires_grad", err)
	}
	return info.RequiresGrad
}

// String prints shape, dtype and device (not the data).
func (t *Tensor) String() string {
	if !t.Valid() {
		return "Tensor(freed)"
	}
	return fmt.Sprintf("Tensor(%v, %v, %v)", t.Shape(), t.DType(), t.Device())
}

// ---- library --------------------------------------------------------------------

// Version returns the libtorch version ("1.13.0").
func Version() string {
	mustInit("version")
	v, _, err := cgo.Version()
	if err != nil {
		fail("version", err)
	}
	return v
}

// VersionAtLeast reports whether the loaded libtorch is major.minor or newer.
func VersionAtLeast(major, minor int) bool {
	var maj, min int
	if _, err := fmt.Sscanf(Version(), "%d.%d", &maj, &min); err != nil {
		fail("version", fmt.Errorf("unparsable libtorch version %q", Version()))
	}
	return maj > major || (maj == major && min >= minor)
}

// CUDAAvailable reports whether libtorch can use CUDA.
func CUDAAvailable() bool {
	mustInit("cuda_available")
	_, c, err := cgo.Version()
	if err != nil {
		fail("cuda_available", err)
	}
	return c
}

// CUDADeviceCount is the number of CUDA devices.
func CUDADeviceCount() int {
	mustInit("cuda_device_count")
	n, err := cgo.CUDADeviceCount()
	if err != nil {
		fail("cuda_device_count", err)
	}
	return n
}

// Synchronize waits for the device's queued work (no-op on CPU).
func Synchronize(d Device) {
	if d.Type != CUDAType {
		return
	}
	if err := cgo.CUDASynchronize(d.Index); err != nil {
		fail("synchronize", err)
	}
}

// ManualSeed seeds libtorch's default generators (all devices).
func ManualSeed(seed uint64) {
	mustInit("manual_seed")
	if err := cgo.ManualSeed(seed); err != nil {
		fail("manual_seed", err)
	}
}

// SetNumThreads sets the intra-op thread count (n <= 0: all cores).
func SetNumThreads(n int) {
	mustInit("set_num_threads")
	if n <= 0 {
		n = runtime.NumCPU()
	}
	if err := cgo.SetNumThreads(n); err != nil {
		fail("set_num_threads", err)
	}
}

// NumThreads is the intra-op thread count.
func NumThreads() int {
	mustInit("num_threads")
	n, err := cgo.NumThreads()
	if err != nil {
		fail("num_threads", err)
	}
	return n
}

// cublasWorkspace is the CUBLAS_WORKSPACE_CONFIG cuBLAS needs for reproducible results
// (and that libtorch's deterministic mode requires for CUDA matrix products).
const cublasWorkspace = ":4096:8"

// SetDeterministic turns libtorch's deterministic-algorithms mode on or off, as
// torch.use_deterministic_algorithms(on, warn_only=warnOnly) with
// torch.backends.cudnn.deterministic = on: ops that have a deterministic implementation
// use it; the others fail with libtorch's message naming the op (warnOnly: warn and run).
// Turning it on also sets CUBLAS_WORKSPACE_CONFIG=:4096:8 unless the environment sets
// it; cuBLAS reads it when it starts, so call this before the first CUDA matrix product.
//
// CPU training needs none of this to be bitwise reproducible: runs with the same
// thread count (SetNumThreads), libtorch and CPU give the same bits. The mode matters
// for CUDA kernels that accumulate with atomics.
func SetDeterministic(on, warnOnly bool) {
	mustInit("set_deterministic")
	if on {
		if _, ok := os.LookupEnv("CUBLAS_WORKSPACE_CONFIG"); !ok {
			os.Setenv("CUBLAS_WORKSPACE_CONFIG", cublasWorkspace)
		}
	}
	if err := cgo.SetDeterministic(on, warnOnly); err != nil {
		fail("set_deterministic", err)
	}
}

// Deterministic reports whether libtorch's deterministic-algorithms mode is on.
func Deterministic() bool {
	mustInit("deterministic")
	on, _, err := cgo.Deterministic()
	if err != nil {
		fail("deterministic", err)
	}
	return on
}

// LiveTensors is the number of tensor handles alive in the shim (for leak checks).
func LiveTensors() int64 {
	mustInit("live_tensors")
	return cgo.LiveHandles()
}

// MemStats returns the device allocator's current and peak bytes. On CPU these come
// from the shim's counting allocator (all tensor storage, autograd's saved activations
// included); on CUDA from the caching allocator.
func MemStats(d Device) (current, peak int64) {
	mustInit("mem_stats")
	c, p, err := cgo.MemStats(int(d.Type), d.Index)
	if err != nil {
		fail("mem_stats", err)
	}
	return c, p
}

// ResetPeakMemory sets the device's peak statistic to its current value.
func ResetPeakMemory(d Device) {
	mustInit("reset_peak")
	if err := cgo.ResetPeak(int(d.Type), d.Index); err != nil {
		fail("reset_peak", err)
	}
}

// LiveTensorBytes sums the storage bytes of live tensor handles on a device, counting
// each storage once.
func LiveTensorBytes(d Device) int64 {
	mustInit("live_tensor_bytes")
	n, err := cgo.LiveTensorBytes(int(d.Type), d.Index)
	if err != nil {
		fail("live_tensor_bytes", err)
	}
	return n
}

// GradEnabled reports whether autograd records operations on the calling OS thread.
// It is meaningful where the goroutine's thread is fixed: inside NoGrad, and inside a
// Checkpoint function (false while Checkpoint runs it forward, true while backward
// recomputes it); elsewhere it reports the default, true.
func GradEnabled() bool {
	mustInit("grad_enabled")
	on, err := cgo.GradEnabled()
	if err != nil {
		fail("grad_enabled", err)
	}
	return on
}

// NoGrad runs f with autograd recording disabled on this goroutine's OS thread. The
// goroutine is pinned to its thread for the region (grad mode is thread-local).
func NoGrad(f func()) {
	mustInit("no_grad")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := cgo.SetGradEnabled(false)
	if err != nil {
		fail("no_grad", err)
	}
	defer func() {
		if _, err := cgo.SetGradEnabled(prev); err != nil {
			fail("no_grad", err)
		}
	}()
	f()
}
