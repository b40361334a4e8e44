// Package cgo is the only package of blockllm-go that imports "C". It loads the
// libtorch shim (build/lib/libblockllm_torch.so, built by `make shim`) at run time with
// dlopen, so that Go code builds without libtorch and a missing shim gives a clear
// message instead of a linker error, and exposes each shim function with Go types.
//
// Handles are opaque unsafe.Pointer values owned by the caller (free with Free). Every
// function returns an error carrying libtorch's message; none panics.
package cgo

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include "csrc/shim.h"

#define X(name, params, args) static const char* (*p_##name) params;
BT_FUNCS(X)
#undef X

static const char* bt_not_loaded(void) { return strdup("blockllm: the libtorch shim is not loaded (run `make shim`)"); }

#define X(name, params, args) \
  static const char* name params { if (p_##name == NULL) return bt_not_loaded(); return p_##name args; }
BT_FUNCS(X)
#undef X

extern char* btGoCheckpoint(int64_t id, bt_tensor x, bt_tensor* out);
static const char* bt_install_checkpoint(void) {
  return bt_set_checkpoint_callback((bt_checkpoint_fn)btGoCheckpoint);
}

// bt_load opens the shim and resolves every function; it returns NULL or a static/
// dlerror message (not to be freed).
static const char* bt_load(const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return dlerror();
#define X(name, params, args) \
  p_##name = (const char* (*) params) dlsym(h, #name); \
  if (p_##name == NULL) return "missing symbol " #name " (rebuild the shim: make shim)";
  BT_FUNCS(X)
#undef X
  return NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// LibName is the file name of the shim library.
const LibName = "libblockllm_torch.so"

var (
	loadOnce sync.Once
	loadErr  error
	loadPath string
)

// Load finds and opens the shim once. It tries, in order: $BLOCKLLM_SHIM (a file path),
// the dynamic loader's search path (LD_LIBRARY_PATH), <executable dir>/../lib and
// <executable dir>, and build/lib of the source tree this package was compiled from.
// The error says what was tried and what to run.
func Load() error {
	loadOnce.Do(func() { loadErr = load() })
	return loadErr
}

// LoadedPath is the path the shim was loaded from ("" before a successful Load).
func LoadedPath() string { return loadPath }

// threadDefaults are set before libtorch loads unless the user set them: libtorch runs
// its own OpenMP threads around BLAS calls, and a second pool of OpenBLAS threads, or
// OpenMP workers spinning after each region, fight them for the cores (a 2048^2 f32
// matmul ran at 21 GFLOP/s on 2 cores with the library defaults, over 50 with these).
var threadDefaults = [][2]string{{"OPENBLAS_NUM_THREADS", "1"}, {"GOMP_SPINCOUNT", "10000"}}

func load() error {
	for _, kv := range threadDefaults {
		if _, ok := os.LookupEnv(kv[0]); !ok {
			os.Setenv(kv[0], kv[1])
		}
	}
	return loadFrom(candidates())
}

// candidates lists where Load looks for the shim, in order.
func candidates() []string {
	var cands []string
	if p := os.Getenv("BLOCKLLM_SHIM"); p != "" {
		cands = append(cands, p)
	}
	cands = append(cands, LibName)
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		cands = append(cands, filepath.Join(d, "..", "lib", LibName), filepath.Join(d, LibName))
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		cands = append(cands, filepath.Join(filepath.Dir(file), "..", "build", "lib", LibName))
	}
	return cands
}

func loadFrom(cands []string) error {
	var tried []string
	for _, c := range cands {
		if strings.Contains(c, "/") {
			if _, err := os.Stat(c); err != nil {
				tried = append(tried, c+": not found")
				continue
			}
		}
		cs := C.CString(c)
		msg := C.bt_load(cs)
		C.free(unsafe.Pointer(cs))
		if msg == nil {
			loadPath = c
			return nil
		}
		tried = append(tried, c+": "+C.GoString(msg))
	}
	return fmt.Errorf("blockllm: cannot load the libtorch shim %s.\n"+
		"Build it from the repository root with `make shim` (it installs libtorch-dev and OpenBLAS "+
		"on Debian as root; or set LIBTORCH=/path/to/libtorch), or set BLOCKLLM_SHIM=/path/to/%s.\nTried:\n  %s",
		LibName, LibName, strings.Join(tried, "\n  "))
}

func check(msg *C.char) error {
	if msg == nil {
		return nil
	}
	s := C.GoString(msg)
	C.free(unsafe.Pointer(msg))
	if strings.Contains(s, "shim is not loaded") {
		if err := Load(); err != nil {
			return err
		}
	}
	return errors.New(s)
}

func i64p(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Version returns the libtorch version string (e.g. "1.13.0") and whether CUDA is usable.
func Version() (string, bool, error) {
	var buf [64]C.char
	var cuda C.int
	if err := check(C.bt_version(&buf[0], 64, &cuda)); err != nil {
		return "", false, err
	}
	return C.GoString(&buf[0]), cuda != 0, nil
}

// LiveHandles is the number of tensor handles the shim holds.
func LiveHandles() int64 {
	var n C.int64_t
	if check(C.bt_live_handles(&n)) != nil {
		return -1
	}
	return int64(n)
}

// SetNumThreads sets libtorch's intra-op thread count.
func SetNumThreads(n int) error { return check(C.bt_set_num_threads(C.int(n))) }

// NumThreads returns libtorch's intra-op thread count.
func NumThreads() (int, error) {
	var n C.int
	err := check(C.bt_get_num_threads(&n))
	return int(n), err
}

// SetDeterministic sets libtorch's deterministic-algorithms mode (as
// torch.use_deterministic_algorithms(on, warn_only=warnOnly)) and cuDNN's.
func SetDeterministic(on, warnOnly bool) error {
	return check(C.bt_set_deterministic(b2i(on), b2i(warnOnly)))
}

// Deterministic reports libtorch's deterministic-algorithms mode.
func Deterministic() (on, warnOnly bool, err error) {
	var o, w C.int
	err = check(C.bt_get_deterministic(&o, &w))
	return o != 0, w != 0, err
}

// ManualSeed seeds libtorch's default generators.
func ManualSeed(seed uint64) error { return check(C.bt_manual_seed(C.uint64_t(seed))) }

// CUDADeviceCount is the number of CUDA devices libtorch sees.
func CUDADeviceCount() (int, error) {
	var n C.int
	err := check(C.bt_cuda_device_count(&n))
	return int(n), err
}

// CUDASynchronize waits for all CUDA work on the device.
func CUDASynchronize(device int) error { return check(C.bt_cuda_synchronize(C.int(device))) }

// SetGradEnabled sets the calling OS thread's grad mode and returns the previous one.
// The caller must hold runtime.LockOSThread across the region (see docs/DESIGN.md, "The C boundary").
func SetGradEnabled(on bool) (bool, error) {
	var prev C.int
	err := check(C.bt_set_grad_enabled(b2i(on), &prev))
	return prev != 0, err
}

// GradEnabled reports the calling OS thread's grad mode.
func GradEnabled() (bool, error) {
	var on C.int
	err := check(C.bt_is_grad_enabled(&on))
	return on != 0, err
}

// MemStats returns the allocator's current and peak bytes on a device (CPU: the shim's
// counting allocator; CUDA: the caching allocator's allocated bytes).
func MemStats(devType, devIdx int) (cur, peak int64, err error) {
	var c, p C.int64_t
	err = check(C.bt_mem_stats(C.int(devType), C.int(devIdx), &c, &p))
	return int64(c), int64(p), err
}

// ResetPeak resets the peak statistic of a device to its current value.
func ResetPeak(devType, devIdx int) error {
	return check(C.bt_mem_reset_peak(C.int(devType), C.int(devIdx)))
}

// LiveTensorBytes sums the storage bytes held by live handles on a device, counting
// each storage once.
func LiveTensorBytes(devType, devIdx int) (int64, error) {
	var n C.int64_t
	err := check(C.bt_live_tensor_bytes(C.int(devType), C.int(devIdx), &n))
	return int64(n), err
}

// NewGenerator creates a seeded random generator on a device.
func NewGenerator(seed uint64, devType, devIdx int) (unsafe.Pointer, error) {
	var g C.bt_generator
	err := check(C.bt_generator_new(C.uint64_t(seed), C.int(devType), C.int(devIdx), &g))
	return unsafe.Pointer(g), err
}

// FreeGenerator frees a generator.
func FreeGenerator(g unsafe.Pointer) error { return check(C.bt_generator_free(C.bt_generator(g))) }

// GeneratorState returns the generator's state as a new u8 tensor handle.
func GeneratorState(g unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_generator_get_state(C.bt_generator(g), &out))
	return unsafe.Pointer(out), err
}

// SetGeneratorState restores a state from GeneratorState.
func SetGeneratorState(g, state unsafe.Pointer) error {
	return check(C.bt_generator_set_state(C.bt_generator(g), C.bt_tensor(state)))
}

// Free releases a tensor handle (nil is ignored).
func Free(t unsafe.Pointer) error { return check(C.bt_free(C.bt_tensor(t))) }

// Create makes a tensor: op is one of the BTC_* codes (empty, zeros, ones, full, randn, rand).
func Create(op int, shape []int64, dtype, devType, devIdx int, value float64, gen unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_create(C.int(op), i64p(shape), C.int(len(shape)), C.int(dtype), C.int(devType), C.int(devIdx),
		C.double(value), C.bt_generator(gen), &out))
	return unsafe.Pointer(out), err
}

// Arange is torch.arange(start, end, step).
func Arange(start, end, step float64, dtype, devType, devIdx int) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_arange(C.double(start), C.double(end), C.double(step), C.int(dtype), C.int(devType), C.int(devIdx), &out))
	return unsafe.Pointer(out), err
}

