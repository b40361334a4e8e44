package cgo

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include "csrc/dist.h"

#define X(name, params, args) static const char* (*p_##name) params;
BT_DIST_FUNCS(X)
#undef X

static const char* btd_not_loaded(void) { return strdup("blockllm: the libtorch shim is not loaded (run `make shim`)"); }

#define X(name, params, args) \
  static const char* name params { if (p_##name == NULL) return btd_not_loaded(); return p_##name args; }
BT_DIST_FUNCS(X)
#undef X

// btd_load resolves the distributed functions in the shim that Load opened (dlopen of
// the same path returns the same library).
static const char* btd_load(const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return dlerror();
#define X(name, params, args) \
  p_##name = (const char* (*) params) dlsym(h, #name); \
  if (p_##name == NULL) return "missing symbol " #name " (rebuild the shim: make shim)";
  BT_DIST_FUNCS(X)
#undef X
  return NULL;
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Backends and reduce ops of the distributed functions (dist.h).
const (
	BackendGloo = int(C.BTD_GLOO)
	BackendNCCL = int(C.BTD_NCCL)

	ReduceSum = int(C.BTD_SUM)
	ReduceAvg = int(C.BTD_AVG)
	ReduceMax = int(C.BTD_MAX)
	ReduceMin = int(C.BTD_MIN)
)

var (
	distOnce sync.Once
	distErr  error
)

func loadDist() error {
	if err := Load(); err != nil {
		return err
	}
	distOnce.Do(func() {
		cs := C.CString(loadPath)
		defer C.free(unsafe.Pointer(cs))
		if msg := C.btd_load(cs); msg != nil {
			distErr = fmt.Errorf("blockllm: %s: %s", loadPath, C.GoString(msg))
		}
	})
	return distErr
}

// dcheck is check for the distributed functions: it loads them first.
func dcheck(call func() *C.char) error {
	if err := loadDist(); err != nil {
		return err
	}
	return check(call())
}

func ms(d time.Duration) C.int64_t {
	if d <= 0 {
		return 0
	}
	if d < time.Millisecond {
		return 1
	}
	return C.int64_t(d / time.Millisecond)
}

// DistFeatures reports whether the shim was built with Gloo and with NCCL.
func DistFeatures() (gloo, nccl bool, err error) {
	var g, n C.int
	err = dcheck(func() *C.char { return C.bt_dist_features(&g, &n) })
	return g != 0, n != 0, err
}

// StoreTCP creates a c10d TCPStore: the server (hosted in this process, port 0 picks a
// free one) or a client of host:port. It returns the store and its port.
func StoreTCP(host string, port int, server bool, timeout time.Duration) (unsafe.Pointer, int, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var s C.bt_store
	var bound C.int
	err := dcheck(func() *C.char { return C.bt_store_tcp(ch, C.int(port), b2i(server), ms(timeout), &s, &bound) })
	return unsafe.Pointer(s), int(bound), err
}

// StoreFile creates a c10d FileStore on path shared by worldSize processes.
func StoreFile(path string, worldSize int, timeout time.Duration) (unsafe.Pointer, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var s C.bt_store
	err := dcheck(func() *C.char { return C.bt_store_file(cp, C.int(worldSize), ms(timeout), &s) })
	return unsafe.Pointer(s), err
}

// StorePrefix returns a c10d PrefixStore that prepends prefix to every key of base.
func StorePrefix(base unsafe.Pointer, prefix string) (unsafe.Pointer, error) {
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	var s C.bt_store
	err := dcheck(func() *C.char { return C.bt_store_prefix(C.bt_store(base), cp, &s) })
	return unsafe.Pointer(s), err
}

// StoreFree releases a store handle (the store lives on while a prefix store or a
// process group made from it does).
func StoreFree(s unsafe.Pointer) error {
	return dcheck(func() *C.char { return C.bt_store_free(C.bt_store(s)) })
}

// StoreSet sets key to value.
func StoreSet(s unsafe.Pointer, key string, value []byte) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return dcheck(func() *C.char { return C.bt_store_set(C.bt_store(s), ck, p, C.int64_t(len(value))) })
}

// StoreGet waits up to timeout (<= 0: the store's own) for key and returns its value.
func StoreGet(s unsafe.Pointer, key string, timeout time.Duration) ([]byte, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	var n C.int64_t
	if err := dcheck(func() *C.char { return C.bt_store_get(C.bt_store(s), ck, ms(timeout), &p, &n) }); err != nil {
		return nil, err
	}
	if p == nil {
		return []byte{}, nil
	}
	defer C.free(p)
	return C.GoBytes(p, C.int(n)), nil
}

// StoreAdd adds delta to the integer at key (created as 0) and returns the new value.
func StoreAdd(s unsafe.Pointer, key string, delta int64) (int64, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v C.int64_t
	err := dcheck(func() *C.char { return C.bt_store_add(C.bt_store(s), ck, C.int64_t(delta), &v) })
	return int64(v), err
}

// StoreCheck reports whether key exists, without waiting.
func StoreCheck(s unsafe.Pointer, key string) (bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var e C.int
	err := dcheck(func() *C.char { return C.bt_store_check(C.bt_store(s), ck, &e) })
	return e != 0, err
}

// PGNew creates a process group on store: Gloo (on the interfaces in ifname, else the
// address of host, else the default device) or NCCL (on cuda:device). It returns once
// every rank has joined, or with the backend's error after timeout.
func PGNew(backend int, store unsafe.Pointer, rank, size int, timeout time.Duration, ifname, host string, device int) (unsafe.Pointer, error) {
	ci := C.CString(ifname)
	defer C.free(unsafe.Pointer(ci))
	chost := C.CString(host)
	defer C.free(unsafe.Pointer(chost))
	var pg C.bt_pg
	err := dcheck(func() *C.char {
		return C.bt_pg_new(C.int(backend), C.bt_store(store), C.int(rank), C.int(size), ms(timeout), ci, chost, C.int(device), &pg)
	})
	return unsafe.Pointer(pg), err
}

// PGFree frees a process group, or abandons it (abandoned is true) when its last
// collective failed: its threads may still wait on a dead peer.
func PGFree(pg unsafe.Pointer) (abandoned bool, err error) {
	var a C.int
	err = dcheck(func() *C.char { return C.bt_pg_free(C.bt_pg(pg), &a) })
	return a != 0, err
}

// PGAllReduce issues an all-reduce of ts in place (several tensors: one flattened bucket).
func PGAllReduce(pg unsafe.Pointer, ts []unsafe.Pointer, op int, timeout time.Duration) (unsafe.Pointer, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("all_reduce: no tensors")
	}
	arr := cArray(ts)
	defer C.free(unsafe.Pointer(arr))
	var w C.bt_work
	err := dcheck(func() *C.char { return C.bt_pg_allreduce(C.bt_pg(pg), arr, C.int(len(ts)), C.int(op), ms(timeout), &w) })
	return unsafe.Pointer(w), err
}

// PGBroadcast issues a broadcast of t from root.
func PGBroadcast(pg, t unsafe.Pointer, root int, timeout time.Duration) (unsafe.Pointer, error) {
	var w C.bt_work
	err := dcheck(func() *C.char { return C.bt_pg_broadcast(C.bt_pg(pg), C.bt_tensor(t), C.int(root), ms(timeout), &w) })
	return unsafe.Pointer(w), err
}

// PGAllGather issues an all-gather of in into outs (one per rank).
func PGAllGather(pg, in unsafe.Pointer, outs []unsafe.Pointer, timeout time.Duration) (unsafe.Pointer, error) {
	if len(outs) == 0 {
		return nil, fmt.Errorf("all_gather: no output tensors")
	}
	arr := cArray(outs)
	defer C.free(unsafe.Pointer(arr))
	var w C.bt_work
	err := dcheck(func() *C.char {
		return C.bt_pg_allgather(C.bt_pg(pg), C.bt_tensor(in), arr, C.int(len(outs)), ms(timeout), &w)
	})
	return unsafe.Pointer(w), err
}

// PGAllGatherFlat issues an all-gather of in into flat (world size x numel(in) elements).
func PGAllGatherFlat(pg, in, flat unsafe.Pointer, timeout time.Duration) (unsafe.Pointer, error) {
	var w C.bt_work
	err := dcheck(func() *C.char {
		return C.bt_pg_allgather_flat(C.bt_pg(pg), C.bt_tensor(in), C.bt_tensor(flat), ms(timeout), &w)
	})
	return unsafe.Pointer(w), err
}

// PGReduceScatter issues a reduce-scatter: in (world size x numel(out) elements) is
// reduced across ranks and out receives this rank's chunk.
func PGReduceScatter(pg, in, out unsafe.Pointer, op int, timeout time.Duration) (unsafe.Pointer, error) {
	var w C.bt_work
	err := dcheck(func() *C.char {
		return C.bt_pg_reduce_scatter(C.bt_pg(pg), C.bt_tensor(in), C.bt_tensor(out), C.int(op), ms(timeout), &w)
	})
	return unsafe.Pointer(w), err
}

// PGBarrier issues a barrier.
func PGBarrier(pg unsafe.Pointer, timeout time.Duration) (unsafe.Pointer, error) {
	var w C.bt_work
	err := dcheck(func() *C.char { return C.bt_pg_barrier(C.bt_pg(pg), ms(timeout), &w) })
	return unsafe.Pointer(w), err
}

// PGInfo reports how reduce-scatter ran (1 the backend's own, 0 all-reduce and slice,
// -1 not yet run) and why the group is unusable ("" while it works).
func PGInfo(pg unsafe.Pointer) (rsNative int, broken string, err error) {
	var rs C.int
	var buf [1024]C.char
	err = dcheck(func() *C.char { return C.bt_pg_info(C.bt_pg(pg), &rs, &buf[0], 1024) })
	return int(rs), C.GoString(&buf[0]), err
}

// WorkWait waits up to timeout (<= 0: the timeout it was issued with) for a collective
// and copies its results into the caller's tensors.
func WorkWait(w unsafe.Pointer, timeout time.Duration) error {
	err := dcheck(func() *C.char { return C.bt_work_wait(C.bt_work(w), ms(timeout)) })
	runtime.KeepAlive(w)
	return err
}

// WorkFree releases a work handle.
func WorkFree(w unsafe.Pointer) error {
	return dcheck(func() *C.char { return C.bt_work_free(C.bt_work(w)) })
}
