/*
 * blockllm-go libtorch shim: a plain C API over ATen/autograd.
 *
 * Conventions (see docs/DESIGN.md, "The C boundary"):
 *   - every function returns const char*: NULL on success, else a malloc'd error
 *     message that the caller frees with free();
 *   - results go through out-parameters; tensors are opaque handles (bt_tensor)
 *     that the caller frees with bt_free;
 *   - no thread-local state is read across calls: grad mode for in-place optimizer
 *     updates is disabled inside the call (torch::NoGradGuard).
 *
 * The function list is an X-macro so that the Go side can load the library with
 * dlopen/dlsym from the same list (a missing library then gives a clear message
 * instead of a link error). shim.cpp declares and defines the functions.
 *
 * dtype codes are c10::ScalarType values (0 u8, 1 i8, 3 i32, 4 i64, 5 f16, 6 f32,
 * 7 f64, 11 bool, 15 bf16); device types are c10::DeviceType (0 CPU, 1 CUDA).
 */
#ifndef BLOCKLLM_SHIM_H
#define BLOCKLLM_SHIM_H

#include <stdint.h>
#include <stddef.h>

typedef void* bt_tensor;
typedef void* bt_generator;

/* Activation recompute: the shim calls back into the host language to run function id
 * on input x, returning a new handle in *out (NULL error on success, else a malloc'd
 * message). Installed once with bt_set_checkpoint_callback. */
typedef const char* (*bt_checkpoint_fn)(int64_t id, bt_tensor x, bt_tensor* out);

/* op codes for the generic entry points */
enum bt_unary_op {
  BT_NEG, BT_SQRT, BT_RSQRT, BT_EXP, BT_LOG, BT_ABS, BT_TANH, BT_SIGMOID, BT_SILU,
  BT_RELU, BT_GELU, BT_GELU_TANH, BT_CONTIGUOUS, BT_DETACH, BT_CLONE, BT_SIN, BT_COS,
  BT_SQUARE, BT_SIGN, BT_LOGICAL_NOT, BT_ZEROS_LIKE, BT_ONES_LIKE, BT_ISFINITE,
  BT_FLOOR, BT_RECIPROCAL, BT_ALIAS
};
enum bt_binary_op {
  BT_ADD, BT_SUB, BT_MUL, BT_DIV, BT_MATMUL, BT_BMM, BT_POW, BT_MAXIMUM, BT_MINIMUM,
  BT_EQ, BT_NE, BT_LT, BT_LE, BT_GT, BT_GE, BT_LOGICAL_AND, BT_LOGICAL_OR, BT_MSE
};
enum bt_scalar_op {
  BTS_ADD, BTS_SUB, BTS_MUL, BTS_DIV, BTS_POW, BTS_RSUB, BTS_EQ, BTS_NE, BTS_LT,
  BTS_LE, BTS_GT, BTS_GE, BTS_CLAMP_MIN, BTS_CLAMP_MAX, BTS_RPOW
};
enum bt_reduce_op { BTR_SUM, BTR_MEAN, BTR_AMAX, BTR_AMIN, BTR_NORM, BTR_PROD, BTR_LOGSUMEXP, BTR_VAR };
enum bt_inplace_op {
  BTI_ADD,        /* a += s1 * b */
  BTI_ADD_SCALAR, /* a += s1 */
  BTI_MUL,        /* a *= b */
  BTI_MUL_SCALAR, /* a *= s1 */
  BTI_ADDCMUL,    /* a += s1 * b * c */
  BTI_ADDCDIV,    /* a += s1 * b / c */
  BTI_LERP,       /* a += s1 * (b - a) */
  BTI_COPY,       /* a <- b (dtype/device converted) */
  BTI_ZERO,       /* a <- 0 */
  BTI_FILL,       /* a <- s1 */
  BTI_CLAMP,      /* a <- clamp(a, s1, s2) */
  BTI_SQRT,       /* a <- sqrt(a) */
  BTI_DIV,        /* a /= b */
  BTI_DIV_SCALAR  /* a /= s1 */
};
enum bt_create_op { BTC_EMPTY, BTC_ZEROS, BTC_ONES, BTC_FULL, BTC_RANDN, BTC_RAND };