// RandInt is torch.randint(low, high, shape) as int64.
func RandInt(low, high int64, shape []int64, devType, devIdx int, gen unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_randint(C.int64_t(low), C.int64_t(high), i64p(shape), C.int(len(shape)), C.int(devType), C.int(devIdx),
		C.bt_generator(gen), &out))
	return unsafe.Pointer(out), err
}

// FromBytes copies raw little-endian bytes into a new CPU tensor.
func FromBytes(data []byte, shape []int64, dtype int) (unsafe.Pointer, error) {
	var out C.bt_tensor
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	err := check(C.bt_from_bytes(p, C.int64_t(len(data)), i64p(shape), C.int(len(shape)), C.int(dtype), &out))
	runtime.KeepAlive(data)
	return unsafe.Pointer(out), err
}

// ToBytes copies a tensor's data (moved to CPU, made contiguous) into dst, whose length
// must equal the tensor's byte size.
func ToBytes(t unsafe.Pointer, dst []byte) error {
	var p unsafe.Pointer
	if len(dst) > 0 {
		p = unsafe.Pointer(&dst[0])
	}
	err := check(C.bt_to_bytes(C.bt_tensor(t), p, C.int64_t(len(dst))))
	runtime.KeepAlive(dst)
	return err
}

// Info describes a tensor.
type Info struct {
	Shape        []int64
	DType        int
	DevType      int
	DevIdx       int
	RequiresGrad bool
}

