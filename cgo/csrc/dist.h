/*
 * blockllm-go libtorch shim, distributed part: c10d stores, process groups and
 * collectives (dist.cpp). Same conventions as shim.h: every function returns NULL or a
 * malloc'd error message, results go through out-parameters, objects are opaque handles
 * freed by their *_free function. No call aborts the process: a lost peer or a timeout
 * comes back as the message.
 *
 * The list is an X-macro of its own so that package cgo resolves it with dlsym from the
 * same library (cgo/dist.go), next to shim.h's BT_FUNCS.
 *
 * Collectives are asynchronous: a bt_pg_* call issues the operation and returns a
 * bt_work; bt_work_wait waits (with a timeout) and finishes it (copies staged results
 * back into the caller's tensors, divides for an average). Every rank must issue the
 * same collectives in the same order, as with torch.distributed. After any failure the
 * group refuses further collectives (its ranks are out of step): close it.
 *
 * Timeouts are milliseconds; <= 0 means the group's default (bt_pg_new's timeout).
 */
#ifndef BLOCKLLM_DIST_H
#define BLOCKLLM_DIST_H

#include <stdint.h>
#include <stddef.h>

#include "shim.h"

typedef void* bt_store;
typedef void* bt_pg;
typedef void* bt_work;

enum bt_dist_backend { BTD_GLOO = 0, BTD_NCCL = 1 };
enum bt_dist_reduce { BTD_SUM = 0, BTD_AVG = 1, BTD_MAX = 2, BTD_MIN = 3 };

#define BT_DIST_FUNCS(X) \
  /* what this shim was built with: Gloo headers, NCCL (BT_CUDA and nccl.h) */ \
  X(bt_dist_features, (int* gloo, int* nccl), (gloo, nccl)) \
  /* stores: a TCPStore (is_server: host it here; port 0 picks one, reported in bound_port), \
     a FileStore, a PrefixStore over another store */ \
  X(bt_store_tcp, (const char* host, int port, int is_server, int64_t timeout_ms, bt_store* out, int* bound_port), (host, port, is_server, timeout_ms, out, bound_port)) \
  X(bt_store_file, (const char* path, int world_size, int64_t timeout_ms, bt_store* out), (path, world_size, timeout_ms, out)) \
  X(bt_store_prefix, (bt_store base, const char* prefix, bt_store* out), (base, prefix, out)) \
  X(bt_store_free, (bt_store s), (s)) \
  X(bt_store_set, (bt_store s, const char* key, const void* data, int64_t n), (s, key, data, n)) \
  /* get waits up to timeout_ms for the key; *data is malloc'd (free it), NULL when n is 0 */ \
  X(bt_store_get, (bt_store s, const char* key, int64_t timeout_ms, void** data, int64_t* n), (s, key, timeout_ms, data, n)) \
  X(bt_store_add, (bt_store s, const char* key, int64_t delta, int64_t* out), (s, key, delta, out)) \
  X(bt_store_check, (bt_store s, const char* key, int* exists), (s, key, exists)) \
  /* process groups: Gloo (device from gloo_ifname, else gloo_host, else the default) or \
     NCCL on cuda:device */ \
  X(bt_pg_new, (int backend, bt_store s, int rank, int size, int64_t timeout_ms, const char* gloo_ifname, const char* gloo_host, int device, bt_pg* out), (backend, s, rank, size, timeout_ms, gloo_ifname, gloo_host, device, out)) \
  /* frees the group; a group whose last collective failed or timed out is abandoned \
     instead (its threads may still be blocked on a dead peer): *abandoned = 1 */ \
  X(bt_pg_free, (bt_pg pg, int* abandoned), (pg, abandoned)) \
  /* all-reduce n tensors in place (n > 1: one flattened bucket; same dtype and device) */ \
  X(bt_pg_allreduce, (bt_pg pg, const bt_tensor* ts, int n, int op, int64_t timeout_ms, bt_work* out), (pg, ts, n, op, timeout_ms, out)) \
  X(bt_pg_broadcast, (bt_pg pg, bt_tensor t, int root, int64_t timeout_ms, bt_work* out), (pg, t, root, timeout_ms, out)) \
  /* all-gather into size tensors shaped like in */ \
  X(bt_pg_allgather, (bt_pg pg, bt_tensor in, const bt_tensor* outs, int n, int64_t timeout_ms, bt_work* out), (pg, in, outs, n, timeout_ms, out)) \
  /* all-gather into one tensor of size * numel(in) elements, rank r's at [r*numel, (r+1)*numel) */ \
  X(bt_pg_allgather_flat, (bt_pg pg, bt_tensor in, bt_tensor flat, int64_t timeout_ms, bt_work* out), (pg, in, flat, timeout_ms, out)) \
  /* reduce in (size * numel(out) elements) across ranks; out gets this rank's chunk */ \
  X(bt_pg_reduce_scatter, (bt_pg pg, bt_tensor in, bt_tensor out, int op, int64_t timeout_ms, bt_work* w), (pg, in, out, op, timeout_ms, w)) \
  X(bt_pg_barrier, (bt_pg pg, int64_t timeout_ms, bt_work* out), (pg, timeout_ms, out)) \
  /* *native: 1 when the last reduce-scatter ran as the backend's own, 0 for all-reduce + slice */ \
  X(bt_pg_info, (bt_pg pg, int* rs_native, char* broken, int64_t n), (pg, rs_native, broken, n)) \
  X(bt_work_wait, (bt_work w, int64_t timeout_ms), (w, timeout_ms)) \
  X(bt_work_free, (bt_work w), (w))

#endif