#define BT_FUNCS(X) \
  /* library */ \
  X(bt_version, (char* buf, int64_t n, int* has_cuda), (buf, n, has_cuda)) \
  X(bt_live_handles, (int64_t* out), (out)) \
  X(bt_set_num_threads, (int n), (n)) \
  X(bt_get_num_threads, (int* n), (n)) \
  X(bt_manual_seed, (uint64_t seed), (seed)) \
  X(bt_set_deterministic, (int on, int warn_only), (on, warn_only)) \
  X(bt_get_deterministic, (int* on, int* warn_only), (on, warn_only)) \
  X(bt_cuda_device_count, (int* n), (n)) \
  X(bt_cuda_synchronize, (int device), (device)) \
  X(bt_set_grad_enabled, (int enabled, int* previous), (enabled, previous)) \
  X(bt_is_grad_enabled, (int* enabled), (enabled)) \
  X(bt_mem_stats, (int devtype, int devidx, int64_t* current, int64_t* peak), (devtype, devidx, current, peak)) \
  X(bt_mem_reset_peak, (int devtype, int devidx), (devtype, devidx)) \
  X(bt_live_tensor_bytes, (int devtype, int devidx, int64_t* out), (devtype, devidx, out)) \
  /* generators */ \
  X(bt_generator_new, (uint64_t seed, int devtype, int devidx, bt_generator* out), (seed, devtype, devidx, out)) \
  X(bt_generator_free, (bt_generator g), (g)) \
  X(bt_generator_get_state, (bt_generator g, bt_tensor* out), (g, out)) \
  X(bt_generator_set_state, (bt_generator g, bt_tensor state), (g, state)) \
  /* creation and data */ \
  X(bt_free, (bt_tensor t), (t)) \
  X(bt_create, (int op, const int64_t* shape, int ndim, int dtype, int devtype, int devidx, double value, bt_generator g, bt_tensor* out), (op, shape, ndim, dtype, devtype, devidx, value, g, out)) \
  X(bt_arange, (double start, double end, double step, int dtype, int devtype, int devidx, bt_tensor* out), (start, end, step, dtype, devtype, devidx, out)) \
  X(bt_randint, (int64_t low, int64_t high, const int64_t* shape, int ndim, int devtype, int devidx, bt_generator g, bt_tensor* out), (low, high, shape, ndim, devtype, devidx, g, out)) \
  X(bt_from_bytes, (const void* data, int64_t nbytes, const int64_t* shape, int ndim, int dtype, bt_tensor* out), (data, nbytes, shape, ndim, dtype, out)) \
  X(bt_to_bytes, (bt_tensor t, void* dst, int64_t nbytes), (t, dst, nbytes)) \
  X(bt_info, (bt_tensor t, int64_t* shape, int maxdim, int* ndim, int* dtype, int* devtype, int* devidx, int* requires_grad), (t, shape, maxdim, ndim, dtype, devtype, devidx, requires_grad)) \
  X(bt_item, (bt_tensor t, double* out), (t, out)) \
  X(bt_to, (bt_tensor t, int dtype, int devtype, int devidx, bt_tensor* out), (t, dtype, devtype, devidx, out)) \
  /* elementwise and linear algebra */ \
  X(bt_unary, (int op, bt_tensor a, bt_tensor* out), (op, a, out)) \
  X(bt_binary, (int op, bt_tensor a, bt_tensor b, bt_tensor* out), (op, a, b, out)) \
  X(bt_scalar, (int op, bt_tensor a, double s, bt_tensor* out), (op, a, s, out)) \
  X(bt_linear, (bt_tensor x, bt_tensor w, bt_tensor b, bt_tensor* out), (x, w, b, out)) \
  X(bt_where, (bt_tensor cond, bt_tensor a, bt_tensor b, bt_tensor* out), (cond, a, b, out)) \
  X(bt_masked_fill, (bt_tensor a, bt_tensor mask, double value, bt_tensor* out), (a, mask, value, out)) \
  X(bt_tri, (bt_tensor a, int64_t k, int upper, bt_tensor* out), (a, k, upper, out)) \
  X(bt_clamp, (bt_tensor a, double lo, double hi, int has_lo, int has_hi, bt_tensor* out), (a, lo, hi, has_lo, has_hi, out)) \
  /* reductions */ \
  X(bt_reduce, (int op, bt_tensor a, const int64_t* dims, int ndims, int keepdim, double p, bt_tensor* out), (op, a, dims, ndims, keepdim, p, out)) \
  X(bt_max_dim, (bt_tensor a, int64_t dim, int keepdim, int is_min, bt_tensor* values, bt_tensor* indices), (a, dim, keepdim, is_min, values, indices)) \
  X(bt_argmax, (bt_tensor a, int64_t dim, int keepdim, bt_tensor* out), (a, dim, keepdim, out)) \
  X(bt_topk, (bt_tensor a, int64_t k, int64_t dim, int largest, bt_tensor* values, bt_tensor* indices), (a, k, dim, largest, values, indices)) \
  X(bt_linalg_svd, (bt_tensor a, bt_tensor* u, bt_tensor* s, bt_tensor* vh), (a, u, s, vh)) \
  X(bt_softmax, (bt_tensor a, int64_t dim, int log, int dtype, bt_tensor* out), (a, dim, log, dtype, out)) \
  /* shape */ \
  X(bt_reshape, (bt_tensor a, const int64_t* shape, int ndim, int view, bt_tensor* out), (a, shape, ndim, view, out)) \
  X(bt_expand, (bt_tensor a, const int64_t* shape, int ndim, bt_tensor* out), (a, shape, ndim, out)) \
  X(bt_permute, (bt_tensor a, const int64_t* dims, int ndim, bt_tensor* out), (a, dims, ndim, out)) \
  X(bt_transpose, (bt_tensor a, int64_t d0, int64_t d1, bt_tensor* out), (a, d0, d1, out)) \
  X(bt_slice, (bt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, bt_tensor* out), (a, dim, start, end, step, out)) \
  X(bt_squeeze, (bt_tensor a, int64_t dim, int all, int unsqueeze, bt_tensor* out), (a, dim, all, unsqueeze, out)) \
  X(bt_flatten, (bt_tensor a, int64_t start, int64_t end, bt_tensor* out), (a, start, end, out)) \
  X(bt_index_select, (bt_tensor a, int64_t dim, bt_tensor idx, bt_tensor* out), (a, dim, idx, out)) \
  X(bt_gather, (bt_tensor a, int64_t dim, bt_tensor idx, bt_tensor* out), (a, dim, idx, out)) \
  X(bt_index_put, (bt_tensor a, bt_tensor idx, bt_tensor values, int accumulate), (a, idx, values, accumulate)) \
  X(bt_cat, (const bt_tensor* ts, int n, int64_t dim, int stack, bt_tensor* out), (ts, n, dim, stack, out)) \
  X(bt_split, (bt_tensor a, int64_t size_or_chunks, int64_t dim, int chunk, bt_tensor* outs, int maxn, int* n), (a, size_or_chunks, dim, chunk, outs, maxn, n)) \
  /* neural network */ \
  X(bt_embedding, (bt_tensor w, bt_tensor ids, int64_t padding_idx, bt_tensor* out), (w, ids, padding_idx, out)) \
  X(bt_layer_norm, (bt_tensor x, const int64_t* shape, int ndim, bt_tensor w, bt_tensor b, double eps, bt_tensor* out), (x, shape, ndim, w, b, eps, out)) \
  X(bt_rms_norm, (bt_tensor x, bt_tensor w, double eps, bt_tensor* out), (x, w, eps, out)) \
  X(bt_swiglu, (bt_tensor g, bt_tensor u, bt_tensor* out), (g, u, out)) \
  X(bt_padded_linear, (bt_tensor x, bt_tensor w, bt_tensor b, int64_t np, bt_tensor* out), (x, w, b, np, out)) \
  X(bt_linear_cross_entropy, (bt_tensor x, bt_tensor w, bt_tensor labels, int64_t ignore_index, int64_t chunk, bt_tensor* out), (x, w, labels, ignore_index, chunk, out)) \
  X(bt_dropout, (bt_tensor x, double p, int train, bt_tensor* out), (x, p, train, out)) \
  X(bt_sdpa, (bt_tensor q, bt_tensor k, bt_tensor v, bt_tensor mask, double dropout, int causal, double scale, int fused, bt_tensor* out), (q, k, v, mask, dropout, causal, scale, fused, out)) \
  X(bt_cross_entropy, (bt_tensor logits, bt_tensor target, int64_t ignore_index, int reduction, double label_smoothing, bt_tensor* out), (logits, target, ignore_index, reduction, label_smoothing, out)) \
  /* in-place updates (never recorded by autograd) */ \
  X(bt_inplace, (int op, bt_tensor a, bt_tensor b, bt_tensor c, double s1, double s2), (op, a, b, c, s1, s2)) \
  X(bt_adamw_step, (bt_tensor p, bt_tensor g, bt_tensor m, bt_tensor v, double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step), (p, g, m, v, lr, beta1, beta2, eps, weight_decay, step)) \
  X(bt_adamw_multi, (const bt_tensor* ps, const bt_tensor* gs, const bt_tensor* ms, const bt_tensor* vs, const int64_t* steps, int n, double lr, double beta1, double beta2, double eps, double weight_decay, int fused, int* used_fused), (ps, gs, ms, vs, steps, n, lr, beta1, beta2, eps, weight_decay, fused, used_fused)) \
  /* 8-bit optimizer state: bitsandbytes' block-wise dynamic quantisation (uint8 codes, float32 absmax per block) */ \
  X(bt_dynamic_map, (int is_signed, bt_tensor* out), (is_signed, out)) \
  X(bt_quantize_blockwise, (bt_tensor a, bt_tensor code, int64_t blocksize, bt_tensor q, bt_tensor absmax), (a, code, blocksize, q, absmax)) \
  X(bt_dequantize_blockwise, (bt_tensor q, bt_tensor absmax, bt_tensor code, int64_t blocksize, bt_tensor* out), (q, absmax, code, blocksize, out)) \
  X(bt_adamw8bit_step, (bt_tensor p, bt_tensor g, bt_tensor qm, bt_tensor am, bt_tensor qv, bt_tensor av, bt_tensor code1, bt_tensor code2, int64_t blocksize, double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step, int kernel), (p, g, qm, am, qv, av, code1, code2, blocksize, lr, beta1, beta2, eps, weight_decay, step, kernel)) \
  /* autograd */ \
  X(bt_set_requires_grad, (bt_tensor t, int on), (t, on)) \
  X(bt_backward, (bt_tensor t, bt_tensor grad, int retain_graph), (t, grad, retain_graph)) \
  X(bt_grad, (bt_tensor t, bt_tensor* out), (t, out)) \
  X(bt_grad_reset, (bt_tensor t, int set_to_none), (t, set_to_none)) \
  X(bt_norm_probe, (bt_tensor w, bt_tensor token, bt_tensor buf, int64_t slot, bt_tensor* out), (w, token, buf, slot, out)) \
  X(bt_set_checkpoint_callback, (bt_checkpoint_fn fn), (fn)) \
  X(bt_grad_sink, (int64_t id, bt_tensor w, bt_tensor* out), (id, w, out)) \
  X(bt_checkpoint, (int64_t id, bt_tensor x, bt_tensor token, bt_tensor* out), (id, x, token, out))

#endif