// GetInfo returns a tensor's shape, dtype, device and requires_grad flag.
func GetInfo(t unsafe.Pointer) (Info, error) {
	var shape [16]C.int64_t
	var ndim, dtype, dt, di, rg C.int
	if err := check(C.bt_info(C.bt_tensor(t), &shape[0], 16, &ndim, &dtype, &dt, &di, &rg)); err != nil {
		return Info{}, err
	}
	if ndim > 16 {
		return Info{}, fmt.Errorf("tensor has %d dims; at most 16 are supported", ndim)
	}
	s := make([]int64, ndim)
	for i := range s {
		s[i] = int64(shape[i])
	}
	return Info{Shape: s, DType: int(dtype), DevType: int(dt), DevIdx: int(di), RequiresGrad: rg != 0}, nil
}

// Item returns the value of a one-element tensor as float64.
func Item(t unsafe.Pointer) (float64, error) {
	var v C.double
	err := check(C.bt_item(C.bt_tensor(t), &v))
	return float64(v), err
}

// To converts dtype and device.
func To(t unsafe.Pointer, dtype, devType, devIdx int) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_to(C.bt_tensor(t), C.int(dtype), C.int(devType), C.int(devIdx), &out))
	return unsafe.Pointer(out), err
}

// Unary applies a BT_* unary op.
func Unary(op int, a unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_unary(C.int(op), C.bt_tensor(a), &out))
	return unsafe.Pointer(out), err
}

// Binary applies a BT_* binary op (broadcasting).
func Binary(op int, a, b unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_binary(C.int(op), C.bt_tensor(a), C.bt_tensor(b), &out))
	return unsafe.Pointer(out), err
}

// Scalar applies a BTS_* op with a scalar operand.
func Scalar(op int, a unsafe.Pointer, s float64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_scalar(C.int(op), C.bt_tensor(a), C.double(s), &out))
	return unsafe.Pointer(out), err
}

// Linear is x @ w^T + b (b may be nil).
func Linear(x, w, b unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_linear(C.bt_tensor(x), C.bt_tensor(w), C.bt_tensor(b), &out))
	return unsafe.Pointer(out), err
}

// Where is torch.where(cond, a, b).
func Where(cond, a, b unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_where(C.bt_tensor(cond), C.bt_tensor(a), C.bt_tensor(b), &out))
	return unsafe.Pointer(out), err
}

// MaskedFill is a.masked_fill(mask, value).
func MaskedFill(a, mask unsafe.Pointer, value float64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_masked_fill(C.bt_tensor(a), C.bt_tensor(mask), C.double(value), &out))
	return unsafe.Pointer(out), err
}

// Tri is triu (upper) or tril with diagonal offset k.
func Tri(a unsafe.Pointer, k int64, upper bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_tri(C.bt_tensor(a), C.int64_t(k), b2i(upper), &out))
	return unsafe.Pointer(out), err
}

// Clamp clamps to [lo, hi]; either bound may be absent.
func Clamp(a unsafe.Pointer, lo, hi float64, hasLo, hasHi bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_clamp(C.bt_tensor(a), C.double(lo), C.double(hi), b2i(hasLo), b2i(hasHi), &out))
	return unsafe.Pointer(out), err
}

// Reduce applies a BTR_* reduction over dims (none: all); p is the norm order (or,
// for var, nonzero for the unbiased estimate).
func Reduce(op int, a unsafe.Pointer, dims []int64, keepdim bool, p float64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_reduce(C.int(op), C.bt_tensor(a), i64p(dims), C.int(len(dims)), b2i(keepdim), C.double(p), &out))
	return unsafe.Pointer(out), err
}

// MaxDim returns values and indices of the max (or min) along dim.
func MaxDim(a unsafe.Pointer, dim int64, keepdim, isMin bool) (unsafe.Pointer, unsafe.Pointer, error) {
	var v, i C.bt_tensor
	err := check(C.bt_max_dim(C.bt_tensor(a), C.int64_t(dim), b2i(keepdim), b2i(isMin), &v, &i))
	return unsafe.Pointer(v), unsafe.Pointer(i), err
}

// Argmax along dim.
func Argmax(a unsafe.Pointer, dim int64, keepdim bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_argmax(C.bt_tensor(a), C.int64_t(dim), b2i(keepdim), &out))
	return unsafe.Pointer(out), err
}

// TopK returns the k largest (or smallest) values and their indices along dim, sorted.
func TopK(a unsafe.Pointer, k, dim int64, largest bool) (unsafe.Pointer, unsafe.Pointer, error) {
	var v, i C.bt_tensor
	err := check(C.bt_topk(C.bt_tensor(a), C.int64_t(k), C.int64_t(dim), b2i(largest), &v, &i))
	return unsafe.Pointer(v), unsafe.Pointer(i), err
}

// SVD is the reduced singular value decomposition a = u diag(s) vh
// (torch.linalg.svd(a, full_matrices=False)).
func SVD(a unsafe.Pointer) (u, s, vh unsafe.Pointer, err error) {
	var cu, cs, cvh C.bt_tensor
	err = check(C.bt_linalg_svd(C.bt_tensor(a), &cu, &cs, &cvh))
	return unsafe.Pointer(cu), unsafe.Pointer(cs), unsafe.Pointer(cvh), err
}

// Softmax (or log-softmax) along dim, computed in dtype when dtype >= 0.
func Softmax(a unsafe.Pointer, dim int64, log bool, dtype int) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_softmax(C.bt_tensor(a), C.int64_t(dim), b2i(log), C.int(dtype), &out))
	return unsafe.Pointer(out), err
}

// Reshape (view=true requires compatible strides).
func Reshape(a unsafe.Pointer, shape []int64, view bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_reshape(C.bt_tensor(a), i64p(shape), C.int(len(shape)), b2i(view), &out))
	return unsafe.Pointer(out), err
}

// Expand broadcasts to shape (-1 keeps a size).
func Expand(a unsafe.Pointer, shape []int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_expand(C.bt_tensor(a), i64p(shape), C.int(len(shape)), &out))
	return unsafe.Pointer(out), err
}

// Permute reorders dims.
func Permute(a unsafe.Pointer, dims []int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_permute(C.bt_tensor(a), i64p(dims), C.int(len(dims)), &out))
	return unsafe.Pointer(out), err
}

// Transpose swaps two dims.
func Transpose(a unsafe.Pointer, d0, d1 int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_transpose(C.bt_tensor(a), C.int64_t(d0), C.int64_t(d1), &out))
	return unsafe.Pointer(out), err
}

// Slice is a[..., start:end:step, ...] along dim.
func Slice(a unsafe.Pointer, dim, start, end, step int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_slice(C.bt_tensor(a), C.int64_t(dim), C.int64_t(start), C.int64_t(end), C.int64_t(step), &out))
	return unsafe.Pointer(out), err
}

// Squeeze removes dim (all size-1 dims when all), or inserts one when unsqueeze.
func Squeeze(a unsafe.Pointer, dim int64, all, unsqueeze bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_squeeze(C.bt_tensor(a), C.int64_t(dim), b2i(all), b2i(unsqueeze), &out))
	return unsafe.Pointer(out), err
}

// Flatten merges dims start..end.
func Flatten(a unsafe.Pointer, start, end int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_flatten(C.bt_tensor(a), C.int64_t(start), C.int64_t(end), &out))
	return unsafe.Pointer(out), err
}

// IndexSelect picks entries of dim by an int64 index vector.
func IndexSelect(a unsafe.Pointer, dim int64, idx unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_index_select(C.bt_tensor(a), C.int64_t(dim), C.bt_tensor(idx), &out))
	return unsafe.Pointer(out), err
}

// Gather is torch.gather(a, dim, idx).
func Gather(a unsafe.Pointer, dim int64, idx unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_gather(C.bt_tensor(a), C.int64_t(dim), C.bt_tensor(idx), &out))
	return unsafe.Pointer(out), err
}

// IndexPut writes (or accumulates) values at a[idx] in place, without autograd.
func IndexPut(a, idx, values unsafe.Pointer, accumulate bool) error {
	return check(C.bt_index_put(C.bt_tensor(a), C.bt_tensor(idx), C.bt_tensor(values), b2i(accumulate)))
}

// Cat concatenates (or stacks) tensors along dim.
func Cat(ts []unsafe.Pointer, dim int64, stack bool) (unsafe.Pointer, error) {
	if len(ts) == 0 {
		return nil, errors.New("cat: no tensors")
	}
	arr := (*[1 << 20]C.bt_tensor)(C.malloc(C.size_t(len(ts)) * C.size_t(unsafe.Sizeof(C.bt_tensor(nil)))))[:len(ts):len(ts)]
	defer C.free(unsafe.Pointer(&arr[0]))
	for i, t := range ts {
		arr[i] = C.bt_tensor(t)
	}
	var out C.bt_tensor
	err := check(C.bt_cat(&arr[0], C.int(len(ts)), C.int64_t(dim), b2i(stack), &out))
	return unsafe.Pointer(out), err
}

// Split splits into pieces of size n (or into n chunks when chunk) along dim.
func Split(a unsafe.Pointer, n, dim int64, chunk bool, maxParts int) ([]unsafe.Pointer, error) {
	if maxParts < 1 {
		maxParts = 1
	}
	arr := (*[1 << 20]C.bt_tensor)(C.malloc(C.size_t(maxParts) * C.size_t(unsafe.Sizeof(C.bt_tensor(nil)))))[:maxParts:maxParts]
	defer C.free(unsafe.Pointer(&arr[0]))
	var cnt C.int
	if err := check(C.bt_split(C.bt_tensor(a), C.int64_t(n), C.int64_t(dim), b2i(chunk), &arr[0], C.int(maxParts), &cnt)); err != nil {
		return nil, err
	}
	out := make([]unsafe.Pointer, int(cnt))
	for i := range out {
		out[i] = unsafe.Pointer(arr[i])
	}
	return out, nil
}

// Embedding looks up rows of w by int64 ids.
func Embedding(w, ids unsafe.Pointer, paddingIdx int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_embedding(C.bt_tensor(w), C.bt_tensor(ids), C.int64_t(paddingIdx), &out))
	return unsafe.Pointer(out), err
}

// LayerNorm over the trailing dims given by shape; w and b may be nil.
func LayerNorm(x unsafe.Pointer, shape []int64, w, b unsafe.Pointer, eps float64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_layer_norm(C.bt_tensor(x), i64p(shape), C.int(len(shape)), C.bt_tensor(w), C.bt_tensor(b), C.double(eps), &out))
	return unsafe.Pointer(out), err
}

// RMSNorm as Hugging Face's LlamaRMSNorm (float32 inside, cast back, times w; w may be nil).
func RMSNorm(x, w unsafe.Pointer, eps float64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_rms_norm(C.bt_tensor(x), C.bt_tensor(w), C.double(eps), &out))
	return unsafe.Pointer(out), err
}

// SwiGLU is silu(g) * u as one autograd node that saves only g and u.
func SwiGLU(g, u unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_swiglu(C.bt_tensor(g), C.bt_tensor(u), &out))
	return unsafe.Pointer(out), err
}

// PaddedLinear is x @ pad(w)^T + pad(b) with w [N, K] zero-padded to [np, x's width].
func PaddedLinear(x, w, b unsafe.Pointer, np int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_padded_linear(C.bt_tensor(x), C.bt_tensor(w), C.bt_tensor(b), C.int64_t(np), &out))
	return unsafe.Pointer(out), err
}

// LinearCrossEntropy is the mean cross-entropy of x @ w^T (float32 logits) against
// labels, chunk rows at a time, with the gradients made in forward.
func LinearCrossEntropy(x, w, labels unsafe.Pointer, ignoreIndex, chunk int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_linear_cross_entropy(C.bt_tensor(x), C.bt_tensor(w), C.bt_tensor(labels), C.int64_t(ignoreIndex),
		C.int64_t(chunk), &out))
	return unsafe.Pointer(out), err
}

// Dropout with probability p when train.
func Dropout(x unsafe.Pointer, p float64, train bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_dropout(C.bt_tensor(x), C.double(p), b2i(train), &out))
	return unsafe.Pointer(out), err
}

// SDPA is scaled dot-product attention; mask may be nil, scale <= 0 means 1/sqrt(head_dim);
// fused selects libtorch's fused kernel where available (2.1+), else the math path.
func SDPA(q, k, v, mask unsafe.Pointer, dropout float64, causal bool, scale float64, fused bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_sdpa(C.bt_tensor(q), C.bt_tensor(k), C.bt_tensor(v), C.bt_tensor(mask), C.double(dropout), b2i(causal),
		C.double(scale), b2i(fused), &out))
	return unsafe.Pointer(out), err
}

// CrossEntropy over class logits [N, C] (or [N, C, ...]) and int64 targets; reduction
// 0 none, 1 mean, 2 sum.
func CrossEntropy(logits, target unsafe.Pointer, ignoreIndex int64, reduction int, labelSmoothing float64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_cross_entropy(C.bt_tensor(logits), C.bt_tensor(target), C.int64_t(ignoreIndex), C.int(reduction),
		C.double(labelSmoothing), &out))
	return unsafe.Pointer(out), err
}

// InPlace applies a BTI_* in-place update with autograd disabled.
func InPlace(op int, a, b, c unsafe.Pointer, s1, s2 float64) error {
	return check(C.bt_inplace(C.int(op), C.bt_tensor(a), C.bt_tensor(b), C.bt_tensor(c), C.double(s1), C.double(s2)))
}

// AdamWStep performs one torch.optim.AdamW update of p in place (step counts from 1).
func AdamWStep(p, g, m, v unsafe.Pointer, lr, beta1, beta2, eps, wd float64, step int64) error {
	return check(C.bt_adamw_step(C.bt_tensor(p), C.bt_tensor(g), C.bt_tensor(m), C.bt_tensor(v), C.double(lr),
		C.double(beta1), C.double(beta2), C.double(eps), C.double(wd), C.int64_t(step)))
}

// DynamicMap returns bitsandbytes' 8-bit dynamic quantisation map (256 sorted float32
// values in [-1, 1]; signed or unsigned) on the CPU.
func DynamicMap(signed bool) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_dynamic_map(b2i(signed), &out))
	return unsafe.Pointer(out), err
}

// QuantizeBlockwise writes a into the uint8 codes q and float32 block maxima absmax
// (block-wise quantisation with map code).
func QuantizeBlockwise(a, code unsafe.Pointer, blocksize int64, q, absmax unsafe.Pointer) error {
	return check(C.bt_quantize_blockwise(C.bt_tensor(a), C.bt_tensor(code), C.int64_t(blocksize), C.bt_tensor(q), C.bt_tensor(absmax)))
}

// DequantizeBlockwise returns the float32 values of codes q with block maxima absmax.
func DequantizeBlockwise(q, absmax, code unsafe.Pointer, blocksize int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_dequantize_blockwise(C.bt_tensor(q), C.bt_tensor(absmax), C.bt_tensor(code), C.int64_t(blocksize), &out))
	return unsafe.Pointer(out), err
}

// AdamW8bitStep is AdamWStep with 8-bit block-wise quantised moments (codes qm, qv,
// block maxima am, av, maps code1, code2); kernel selects the CPU kernel where it
// applies (else libtorch ops).
func AdamW8bitStep(p, g, qm, am, qv, av, code1, code2 unsafe.Pointer, blocksize int64, lr, beta1, beta2, eps, wd float64, step int64, kernel bool) error {
	return check(C.bt_adamw8bit_step(C.bt_tensor(p), C.bt_tensor(g), C.bt_tensor(qm), C.bt_tensor(am), C.bt_tensor(qv), C.bt_tensor(av),
		C.bt_tensor(code1), C.bt_tensor(code2), C.int64_t(blocksize), C.double(lr), C.double(beta1), C.double(beta2), C.double(eps),
		C.double(wd), C.int64_t(step), b2i(kernel)))
}

// SetRequiresGrad sets the requires_grad flag of a leaf tensor.
func SetRequiresGrad(t unsafe.Pointer, on bool) error {
	return check(C.bt_set_requires_grad(C.bt_tensor(t), b2i(on)))
}

// Backward runs backward from t with an optional seed gradient (nil: ones for a scalar).
func Backward(t, grad unsafe.Pointer, retainGraph bool) error {
	return check(C.bt_backward(C.bt_tensor(t), C.bt_tensor(grad), b2i(retainGraph)))
}

// Grad returns a new handle to t's .grad, or nil when it is undefined.
func Grad(t unsafe.Pointer) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_grad(C.bt_tensor(t), &out))
	return unsafe.Pointer(out), err
}

// GradReset zeroes t's .grad, or frees it when setToNone.
func GradReset(t unsafe.Pointer, setToNone bool) error {
	return check(C.bt_grad_reset(C.bt_tensor(t), b2i(setToNone)))
}

// NormProbe returns w passed through a gradient-norm probe: on backward, the squared
// 2-norm of the gradient reaching it is added to buf[slot]; no gradient is kept.
func NormProbe(w, token, buf unsafe.Pointer, slot int64) (unsafe.Pointer, error) {
	var out C.bt_tensor
	err := check(C.bt_norm_probe(C.bt_tensor(w), C.bt_tensor(token), C.bt_tensor(buf), C.int64_t(slot), &out))
	return unsafe.Pointer(out), err
}

var (
	installCkpt    sync.Once
	installCkptErr error
)

// installCallback hands the shim, once, the Go function that runs registered functions
// (Checkpoint's recompute and GradSink's gradient consumer).
func installCallback() error {
	installCkpt.Do(func() { installCkptErr = check(C.bt_install_checkpoint()) })
	return installCkptErr
}

// Checkpoint applies registered function id to x without recording its activations;
// backward recomputes it (token: a scalar that requires grad).
func Checkpoint(id int64, x, token unsafe.Pointer) (unsafe.Pointer, error) {
	if err := installCallback(); err != nil {
		return nil, err
	}
	var out C.bt_tensor
	err := check(C.bt_checkpoint(C.int64_t(id), C.bt_tensor(x), C.bt_tensor(token), &out))
	return unsafe.Pointer(out), err
}

// GradSink returns w as a view whose gradient backward hands to registered function id
// (the checkpoint registry) instead of accumulating it.
func GradSink(id int64, w unsafe.Pointer) (unsafe.Pointer, error) {
	if err := installCallback(); err != nil {
		return nil, err
	}
	var out C.bt_tensor
	err := check(C.bt_grad_sink(C.int64_t(id), C.bt_tensor(w), &out))
	return unsafe.Pointer(out), err
}

// cArray copies handles into a C array the caller frees.
func cArray(hs []unsafe.Pointer) *C.bt_tensor {
	arr := (*[1 << 20]C.bt_tensor)(C.malloc(C.size_t(len(hs)) * C.size_t(unsafe.Sizeof(C.bt_tensor(nil)))))[:len(hs):len(hs)]
	for i, h := range hs {
		arr[i] = C.bt_tensor(h)
	}
	return &arr[0]
}

// AdamWMulti performs one AdamW update of every (p, g, m, v) in one call, each with its
// own step count; with fused, libtorch's fused multi-tensor kernel runs where it can
// (CUDA, libtorch 2.1+, one dtype), which the result reports.
func AdamWMulti(ps, gs, ms, vs []unsafe.Pointer, steps []int64, lr, beta1, beta2, eps, wd float64, fused bool) (bool, error) {
	n := len(ps)
	if n == 0 {
		return false, nil
	}
	if len(gs) != n || len(ms) != n || len(vs) != n || len(steps) != n {
		return false, errors.New("adamw_multi: lists of different lengths")
	}
	cp, cg, cm, cv := cArray(ps), cArray(gs), cArray(ms), cArray(vs)
	defer C.free(unsafe.Pointer(cp))
	defer C.free(unsafe.Pointer(cg))
	defer C.free(unsafe.Pointer(cm))
	defer C.free(unsafe.Pointer(cv))
	var used C.int
	err := check(C.bt_adamw_multi(cp, cg, cm, cv, i64p(steps), C.int(n), C.double(lr), C.double(beta1), C.double(beta2),
		C.double(eps), C.double(wd), b2i(fused), &used))
	runtime.KeepAlive(steps)
	return used != 0, err
}
