// blockllm-go libtorch shim. See shim.h for the conventions.
#include <torch/torch.h>
#include <torch/version.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Logging.h>
#include <ATen/Parallel.h>
#include <ATen/SequenceNumber.h>

#include "handle.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#if defined(BT_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#define BT_VERSION_AT_LEAST(maj, min) \
  (TORCH_VERSION_MAJOR > (maj) || (TORCH_VERSION_MAJOR == (maj) && TORCH_VERSION_MINOR >= (min)))

extern "C" {
#include "shim.h"
#define X(name, params, args) const char* name params;
BT_FUNCS(X)
#undef X
}

namespace {

char* dupstr(const char* s) {
  size_t n = std::strlen(s);
  char* p = static_cast<char*>(std::malloc(n + 1));
  if (p != nullptr) std::memcpy(p, s, n + 1);
  return p;
}

// ---- per-OS-thread state ---------------------------------------------------------
//
// Go runs a goroutine's successive cgo calls on whatever OS thread it is on at the time,
// and moves goroutines between threads freely. Two pieces of libtorch state live per OS
// thread and so must be made the same on every thread the calls land on, or identical
// runs differ (at float32 rounding) with the scheduling:
//
// * Autograd sequence numbers. Each recorded op's node takes its number from a
//   thread_local counter (at::sequence_number), and the engine runs ready nodes
//   highest number first. A graph recorded over several threads gets numbers that do
//   not follow program order, so a tensor used by three or more ops (q/k/v of a normed
//   hidden state) gets its gradient contributions summed in a scheduling-dependent
//   order. ThreadSync advances the calling thread's counter past the highest number any
//   thread has handed out before the call, and publishes its own after it: the numbers
//   then follow the order of the calls, as on one thread. The check costs about 12 ns a
//   call; the counter has no setter, so a thread that joins late skips up to the others'
//   count once, at about 6 ns a number (0.06 s after 10 million recorded nodes).
// * The intra-op thread count. at::set_num_threads sets the OpenMP count of the calling
//   thread (and of threads that have not run a parallel op yet); a thread that already
//   had run one kept its old count, and reductions split by thread count. ThreadSync
//   re-applies the count bt_set_num_threads last set when a thread's copy is stale.
//
// scripts/determinism/ reproduces both with libtorch alone.
std::atomic<uint64_t> g_seq_hi{0};
std::atomic<int> g_num_threads{0};          // 0: never set through the shim
std::atomic<uint64_t> g_num_threads_gen{0};  // bumped by every bt_set_num_threads

struct ThreadSync {
  ThreadSync() {
    thread_local uint64_t gen = 0;
    uint64_t g = g_num_threads_gen.load(std::memory_order_acquire);
    if (g != gen) {
      gen = g;
      int n = g_num_threads.load(std::memory_order_relaxed);
      if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
    }
    uint64_t hi = g_seq_hi.load(std::memory_order_relaxed);
    for (uint64_t cur = at::sequence_number::peek(); cur < hi; cur++) at::sequence_number::get_and_increment();
  }
  ~ThreadSync() {
    uint64_t cur = at::sequence_number::peek();
    uint64_t hi = g_seq_hi.load(std::memory_order_relaxed);
    while (cur > hi && !g_seq_hi.compare_exchange_weak(hi, cur, std::memory_order_relaxed)) {
    }
  }
};

// BT_TRY is the body of every exported function: the thread's state is synchronised
// (ThreadSync), then libtorch's exceptions become returned messages.
#define BT_TRY(...)                                  \
  ThreadSync bt_thread_sync_;                        \
  try {                                              \
    __VA_ARGS__;                                     \
    return nullptr;                                  \
  } catch (const c10::Error& e) {                    \
    return dupstr(e.what_without_backtrace());       \
  } catch (const std::exception& e) {                \
    return dupstr(e.what());                         \
  } catch (...) {                                    \
    return dupstr("unknown C++ exception");          \
  }

// ---- handles ---------------------------------------------------------------

using bt::Handle;  // handle.h

std::atomic<int64_t> g_live{0};
std::mutex g_reg_mu;
std::unordered_set<Handle*> g_registry;

bt_tensor wrap(at::Tensor t) {
  auto* h = new Handle{std::move(t)};
  {
    std::lock_guard<std::mutex> lk(g_reg_mu);
    g_registry.insert(h);
  }
  g_live.fetch_add(1, std::memory_order_relaxed);
  return h;
}

const at::Tensor& T(bt_tensor h) {
  TORCH_CHECK(h != nullptr, "nil tensor handle");
  return static_cast<Handle*>(h)->t;
}

c10::optional<at::Tensor> opt(bt_tensor h) {
  if (h == nullptr) return c10::nullopt;
  return static_cast<Handle*>(h)->t;
}

at::Device dev(int type, int idx) {
  if (type == 0) return at::Device(at::kCPU);
  if (type == 1) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(idx));
  TORCH_CHECK(false, "unknown device type ", type);
}

at::ScalarType st(int code) {
  switch (code) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 11: case 15:
      return static_cast<at::ScalarType>(code);
    default:
      TORCH_CHECK(false, "unsupported dtype code ", code);
  }
}

std::vector<int64_t> vec(const int64_t* p, int n) {
  TORCH_CHECK(n >= 0, "negative dimension count");
  return n == 0 ? std::vector<int64_t>{} : std::vector<int64_t>(p, p + n);
}

// ---- CPU memory accounting: a counting allocator (64-byte aligned, like c10's) ---------

std::atomic<int64_t> g_cpu_current{0};
std::atomic<int64_t> g_cpu_peak{0};
constexpr size_t kAlign = 64;  // c10's CPU alignment
// Sizes by pointer: some kernels assert that a DataPtr's context equals its data, so the
// size cannot live in a header in front of the block.
std::mutex g_size_mu;
std::unordered_map<void*, size_t> g_sizes;

void counting_delete(void* p) {
  if (p == nullptr) return;
  size_t n = 0;
  {
    std::lock_guard<std::mutex> lk(g_size_mu);
    auto it = g_sizes.find(p);
    if (it != g_sizes.end()) {
      n = it->second;
      g_sizes.erase(it);
    }
  }
  g_cpu_current.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
  std::free(p);
}

struct CountingCPUAllocator final : public c10::Allocator {
#if BT_VERSION_AT_LEAST(2, 3)
  c10::DataPtr allocate(size_t n) override {
#else
  c10::DataPtr allocate(size_t n) const override {
#endif
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, n == 0 ? kAlign : n) != 0 || p == nullptr) {
      TORCH_CHECK(false, "CPU out of memory allocating ", n, " bytes");
    }
    {
      std::lock_guard<std::mutex> lk(g_size_mu);
      g_sizes[p] = n;
    }
    int64_t cur = g_cpu_current.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed) +
                  static_cast<int64_t>(n);
    int64_t peak = g_cpu_peak.load(std::memory_order_relaxed);
    while (cur > peak && !g_cpu_peak.compare_exchange_weak(peak, cur, std::memory_order_relaxed)) {
    }
    return {p, p, &counting_delete, at::Device(at::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &counting_delete; }
#if BT_VERSION_AT_LEAST(2, 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif
};

CountingCPUAllocator g_counting;
struct InstallAllocator {
  InstallAllocator() {
    c10::SetCPUAllocator(&g_counting, /*priority=*/100);
    // Errors cross the boundary as messages without backtraces; symbolising a C++
    // backtrace for every c10::Error costs milliseconds. BLOCKLLM_CPP_BACKTRACE=1 keeps them.
#if !BT_VERSION_AT_LEAST(2, 2)  // newer libtorch symbolises lazily
    const char* bt = std::getenv("BLOCKLLM_CPP_BACKTRACE");
    if (bt == nullptr || std::string(bt) != "1") {
      c10::SetStackTraceFetcher([]() -> std::string { return ""; });
    }
#endif
  }
} g_install;

// ---- gradient-norm probe ----------------------------------------------------

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// NormProbe(w, token) returns w as a view. Its backward adds ||grad||^2 (computed in
// float32 accumulation, stored in buf's dtype) into buf[slot] and returns no gradient
// for w and a zero gradient for the scalar token. The weight need not require grad.
struct NormProbe : public torch::autograd::Function<NormProbe> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor w, at::Tensor token, at::Tensor buf,
                            int64_t slot) {
    ctx->saved_data["buf"] = buf;
    ctx->saved_data["slot"] = slot;
    ctx->saved_data["token"] = token;
    return w.view_as(w);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto buf = ctx->saved_data["buf"].toTensor();
    auto slot = ctx->saved_data["slot"].toInt();
    auto token = ctx->saved_data["token"].toTensor();
    {
      torch::NoGradGuard ng;
      auto g = grads[0];
      if (g.defined()) {
        auto n = at::linalg_vector_norm(g, 2, c10::nullopt, false, g.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
        buf.select(0, slot).add_(n.square().to(buf.scalar_type()));
      }
    }
    return {at::Tensor(), at::zeros_like(token), at::Tensor(), at::Tensor()};
  }
};

// ---- activation recompute ----------------------------------------------------------

std::atomic<bt_checkpoint_fn> g_ckpt_fn{nullptr};

at::Tensor call_checkpoint_fn(int64_t id, const at::Tensor& x) {
  bt_checkpoint_fn fn = g_ckpt_fn.load();
  TORCH_CHECK(fn != nullptr, "checkpoint: no callback installed");
  bt_tensor in = wrap(x);
  bt_tensor out = nullptr;
  const char* err = fn(id, in, &out);
  bt_free(in);
  if (err != nullptr) {
    std::string msg(err);
    std::free(const_cast<char*>(err));
    TORCH_CHECK(false, msg);
  }
  TORCH_CHECK(out != nullptr, "checkpoint: callback returned no tensor");
  at::Tensor r = static_cast<Handle*>(out)->t;
  bt_free(out);
  return r;
}

// Checkpoint(id, x, token) runs the callback's function id on x without recording a
// graph, saving only x. Backward recomputes the function with grad enabled and
// back-propagates through it: parameters used inside receive their .grad directly (as
// PyTorch's reentrant checkpoint does), x receives its gradient. token, a scalar that
// requires grad, makes the output differentiable even when x does not require grad.
struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  static at::Tensor forward(AutogradContext* ctx, int64_t id, at::Tensor x, at::Tensor token) {
    ctx->saved_data["id"] = id;
    ctx->saved_data["x_requires_grad"] = x.requires_grad();
    ctx->save_for_backward({x.detach(), token});
    return call_checkpoint_fn(id, x.detach());
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto id = ctx->saved_data["id"].toInt();
    bool xrg = ctx->saved_data["x_requires_grad"].toBool();
    at::Tensor x = saved[0].detach();
    if (xrg) x.requires_grad_(true);
    at::Tensor out;
    {
      at::AutoGradMode enable(true);
      out = call_checkpoint_fn(id, x);
      if (out.requires_grad()) torch::autograd::backward({out}, {grads[0]});
    }
    at::Tensor gx = xrg ? x.grad() : at::Tensor();
    return {at::Tensor(), gx, at::zeros_like(saved[1])};
  }
};

// GradSink(id, w) returns w as a view. Its backward hands w's whole gradient (summed
// over every use of the view) to the callback's function id, with grad disabled, and
// gives w no gradient: an optimizer can update w in place there, during backward, and
// the gradient is freed as soon as the function returns. The function runs after every
// node that used the view has run its backward.
struct GradSink : public torch::autograd::Function<GradSink> {
  static at::Tensor forward(AutogradContext* ctx, int64_t id, at::Tensor w) {
    ctx->saved_data["id"] = id;
    return w.view_as(w);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto& g = grads[0];
    if (g.defined()) {
      torch::NoGradGuard ng;
      call_checkpoint_fn(ctx->saved_data["id"].toInt(), g);
    }
    return {at::Tensor(), at::Tensor()};
  }
};

at::Tensor math_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const c10::optional<at::Tensor>& mask, double dropout, bool causal, double scale) {
  auto scores = at::matmul(q, k.transpose(-2, -1)).mul(scale);
  if (causal) {
    int64_t L = q.size(-2), S = k.size(-2);
    auto keep = at::ones({L, S}, q.options().dtype(at::kBool)).tril(S - L);
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.has_value()) {
    if (mask->scalar_type() == at::kBool) {
      scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    } else {
      scores = scores.add(*mask);
    }
  }
  auto p = at::softmax(scores, -1, q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat).to(q.scalar_type());
  if (dropout > 0) p = at::dropout(p, dropout, true);
  return at::matmul(p, v);
}

}  // namespace

extern "C" {

// ---- library ------------------------------------------------------------------

const char* bt_version(char* buf, int64_t n, int* has_cuda) {
  BT_TRY({
    std::string v = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
                    "." + std::to_string(TORCH_VERSION_PATCH);
    std::snprintf(buf, static_cast<size_t>(n), "%s", v.c_str());
    *has_cuda = torch::cuda::is_available() ? 1 : 0;
  })
}

const char* bt_live_handles(int64_t* out) { BT_TRY(*out = g_live.load()) }

const char* bt_set_num_threads(int n) {
  BT_TRY({
    TORCH_CHECK(n > 0, "set_num_threads: want a positive thread count, got ", n);
    g_num_threads.store(n, std::memory_order_relaxed);
    g_num_threads_gen.fetch_add(1, std::memory_order_release);
    at::set_num_threads(n);
  })
}

const char* bt_get_num_threads(int* n) { BT_TRY(*n = at::get_num_threads()) }

const char* bt_manual_seed(uint64_t seed) { BT_TRY(torch::manual_seed(seed)) }

// Deterministic algorithms, as torch.use_deterministic_algorithms(on, warn_only): ops
// that have a deterministic implementation use it, the others raise an error (a warning
// with warn_only); cuDNN picks deterministic algorithms. The CPU needs none of it for
// reproducible training at a fixed thread count (see ThreadSync); CUDA kernels that
// accumulate with atomics do.
const char* bt_set_deterministic(int on, int warn_only) {
  BT_TRY({
    at::globalContext().setDeterministicAlgorithms(on != 0, warn_only != 0);
    at::globalContext().setDeterministicCuDNN(on != 0);
  })
}

const char* bt_get_deterministic(int* on, int* warn_only) {
  BT_TRY({
    *on = at::globalContext().deterministicAlgorithms() ? 1 : 0;
    *warn_only = at::globalContext().deterministicAlgorithmsWarnOnly() ? 1 : 0;
  })
}

const char* bt_cuda_device_count(int* n) { BT_TRY(*n = static_cast<int>(torch::cuda::device_count())) }

const char* bt_cuda_synchronize(int device) {
  BT_TRY({
#if defined(BT_CUDA)
    c10::cuda::device_synchronize();
    (void)device;
#else
    (void)device;
    TORCH_CHECK(!torch::cuda::is_available(), "shim built without CUDA support (BT_CUDA)");
#endif
  })
}

const char* bt_set_grad_enabled(int enabled, int* previous) {
  BT_TRY({
    *previous = c10::GradMode::is_enabled() ? 1 : 0;
    c10::GradMode::set_enabled(enabled != 0);
  })
}

const char* bt_is_grad_enabled(int* enabled) { BT_TRY(*enabled = c10::GradMode::is_enabled() ? 1 : 0) }

const char* bt_mem_stats(int devtype, int devidx, int64_t* current, int64_t* peak) {
  BT_TRY({
    if (devtype == 0) {
      *current = g_cpu_current.load();
      *peak = g_cpu_peak.load();
    } else {
#if defined(BT_CUDA)
      auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(devidx);
      // Index 0 is StatType::AGGREGATE in every version; the enum itself moved from
      // c10::cuda::CUDACachingAllocator to c10::CachingDeviceAllocator in 2.5.
      const size_t agg = 0;
      *current = s.allocated_bytes[agg].current;
      *peak = s.allocated_bytes[agg].peak;
#else
      (void)devidx;
      TORCH_CHECK(false, "CUDA memory statistics need a shim built with CUDA (BT_CUDA)");
#endif
    }
  })
}

const char* bt_mem_reset_peak(int devtype, int devidx) {
  BT_TRY({
    if (devtype == 0) {
      g_cpu_peak.store(g_cpu_current.load());
    } else {
#if defined(BT_CUDA)
      c10::cuda::CUDACachingAllocator::resetPeakStats(devidx);
#else
      (void)devidx;
      TORCH_CHECK(false, "CUDA memory statistics need a shim built with CUDA (BT_CUDA)");
#endif
    }
  })
}

const char* bt_live_tensor_bytes(int devtype, int devidx, int64_t* out) {
  BT_TRY({
    std::unordered_set<const void*> seen;
    int64_t total = 0;
    std::lock_guard<std::mutex> lk(g_reg_mu);
    for (Handle* h : g_registry) {
      const at::Tensor& t = h->t;
      if (!t.defined() || !t.has_storage()) continue;
      auto d = t.device();
      if (static_cast<int>(d.type()) != devtype) continue;
      if (devtype != 0 && d.index() != devidx) continue;
      const void* key = t.storage().unsafeGetStorageImpl();
      if (seen.insert(key).second) total += static_cast<int64_t>(t.storage().nbytes());
    }
    *out = total;
  })
}

// ---- generators -------------------------------------------------------------------

const char* bt_generator_new(uint64_t seed, int devtype, int devidx, bt_generator* out) {
  BT_TRY({
    at::Generator g;
    if (devtype == 0) {
      g = at::make_generator<at::CPUGeneratorImpl>(seed);
    } else {
#if defined(BT_CUDA)
      g = at::make_generator<at::CUDAGeneratorImpl>(static_cast<c10::DeviceIndex>(devidx));
      g.set_current_seed(seed);
#else
      (void)devidx;
      TORCH_CHECK(false, "CUDA generators need a shim built with CUDA (BT_CUDA)");
#endif
    }
    *out = new at::Generator(std::move(g));
  })
}

const char* bt_generator_free(bt_generator g) { BT_TRY(delete static_cast<at::Generator*>(g)) }

const char* bt_generator_get_state(bt_generator g, bt_tensor* out) {
  BT_TRY({
    auto* gen = static_cast<at::Generator*>(g);
    std::lock_guard<std::mutex> lk(gen->mutex());
    *out = wrap(gen->get_state());
  })
}

const char* bt_generator_set_state(bt_generator g, bt_tensor state) {
  BT_TRY({
    auto* gen = static_cast<at::Generator*>(g);
    std::lock_guard<std::mutex> lk(gen->mutex());
    gen->set_state(T(state));
  })
}

// ---- creation and data ---------------------------------------------------------------

const char* bt_free(bt_tensor t) {
  BT_TRY({
    if (t == nullptr) return nullptr;
    auto* h = static_cast<Handle*>(t);
    {
      std::lock_guard<std::mutex> lk(g_reg_mu);
      g_registry.erase(h);
    }
    g_live.fetch_sub(1, std::memory_order_relaxed);
    delete h;
  })
}

const char* bt_create(int op, const int64_t* shape, int ndim, int dtype, int devtype, int devidx,
                      double value, bt_generator g, bt_tensor* out) {
  BT_TRY({
    auto o = at::TensorOptions().dtype(st(dtype)).device(dev(devtype, devidx));
    auto s = vec(shape, ndim);
    c10::optional<at::Generator> gen;
    if (g != nullptr) gen = *static_cast<at::Generator*>(g);
    at::Tensor t;
    switch (op) {
      case BTC_EMPTY: t = at::empty(s, o); break;
      case BTC_ZEROS: t = at::zeros(s, o); break;
      case BTC_ONES: t = at::ones(s, o); break;
      case BTC_FULL: t = at::full(s, value, o); break;
      case BTC_RANDN: t = at::randn(s, gen, o); break;
      case BTC_RAND: t = at::rand(s, gen, o); break;
      default: TORCH_CHECK(false, "unknown create op ", op);
    }
    *out = wrap(t);
  })
}

const char* bt_arange(double start, double end, double step, int dtype, int devtype, int devidx,
                      bt_tensor* out) {
  BT_TRY(*out = wrap(at::arange(start, end, step,
                                at::TensorOptions().dtype(st(dtype)).device(dev(devtype, devidx)))))
}

const char* bt_randint(int64_t low, int64_t high, const int64_t* shape, int ndim, int devtype, int devidx,
                       bt_generator g, bt_tensor* out) {
  BT_TRY({
    c10::optional<at::Generator> gen;
    if (g != nullptr) gen = *static_cast<at::Generator*>(g);
    *out = wrap(at::randint(low, high, vec(shape, ndim), gen,
                            at::TensorOptions().dtype(at::kLong).device(dev(devtype, devidx))));
  })
}

const char* bt_from_bytes(const void* data, int64_t nbytes, const int64_t* shape, int ndim, int dtype,
                          bt_tensor* out) {
  BT_TRY({
    auto t = at::empty(vec(shape, ndim), at::TensorOptions().dtype(st(dtype)));
    TORCH_CHECK(static_cast<int64_t>(t.nbytes()) == nbytes, "from_bytes: shape ", t.sizes(), " of ",
                t.scalar_type(), " needs ", t.nbytes(), " bytes, got ", nbytes);
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(nbytes));
    *out = wrap(t);
  })
}

const char* bt_to_bytes(bt_tensor t, void* dst, int64_t nbytes) {
  BT_TRY({
    auto c = T(t).detach().to(at::kCPU).contiguous();
    TORCH_CHECK(static_cast<int64_t>(c.nbytes()) == nbytes, "to_bytes: tensor has ", c.nbytes(),
                " bytes, buffer has ", nbytes);
    if (nbytes > 0) std::memcpy(dst, c.data_ptr(), static_cast<size_t>(nbytes));
  })
}

const char* bt_info(bt_tensor t, int64_t* shape, int maxdim, int* ndim, int* dtype, int* devtype,
                    int* devidx, int* requires_grad) {
  BT_TRY({
    const auto& x = T(t);
    *ndim = static_cast<int>(x.dim());
    for (int i = 0; i < *ndim && i < maxdim; i++) shape[i] = x.size(i);
    *dtype = static_cast<int>(x.scalar_type());
    *devtype = static_cast<int>(x.device().type());
    *devidx = x.device().has_index() ? x.device().index() : 0;
    *requires_grad = x.requires_grad() ? 1 : 0;
  })
}

const char* bt_item(bt_tensor t, double* out) { BT_TRY(*out = T(t).item<double>()) }

const char* bt_to(bt_tensor t, int dtype, int devtype, int devidx, bt_tensor* out) {
  BT_TRY(*out = wrap(T(t).to(dev(devtype, devidx), st(dtype))))
}

// ---- elementwise ------------------------------------------------------------------------

const char* bt_unary(int op, bt_tensor a, bt_tensor* out) {
  BT_TRY({
    const auto& x = T(a);
    at::Tensor r;
    switch (op) {
      case BT_NEG: r = x.neg(); break;
      case BT_SQRT: r = x.sqrt(); break;
      case BT_RSQRT: r = x.rsqrt(); break;
      case BT_EXP: r = x.exp(); break;
      case BT_LOG: r = x.log(); break;
      case BT_ABS: r = x.abs(); break;
      case BT_TANH: r = x.tanh(); break;
      case BT_SIGMOID: r = x.sigmoid(); break;
      case BT_SILU: r = at::silu(x); break;
      case BT_RELU: r = x.relu(); break;
      case BT_GELU: r = at::gelu(x, "none"); break;
      case BT_GELU_TANH: r = at::gelu(x, "tanh"); break;
      case BT_CONTIGUOUS: r = x.contiguous(); break;
      case BT_DETACH: r = x.detach(); break;
      case BT_CLONE: r = x.clone(); break;
      case BT_SIN: r = x.sin(); break;
      case BT_COS: r = x.cos(); break;
      case BT_SQUARE: r = x.square(); break;
      case BT_SIGN: r = x.sign(); break;
      case BT_LOGICAL_NOT: r = x.logical_not(); break;
      case BT_ZEROS_LIKE: r = at::zeros_like(x); break;
      case BT_ONES_LIKE: r = at::ones_like(x); break;
      case BT_ISFINITE: r = x.isfinite(); break;
      case BT_FLOOR: r = x.floor(); break;
      case BT_RECIPROCAL: r = x.reciprocal(); break;
      case BT_ALIAS: r = x; break;
      default: TORCH_CHECK(false, "unknown unary op ", op);
    }
    *out = wrap(r);
  })
}

const char* bt_binary(int op, bt_tensor a, bt_tensor b, bt_tensor* out) {
  BT_TRY({
    const auto& x = T(a);
    const auto& y = T(b);
    at::Tensor r;
    switch (op) {
      case BT_ADD: r = x.add(y); break;
      case BT_SUB: r = x.sub(y); break;
      case BT_MUL: r = x.mul(y); break;
      case BT_DIV: r = x.div(y); break;
      case BT_MATMUL: r = x.matmul(y); break;
      case BT_BMM: r = x.bmm(y); break;
      case BT_POW: r = x.pow(y); break;
      case BT_MAXIMUM: r = at::maximum(x, y); break;
      case BT_MINIMUM: r = at::minimum(x, y); break;
      case BT_EQ: r = x.eq(y); break;
      case BT_NE: r = x.ne(y); break;
      case BT_LT: r = x.lt(y); break;
      case BT_LE: r = x.le(y); break;
      case BT_GT: r = x.gt(y); break;
      case BT_GE: r = x.ge(y); break;
      case BT_LOGICAL_AND: r = x.logical_and(y); break;
      case BT_LOGICAL_OR: r = x.logical_or(y); break;
      case BT_MSE: r = at::mse_loss(x, y); break;
      default: TORCH_CHECK(false, "unknown binary op ", op);
    }
    *out = wrap(r);
  })
}

const char* bt_scalar(int op, bt_tensor a, double s, bt_tensor* out) {
  BT_TRY({
    const auto& x = T(a);
    at::Tensor r;
    switch (op) {
      case BTS_ADD: r = x.add(s); break;
      case BTS_SUB: r = x.sub(s); break;
      case BTS_MUL: r = x.mul(s); break;
      case BTS_DIV: r = x.div(s); break;
      case BTS_POW: r = x.pow(s); break;
      case BTS_RSUB: r = at::rsub(x, s); break;
      case BTS_EQ: r = x.eq(s); break;
      case BTS_NE: r = x.ne(s); break;
      case BTS_LT: r = x.lt(s); break;
      case BTS_LE: r = x.le(s); break;
      case BTS_GT: r = x.gt(s); break;
      case BTS_GE: r = x.ge(s); break;
      case BTS_CLAMP_MIN: r = x.clamp_min(s); break;
      case BTS_CLAMP_MAX: r = x.clamp_max(s); break;
      case BTS_RPOW: r = at::pow(at::Scalar(s), x); break;
      default: TORCH_CHECK(false, "unknown scalar op ", op);
    }
    *out = wrap(r);
  })
}

const char* bt_linear(bt_tensor x, bt_tensor w, bt_tensor b, bt_tensor* out) {
  BT_TRY(*out = wrap(at::linear(T(x), T(w), opt(b))))
}

const char* bt_where(bt_tensor cond, bt_tensor a, bt_tensor b, bt_tensor* out) {
  BT_TRY(*out = wrap(at::where(T(cond), T(a), T(b))))
}

const char* bt_masked_fill(bt_tensor a, bt_tensor mask, double value, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).masked_fill(T(mask), value)))
}

const char* bt_tri(bt_tensor a, int64_t k, int upper, bt_tensor* out) {
  BT_TRY(*out = wrap(upper ? T(a).triu(k) : T(a).tril(k)))
}

const char* bt_clamp(bt_tensor a, double lo, double hi, int has_lo, int has_hi, bt_tensor* out) {
  BT_TRY({
    c10::optional<at::Scalar> l, h;
    if (has_lo) l = lo;
    if (has_hi) h = hi;
    *out = wrap(T(a).clamp(l, h));
  })
}

// ---- reductions ---------------------------------------------------------------------------

const char* bt_reduce(int op, bt_tensor a, const int64_t* dims, int ndims, int keepdim, double p,
                      bt_tensor* out) {
  BT_TRY({
    const auto& x = T(a);
    auto d = vec(dims, ndims);
    bool all = ndims == 0;
    at::Tensor r;
    switch (op) {
      case BTR_SUM: r = all ? x.sum() : x.sum(d, keepdim != 0); break;
      case BTR_MEAN: r = all ? x.mean() : x.mean(d, keepdim != 0); break;
      case BTR_AMAX: r = all ? x.amax(at::IntArrayRef{}) : x.amax(d, keepdim != 0); break;
      case BTR_AMIN: r = all ? x.amin(at::IntArrayRef{}) : x.amin(d, keepdim != 0); break;
      case BTR_NORM:
        r = all ? at::linalg_vector_norm(x, p) : at::linalg_vector_norm(x, p, d, keepdim != 0);
        break;
      case BTR_PROD:
        TORCH_CHECK(ndims <= 1, "prod reduces over at most one dim");
        r = all ? x.prod() : x.prod(d[0], keepdim != 0);
        break;
      case BTR_LOGSUMEXP: r = at::logsumexp(x, all ? std::vector<int64_t>{} : d, keepdim != 0); break;
      case BTR_VAR:
        r = all ? x.var(/*unbiased=*/p != 0) : x.var(d, /*unbiased=*/p != 0, keepdim != 0);
        break;
      default: TORCH_CHECK(false, "unknown reduce op ", op);
    }
    *out = wrap(r);
  })
}

const char* bt_max_dim(bt_tensor a, int64_t dim, int keepdim, int is_min, bt_tensor* values,
                       bt_tensor* indices) {
  BT_TRY({
    auto r = is_min ? T(a).min(dim, keepdim != 0) : T(a).max(dim, keepdim != 0);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}

const char* bt_argmax(bt_tensor a, int64_t dim, int keepdim, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).argmax(dim, keepdim != 0)))
}

const char* bt_topk(bt_tensor a, int64_t k, int64_t dim, int largest, bt_tensor* values, bt_tensor* indices) {
  BT_TRY({
    auto r = T(a).topk(k, dim, largest != 0, true);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}

// Reduced SVD (torch.linalg.svd(a, full_matrices=False)): a = u diag(s) vh, singular
// values descending. Present in libtorch 1.13 and 2.x alike.
const char* bt_linalg_svd(bt_tensor a, bt_tensor* u, bt_tensor* s, bt_tensor* vh) {
  BT_TRY({
    auto r = at::linalg_svd(T(a), /*full_matrices=*/false);
    *u = wrap(std::get<0>(r));
    *s = wrap(std::get<1>(r));
    *vh = wrap(std::get<2>(r));
  })
}

const char* bt_softmax(bt_tensor a, int64_t dim, int log, int dtype, bt_tensor* out) {
  BT_TRY({
    c10::optional<at::ScalarType> d;
    if (dtype >= 0) d = st(dtype);
    *out = wrap(log ? at::log_softmax(T(a), dim, d) : at::softmax(T(a), dim, d));
  })
}

// ---- shape -------------------------------------------------------------------------------

const char* bt_reshape(bt_tensor a, const int64_t* shape, int ndim, int view, bt_tensor* out) {
  BT_TRY(*out = wrap(view ? T(a).view(vec(shape, ndim)) : T(a).reshape(vec(shape, ndim))))
}

const char* bt_expand(bt_tensor a, const int64_t* shape, int ndim, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).expand(vec(shape, ndim))))
}

const char* bt_permute(bt_tensor a, const int64_t* dims, int ndim, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).permute(vec(dims, ndim))))
}

const char* bt_transpose(bt_tensor a, int64_t d0, int64_t d1, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).transpose(d0, d1)))
}

const char* bt_slice(bt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).slice(dim, start, end, step)))
}

const char* bt_squeeze(bt_tensor a, int64_t dim, int all, int unsqueeze, bt_tensor* out) {
  BT_TRY({
    if (unsqueeze) {
      *out = wrap(T(a).unsqueeze(dim));
    } else {
      *out = wrap(all ? T(a).squeeze() : T(a).squeeze(dim));
    }
  })
}

const char* bt_flatten(bt_tensor a, int64_t start, int64_t end, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).flatten(start, end)))
}

const char* bt_index_select(bt_tensor a, int64_t dim, bt_tensor idx, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).index_select(dim, T(idx))))
}

const char* bt_gather(bt_tensor a, int64_t dim, bt_tensor idx, bt_tensor* out) {
  BT_TRY(*out = wrap(T(a).gather(dim, T(idx))))
}

const char* bt_index_put(bt_tensor a, bt_tensor idx, bt_tensor values, int accumulate) {
  BT_TRY({
    torch::NoGradGuard ng;
    auto t = T(a);
    c10::List<c10::optional<at::Tensor>> indices;
    indices.push_back(T(idx));
    t.index_put_(indices, T(values), accumulate != 0);
  })
}

const char* bt_cat(const bt_tensor* ts, int n, int64_t dim, int stack, bt_tensor* out) {
  BT_TRY({
    std::vector<at::Tensor> v;
    v.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
    *out = wrap(stack ? at::stack(v, dim) : at::cat(v, dim));
  })
}

const char* bt_split(bt_tensor a, int64_t size_or_chunks, int64_t dim, int chunk, bt_tensor* outs, int maxn,
                     int* n) {
  BT_TRY({
    auto parts = chunk ? T(a).chunk(size_or_chunks, dim) : T(a).split(size_or_chunks, dim);
    TORCH_CHECK(static_cast<int>(parts.size()) <= maxn, "split: ", parts.size(), " parts exceed the ",
                maxn, " slots given");
    *n = static_cast<int>(parts.size());
    for (size_t i = 0; i < parts.size(); i++) outs[i] = wrap(parts[i]);
  })
}

// ---- neural network ----------------------------------------------------------------------

const char* bt_embedding(bt_tensor w, bt_tensor ids, int64_t padding_idx, bt_tensor* out) {
  BT_TRY(*out = wrap(at::embedding(T(w), T(ids), padding_idx)))
}

const char* bt_layer_norm(bt_tensor x, const int64_t* shape, int ndim, bt_tensor w, bt_tensor b, double eps,
                          bt_tensor* out) {
  BT_TRY(*out = wrap(at::layer_norm(T(x), vec(shape, ndim), opt(w), opt(b), eps)))
}

// RMSNormFn is Llama's RMSNorm as Hugging Face computes it: in float32 (float64 for f64),
// cast back to the input dtype, then multiplied by the weight (weight * x.to(input dtype)).
// As one autograd node it saves only the input, the weight and the per-row 1/rms, where
// the composed ops would save a float32 copy of the input (and the cast output when the
// weight is trained); backward recomputes the normalised rows.
struct RMSNormFn : public torch::autograd::Function<RMSNormFn> {
  static at::ScalarType compute_type(const at::Tensor& x) {
    return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  }
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, double eps) {
    auto xf = x.to(compute_type(x));
    auto rstd = at::rsqrt(xf.square().mean(-1, true).add(eps));
    auto y = xf.mul(rstd).to(x.scalar_type());
    ctx->save_for_backward({x, w, rstd});
    return w.mul(y);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto& rstd = saved[2];
    auto g = grads[0];
    at::Tensor gx, gw;
    if (!g.defined()) return {gx, gw, at::Tensor()};
    auto xhat = x.to(compute_type(x)).mul(rstd);
    if (ctx->needs_input_grad(1)) {
      gw = g.mul(xhat.to(x.scalar_type())).sum_to_size(w.sizes());
    }
    if (ctx->needs_input_grad(0)) {
      auto gy = g.mul(w).to(x.scalar_type()).to(xhat.scalar_type());
      auto dot = gy.mul(xhat).mean(-1, true);
      gx = gy.sub(xhat.mul(dot)).mul(rstd).to(x.scalar_type());
    }
    return {gx, gw, at::Tensor()};
  }
};

const char* bt_rms_norm(bt_tensor x, bt_tensor w, double eps, bt_tensor* out) {
  BT_TRY({
    const auto& in = T(x);
    // without a weight, a scalar one of x's dtype (1 * y is exact; autograd Functions
    // take no undefined inputs in 1.13)
    *out = wrap(RMSNormFn::apply(in, w != nullptr ? T(w) : at::ones({}, in.options()), eps));
  })
}

// SwiGLUFn is silu(g) * u as one autograd node. It computes what the composed ops
// compute, bit for bit (silu, mul; backward mul then silu_backward), but saves only g
// and u: the composed ops also keep silu(g), a third tensor of the MLP's width.
struct SwiGLUFn : public torch::autograd::Function<SwiGLUFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor g, at::Tensor u) {
    ctx->save_for_backward({g, u});
    return at::silu(g).mul(u);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& g = saved[0];
    const auto& u = saved[1];
    const auto& gy = grads[0];
    at::Tensor gg, gu;
    if (!gy.defined()) return {gg, gu};
    if (ctx->needs_input_grad(1)) gu = gy.mul(at::silu(g));
    if (ctx->needs_input_grad(0)) gg = at::silu_backward(gy.mul(u), g);
    return {gg, gu};
  }
};

const char* bt_swiglu(bt_tensor g, bt_tensor u, bt_tensor* out) {
  BT_TRY(*out = wrap(SwiGLUFn::apply(T(g), T(u))))
}

// PadLinearFn is a linear layer whose weight w [N, K] (and bias [N]) is zero-padded to
// [np, kp] for the product, kp being x's width (kp >= K): y = x @ pad(w)^T + pad(b) has
// np columns, the extra ones zero; x's extra columns meet zero weights. The function
// and the gradients for w and b are those of the unpadded layer; the padded shapes give
// the matrix kernels rows whose byte length is a multiple of 16 (llama-1b's MLP width,
// 5461, is not, and cuBLAS then runs kernels several times slower). Only w (a
// reference) and, when w is trained, x are saved; the padded copy of w is made again
// in backward.
struct PadLinearFn : public torch::autograd::Function<PadLinearFn> {
  static at::Tensor pad_w(const at::Tensor& w, int64_t np, int64_t kp) {
    return at::constant_pad_nd(w, {0, kp - w.size(1), 0, np - w.size(0)}, 0);
  }
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor b, int64_t np, bool has_b,
                            bool need_w) {
    const int64_t kp = x.size(-1);
    auto wp = pad_w(w, np, kp);
    at::Tensor bp;
    if (has_b) bp = at::constant_pad_nd(b, {0, np - b.size(0)}, 0);
    ctx->save_for_backward({need_w ? x : at::Tensor(), w});
    ctx->saved_data["np"] = np;
    ctx->saved_data["kp"] = kp;
    ctx->saved_data["has_b"] = has_b;
    return has_b ? at::linear(x, wp, bp) : at::linear(x, wp);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const int64_t np = ctx->saved_data["np"].toInt();
    const bool has_b = ctx->saved_data["has_b"].toBool();
    const auto& gy = grads[0];
    at::Tensor gx, gw, gb;
    if (!gy.defined()) return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor()};
    const int64_t N = w.size(0), K = w.size(1);
    auto gy2 = gy.reshape({-1, np});
    if (ctx->needs_input_grad(0)) gx = at::matmul(gy, pad_w(w, np, ctx->saved_data["kp"].toInt()));
    if (ctx->needs_input_grad(1)) {
      TORCH_CHECK(x.defined(), "padded linear: x was not saved but w needs a gradient");
      auto x2 = x.reshape({-1, x.size(-1)});
      gw = at::mm(gy2.t(), x2).narrow(0, 0, N).narrow(1, 0, K).contiguous();
    }
    if (has_b && ctx->needs_input_grad(2)) gb = gy2.sum(0).narrow(0, 0, N).contiguous();
    return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

const char* bt_padded_linear(bt_tensor x, bt_tensor w, bt_tensor b, int64_t np, bt_tensor* out) {
  BT_TRY({
    const auto& X = T(x);
    const auto& W = T(w);
    TORCH_CHECK(W.dim() == 2 && X.dim() >= 1, "padded linear: want w [N, K] and x [..., K'], got ", W.sizes(), " and ",
                X.sizes());
    TORCH_CHECK(X.size(-1) >= W.size(1), "padded linear: x's width ", X.size(-1), " is less than w's ", W.size(1));
    TORCH_CHECK(np >= W.size(0), "padded linear: padded width ", np, " is less than w's rows ", W.size(0));
    const bool has_b = b != nullptr;
    at::Tensor B = has_b ? T(b) : at::zeros({}, W.options());
    if (has_b) TORCH_CHECK(B.dim() == 1 && B.size(0) == W.size(0), "padded linear: bias ", B.sizes(), " for w ", W.sizes());
    const bool need_w = at::GradMode::is_enabled() && W.requires_grad();
    *out = wrap(PadLinearFn::apply(X, W, B, np, has_b, need_w));
  })
}

// LinearCEFn is the mean cross-entropy of the logits x @ w^T (computed in x's dtype, then
// in float32 as transformers' ForCausalLMLoss does) against labels (ignore_index rows
// skipped), taken `chunk` rows at a time: only one chunk's logits exist at once. The
// gradients are made in the forward pass, chunk by chunk ((softmax - onehot) / count,
// cast to x's dtype as the float32 cast's backward does, then the two products of the
// linear's backward; w's gradient summed over chunks in w's dtype), and saved; backward
// only scales them by the incoming gradient. So nothing is recomputed, and w is used
// once (a gradient-norm probe on w sees the whole gradient).
struct LinearCEFn : public torch::autograd::Function<LinearCEFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor labels,
                            int64_t ignore_index, int64_t chunk, bool need_x, bool need_w) {
    torch::NoGradGuard ng;
    auto ct = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const int64_t N = x.size(0);
    auto count = labels.ne(ignore_index).sum().to(ct);
    auto loss = at::zeros({}, x.options().dtype(ct));
    at::Tensor dx, dw;
    if (need_x) dx = at::empty_like(x, at::MemoryFormat::Contiguous);
    // w's gradient is summed over chunks in w's dtype (as gradient accumulation over
    // micro-batches is), not in a float32 copy of w's size: one rounding per chunk.
    if (need_w) dw = at::zeros(w.sizes(), w.options());
    if (chunk <= 0) chunk = N;
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t n = std::min(chunk, N - s);
      auto xc = x.narrow(0, s, n);
      auto lc = labels.narrow(0, s, n);
      // log_softmax then the picked log-probabilities, as cross_entropy computes them
      auto logp = at::log_softmax(at::mm(xc, w.t()).to(ct), 1);  // [n, V]
      auto valid = lc.ne(ignore_index);
      auto idx = lc.masked_fill(valid.logical_not(), 0).unsqueeze(1);
      loss.sub_(logp.gather(1, idx).squeeze(1).masked_fill(valid.logical_not(), 0).sum());
      if (!need_x && !need_w) continue;
      auto p = logp.exp_();  // softmax, in place
      p.scatter_add_(1, idx, at::full({n, 1}, -1.0, p.options()));
      p.mul_(valid.to(ct).div(count).unsqueeze(1));  // ignored rows 0, the rest / count
      auto d = p.to(x.scalar_type());
      if (need_x) dx.narrow(0, s, n).copy_(at::mm(d, w));
      if (need_w) dw.addmm_(d.t(), xc);
    }
    loss.div_(count);
    if (need_x) ctx->saved_data["dx"] = dx;
    if (need_w) ctx->saved_data["dw"] = dw;
    return loss;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto& go = grads[0];
    at::Tensor gx, gw;
    if (go.defined()) {
      if (ctx->saved_data.count("dx")) gx = ctx->saved_data["dx"].toTensor().mul(go);
      if (ctx->saved_data.count("dw")) gw = ctx->saved_data["dw"].toTensor().mul(go);
    }
    return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

const char* bt_linear_cross_entropy(bt_tensor x, bt_tensor w, bt_tensor labels, int64_t ignore_index, int64_t chunk,
                                    bt_tensor* out) {
  BT_TRY({
    const auto& X = T(x);
    const auto& W = T(w);
    const auto& L = T(labels);
    TORCH_CHECK(X.dim() == 2 && W.dim() == 2 && X.size(1) == W.size(1),
                "linear_cross_entropy: want x [N, H] and w [V, H], got ", X.sizes(), " and ", W.sizes());
    TORCH_CHECK(L.dim() == 1 && L.size(0) == X.size(0), "linear_cross_entropy: want labels [", X.size(0), "], got ",
                L.sizes());
    TORCH_CHECK(L.scalar_type() == at::kLong, "linear_cross_entropy: labels must be int64");
    const bool grad = at::GradMode::is_enabled();
    *out = wrap(LinearCEFn::apply(X, W, L, ignore_index, chunk, grad && X.requires_grad(), grad && W.requires_grad()));
  })
}

const char* bt_dropout(bt_tensor x, double p, int train, bt_tensor* out) {
  BT_TRY(*out = wrap(at::dropout(T(x), p, train != 0)))
}

const char* bt_sdpa(bt_tensor q, bt_tensor k, bt_tensor v, bt_tensor mask, double dropout, int causal,
                    double scale, int fused, bt_tensor* out) {
  BT_TRY({
    const auto& Q = T(q);
    if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(Q.size(-1)));
    at::Tensor r;
#if BT_VERSION_AT_LEAST(2, 1)
    if (fused) {
      r = at::scaled_dot_product_attention(Q, T(k), T(v), opt(mask), dropout, causal != 0, scale);
    } else {
      r = math_sdpa(Q, T(k), T(v), opt(mask), dropout, causal != 0, scale);
    }
#else
    (void)fused;
    r = math_sdpa(Q, T(k), T(v), opt(mask), dropout, causal != 0, scale);
#endif
    *out = wrap(r);
  })
}

const char* bt_cross_entropy(bt_tensor logits, bt_tensor target, int64_t ignore_index, int reduction,
                             double label_smoothing, bt_tensor* out) {
  BT_TRY(*out = wrap(at::cross_entropy_loss(T(logits), T(target), c10::nullopt, reduction, ignore_index,
                                            label_smoothing)))
}

// ---- in-place -------------------------------------------------------------------------

const char* bt_inplace(int op, bt_tensor a, bt_tensor b, bt_tensor c, double s1, double s2) {
  BT_TRY({
    torch::NoGradGuard ng;
    at::Tensor x = T(a);
    switch (op) {
      case BTI_ADD: x.add_(T(b), s1); break;
      case BTI_ADD_SCALAR: x.add_(s1); break;
      case BTI_MUL: x.mul_(T(b)); break;
      case BTI_MUL_SCALAR: x.mul_(s1); break;
      case BTI_ADDCMUL: x.addcmul_(T(b), T(c), s1); break;
      case BTI_ADDCDIV: x.addcdiv_(T(b), T(c), s1); break;
      case BTI_LERP: x.lerp_(T(b), s1); break;
      case BTI_COPY: x.copy_(T(b)); break;
      case BTI_ZERO: x.zero_(); break;
      case BTI_FILL: x.fill_(s1); break;
      case BTI_CLAMP: x.clamp_(s1, s2); break;
      case BTI_SQRT: x.sqrt_(); break;
      case BTI_DIV: x.div_(T(b)); break;
      case BTI_DIV_SCALAR: x.div_(s1); break;
      default: TORCH_CHECK(false, "unknown in-place op ", op);
    }
  })
}

// One decoupled-weight-decay Adam step of param in place, in the order torch.optim.AdamW
// (single-tensor path) uses, so results match it to rounding. step counts from 1. Shared
// by bt_adamw_step and bt_adamw8bit_step; call it under torch::NoGradGuard.
static void adamw_update(at::Tensor param, at::Tensor grad, at::Tensor exp_avg, at::Tensor exp_avg_sq, double lr,
                         double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  TORCH_CHECK(step >= 1, "adamw: step must be >= 1, got ", step);
  if (grad.scalar_type() != exp_avg.scalar_type()) grad = grad.to(exp_avg.scalar_type());
  if (weight_decay != 0) param.mul_(1 - lr * weight_decay);
  exp_avg.lerp_(grad, 1 - beta1);
  exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  double step_size = lr / bc1;
  auto denom = (exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(eps);
  if (param.scalar_type() == exp_avg.scalar_type()) {
    param.addcdiv_(exp_avg, denom, -step_size);
  } else {
    param.copy_(param.to(exp_avg.scalar_type()).addcdiv_(exp_avg, denom, -step_size));
  }
}

const char* bt_adamw_step(bt_tensor p, bt_tensor g, bt_tensor m, bt_tensor v, double lr, double beta1,
                          double beta2, double eps, double weight_decay, int64_t step) {
  BT_TRY({
    torch::NoGradGuard ng;
    adamw_update(T(p), T(g), T(m), T(v), lr, beta1, beta2, eps, weight_decay, step);
  })
}

// fused_adamw_device: whether libtorch has at::_fused_adamw_ for tensors on t's device
// (CUDA from 2.1 when the shim is built with BT_CUDA; CPU from 2.4).
#if BT_VERSION_AT_LEAST(2, 1)
static bool fused_adamw_device(const at::Tensor& t) {
#if defined(BT_CUDA)
  if (t.is_cuda()) return true;
#endif
#if BT_VERSION_AT_LEAST(2, 4)
  if (t.is_cpu()) return true;
#endif
  (void)t;
  return false;
}
#endif

// AdamW over n tensors in one call. With fused set, where libtorch has the fused
// multi-tensor kernel (see fused_adamw_device) and every list shares one dtype and
// device, at::_fused_adamw_ runs (as torch.optim.AdamW(fused=True)); otherwise each
// tensor takes the single-tensor path of bt_adamw_step. *used_fused reports which ran.
const char* bt_adamw_multi(const bt_tensor* ps, const bt_tensor* gs, const bt_tensor* ms, const bt_tensor* vs,
                           const int64_t* steps, int n, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int fused, int* used_fused) {
  BT_TRY({
    *used_fused = 0;
    if (n <= 0) return nullptr;
#if BT_VERSION_AT_LEAST(2, 1)
    if (fused && fused_adamw_device(T(ps[0]))) {
      bool ok = true;
      auto dev = T(ps[0]).device();
      auto dt = T(ps[0]).scalar_type();
      for (int i = 0; i < n && ok; i++) {
        for (bt_tensor h : {ps[i], gs[i], ms[i], vs[i]}) {
          const auto& t = T(h);
          if (t.device() != dev || t.scalar_type() != dt || !t.is_contiguous()) ok = false;
        }
      }
      if (ok) {
        torch::NoGradGuard ng;
        std::vector<at::Tensor> P, G, M, V, S;
        for (int i = 0; i < n; i++) {
          P.push_back(T(ps[i]));
          G.push_back(T(gs[i]));
          M.push_back(T(ms[i]));
          V.push_back(T(vs[i]));
          // torch.optim keeps each step as a float32 tensor on the device and adds 1
          // before the kernel reads it; steps[i] already counts this update.
          S.push_back(at::full({}, static_cast<double>(steps[i]), T(ps[i]).options().dtype(at::kFloat)));
        }
        at::_fused_adamw_(P, G, M, V, {}, S, lr, beta1, beta2, weight_decay, eps, false, false);
        *used_fused = 1;
        return nullptr;
      }
    }
#else
    (void)fused;
#endif
    for (int i = 0; i < n; i++) {
      const char* err = bt_adamw_step(ps[i], gs[i], ms[i], vs[i], lr, beta1, beta2, eps, weight_decay, steps[i]);
      if (err != nullptr) return err;
    }
  })
}

// ---- 8-bit optimizer state (bitsandbytes' block-wise dynamic quantisation) -------------

// dynamic_map is bitsandbytes' create_dynamic_map(signed, max_exponent_bits=7,
// total_bits=8), built with the same libtorch ops (float32 linspace, midpoints, scaling
// by the power of ten, sort), so its 256 values equal the Python function's under the
// same libtorch. Signed: 0, 1 and +-127 values over seven decades; unsigned: 0, 1 and
// 254 positive values.
static at::Tensor dynamic_map(bool is_signed) {
  const int max_exponent_bits = 7, non_sign_bits = 7;
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::vector<at::Tensor> parts;
  for (int i = 0; i < max_exponent_bits; i++) {
    int shift = i + non_sign_bits - max_exponent_bits + (is_signed ? 0 : 1);
    int64_t items = (int64_t{1} << shift) + 1;
    auto boundaries = at::linspace(0.1, 1, items, f32);
    auto means = (boundaries.narrow(0, 0, items - 1) + boundaries.narrow(0, 1, items - 1)) / 2.0;
    double scale = std::pow(10.0, static_cast<double>(-(max_exponent_bits - 1) + i));
    parts.push_back(means * scale);
    if (is_signed) parts.push_back(means * (-scale));
  }
  // 2^(non_sign_bits - max_exponent_bits) - 1 = 0 additional items
  parts.push_back(at::zeros({1}, f32));
  parts.push_back(at::ones({1}, f32));
  auto data = at::cat(parts);
  TORCH_CHECK(data.numel() == 256, "dynamic map: ", data.numel(), " values, want 256");
  return std::get<0>(data.sort());
}

static void check_code(const at::Tensor& code, int64_t blocksize) {
  TORCH_CHECK(code.dim() == 1 && code.numel() == 256 && code.scalar_type() == at::kFloat,
              "blockwise quantisation: the map must be a float32 tensor of 256 values, got ", code.sizes(), " ",
              code.scalar_type());
  TORCH_CHECK(blocksize >= 1, "blockwise quantisation: block size ", blocksize, " must be positive");
}

// quantize_blockwise writes a (any float dtype, numel n) into q (uint8, n elements,
// contiguous) and absmax (float32, ceil(n/blocksize), contiguous) as bitsandbytes'
// quantize_blockwise does: per block of blocksize consecutive values absmax = max |a|,
// u = clamp(a * (1 / max(absmax, 1e-38)), -1, 1), q = index of the map value nearest
// u (a tie goes to the lower index: torch.bucketize over the midpoints).
static void quantize_blockwise(const at::Tensor& a, const at::Tensor& code, int64_t blocksize, at::Tensor q,
                               at::Tensor absmax) {
  check_code(code, blocksize);
  int64_t n = a.numel();
  int64_t nb = (n + blocksize - 1) / blocksize;
  TORCH_CHECK(q.scalar_type() == at::kByte && q.numel() == n && q.is_contiguous(),
              "quantize_blockwise: codes must be a contiguous uint8 tensor of ", n, " values, got ", q.sizes(), " ",
              q.scalar_type());
  TORCH_CHECK(absmax.scalar_type() == at::kFloat && absmax.numel() == nb && absmax.is_contiguous(),
              "quantize_blockwise: absmax must be a contiguous float32 tensor of ", nb, " values, got ",
              absmax.sizes(), " ", absmax.scalar_type());
  TORCH_CHECK(a.device() == q.device() && a.device() == absmax.device() && a.device() == code.device(),
              "quantize_blockwise: tensors on different devices");
  if (n == 0) return;
  auto flat = a.reshape({-1}).to(at::kFloat);
  auto am = absmax.view({-1});
  int64_t nfull = n / blocksize, full = nfull * blocksize, rem = n - full;
  auto scaled = at::empty({n}, flat.options());
  if (nfull > 0) {
    auto blocks = flat.narrow(0, 0, full).view({nfull, blocksize});
    auto amf = am.narrow(0, 0, nfull);
    at::amax_out(amf, blocks.abs(), {1}, false);
    auto dst = scaled.narrow(0, 0, full).view({nfull, blocksize});
    at::mul_out(dst, blocks, amf.clamp_min(1e-38).reciprocal().unsqueeze(1));
  }
  if (rem > 0) {
    auto tail = flat.narrow(0, full, rem);
    auto amt = am.narrow(0, nfull, 1);
    at::amax_out(amt, tail.abs(), {0}, true);
    auto dst = scaled.narrow(0, full, rem);
    at::mul_out(dst, tail, amt.clamp_min(1e-38).reciprocal());
  }
  scaled.clamp_(-1, 1);
  auto bounds = (code.narrow(0, 0, 255) + code.narrow(0, 1, 255)) / 2.0;
  q.view({-1}).copy_(at::bucketize(scaled, bounds, /*out_int32=*/true, /*right=*/false));
}

// dequantize_blockwise is bitsandbytes' dequantize_blockwise to float32: code[q] times
// the block's absmax, shaped like q.
static at::Tensor dequantize_blockwise(const at::Tensor& q, const at::Tensor& absmax, const at::Tensor& code,
                                       int64_t blocksize) {
  check_code(code, blocksize);
  int64_t n = q.numel();
  int64_t nb = (n + blocksize - 1) / blocksize;
  TORCH_CHECK(q.scalar_type() == at::kByte, "dequantize_blockwise: codes must be uint8, got ", q.scalar_type());
  TORCH_CHECK(absmax.scalar_type() == at::kFloat && absmax.numel() == nb,
              "dequantize_blockwise: absmax must be a float32 tensor of ", nb, " values, got ", absmax.sizes(), " ",
              absmax.scalar_type());
  auto out = code.index_select(0, q.reshape({-1}).to(at::kLong));
  auto am = absmax.reshape({-1});
  int64_t nfull = n / blocksize, full = nfull * blocksize, rem = n - full;
  if (nfull > 0) out.narrow(0, 0, full).view({nfull, blocksize}).mul_(am.narrow(0, 0, nfull).unsqueeze(1));
  if (rem > 0) out.narrow(0, full, rem).mul_(am.narrow(0, nfull, 1));
  return out.view(q.sizes());
}

const char* bt_dynamic_map(int is_signed, bt_tensor* out) {
  BT_TRY({
    torch::NoGradGuard ng;
    *out = wrap(dynamic_map(is_signed != 0));
  })
}

const char* bt_quantize_blockwise(bt_tensor a, bt_tensor code, int64_t blocksize, bt_tensor q, bt_tensor absmax) {
  BT_TRY({
    torch::NoGradGuard ng;
    quantize_blockwise(T(a), T(code), blocksize, T(q), T(absmax));
  })
}

const char* bt_dequantize_blockwise(bt_tensor q, bt_tensor absmax, bt_tensor code, int64_t blocksize,
                                    bt_tensor* out) {
  BT_TRY({
    torch::NoGradGuard ng;
    *out = wrap(dequantize_blockwise(T(q), T(absmax), T(code), blocksize));
  })
}

// The kernel templates need C++ linkage inside this extern "C" block.
extern "C++" {

// CodeSearch gives the code of a scaled value u in [-1, 1] as quantize_blockwise's
// bucketize does: the number of the map's 255 midpoints below u. A table indexed by u's
// top 15 bits (sign, exponent, 6 mantissa bits) holds that number for the smallest float
// with those bits; comparisons with the next midpoints finish it (bitsandbytes' maps have
// at most two midpoints in a bucket; the loop covers any other map).
struct CodeSearch {
  float bounds[256];  // midpoints, then +inf
  std::vector<uint8_t> start;

  explicit CodeSearch(const float* code) : start(1 << 15) {
    for (int i = 0; i < 255; i++) bounds[i] = (code[i] + code[i + 1]) / 2.0f;
    bounds[255] = std::numeric_limits<float>::infinity();
    // positive keys ascend in value from +0; negative ones from the most negative (NaN
    // buckets first: no midpoint compares below NaN)
    int c = 0;
    for (uint32_t key = 0; key < (1u << 14); key++) {
      const float lo = from_bits(key << 17);
      while (c < 255 && bounds[c] < lo) c++;
      start[key] = static_cast<uint8_t>(c);
    }
    c = 0;
    for (uint32_t key = (1u << 15) - 1; key >= (1u << 14); key--) {
      const float lo = from_bits((key << 17) | 0x1FFFFu);
      while (c < 255 && bounds[c] < lo) c++;
      start[key] = static_cast<uint8_t>(c);
    }
  }
  static float from_bits(uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  }
  uint8_t operator()(float u) const {
    uint32_t b;
    std::memcpy(&b, &u, sizeof b);
    int i = start[b >> 17];
    i += bounds[i] < u;
    i += bounds[i] < u;
    while (bounds[i] < u) i++;
    return static_cast<uint8_t>(i);
  }
};

// adamw8bit_cpu is bt_adamw8bit_step's CPU kernel: one pass over the blocks (in
// parallel), each block's moments dequantised into a local float32 buffer, updated with
// the parameter as adamw_update computes it (the same float32 operations in the same
// order; no fused multiply-add: the shim is built without -ffp-contract), and quantised
// back (nearest map value found as bucketize finds it, by CodeSearch). P: parameter
// type; G: gradient type.
template <typename P, typename G>
static void adamw8bit_cpu(P* param, const G* grad, uint8_t* qm, float* am, uint8_t* qv, float* av,
                          const float* code1, const float* code2, int64_t n, int64_t blocksize, double lr,
                          double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  const CodeSearch search1(code1), search2(code2);
  const float decay = static_cast<float>(1 - lr * weight_decay);
  const float w1 = static_cast<float>(1 - beta1);
  const float b2 = static_cast<float>(beta2), w2 = static_cast<float>(1 - beta2);
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  const float step_size = static_cast<float>(-(lr / bc1));
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  const float feps = static_cast<float>(eps);
  const int64_t nb = (n + blocksize - 1) / blocksize;
  at::parallel_for(0, nb, std::max<int64_t>(1, 16384 / blocksize), [&](int64_t b0, int64_t b1) {
    std::vector<float> mbuf(static_cast<size_t>(blocksize)), vbuf(static_cast<size_t>(blocksize));
    for (int64_t b = b0; b < b1; b++) {
      const int64_t lo = b * blocksize, len = std::min(blocksize, n - lo);
      const float amb = am[b], avb = av[b];
      float mmax = 0, vmax = 0;
      for (int64_t j = 0; j < len; j++) {
        const int64_t i = lo + j;
        const float g = static_cast<float>(grad[i]);
        float m = code1[qm[i]] * amb;
        float v = code2[qv[i]] * avb;
        float p = static_cast<float>(param[i]);
        // adamw_update decays the parameter in its own dtype
        if (weight_decay != 0) p = static_cast<float>(static_cast<P>(p * decay));
        m = m + w1 * (g - m);  // lerp with weight < 0.5
        v = v * b2;
        v = v + w2 * g * g;
        const float denom = std::sqrt(v) / sqrt_bc2 + feps;
        p = p + step_size * m / denom;
        param[i] = static_cast<P>(p);
        mbuf[j] = m;
        vbuf[j] = v;
        mmax = std::max(mmax, std::fabs(m));
        vmax = std::max(vmax, std::fabs(v));
      }
      am[b] = mmax;
      av[b] = vmax;
      const float inv1 = 1.0f / std::max(mmax, 1e-38f), inv2 = 1.0f / std::max(vmax, 1e-38f);
      for (int64_t j = 0; j < len; j++) {
        qm[lo + j] = search1(std::min(std::max(mbuf[j] * inv1, -1.0f), 1.0f));
        qv[lo + j] = search2(std::min(std::max(vbuf[j] * inv2, -1.0f), 1.0f));
      }
    }
  });
}

// adamw8bit_ops is bt_adamw8bit_step with libtorch ops on any device: dequantise both
// moments to float32 tensors, adamw_update, quantise back.
static void adamw8bit_ops(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& qm,
                          const at::Tensor& am, const at::Tensor& qv, const at::Tensor& av, const at::Tensor& code1,
                          const at::Tensor& code2, int64_t blocksize, double lr, double beta1, double beta2,
                          double eps, double weight_decay, int64_t step) {
  auto m = dequantize_blockwise(qm, am, code1, blocksize);
  auto v = dequantize_blockwise(qv, av, code2, blocksize);
  adamw_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
  quantize_blockwise(m, code1, blocksize, qm, am);
  quantize_blockwise(v, code2, blocksize, qv, av);
}

template <typename P>
static void adamw8bit_cpu_grad(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& qm,
                               const at::Tensor& am, const at::Tensor& qv, const at::Tensor& av,
                               const at::Tensor& code1, const at::Tensor& code2, int64_t blocksize, double lr,
                               double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  auto args = [&](auto* g) {
    adamw8bit_cpu(param.data_ptr<P>(), g, qm.data_ptr<uint8_t>(), am.data_ptr<float>(), qv.data_ptr<uint8_t>(),
                  av.data_ptr<float>(), code1.data_ptr<float>(), code2.data_ptr<float>(), param.numel(), blocksize,
                  lr, beta1, beta2, eps, weight_decay, step);
  };
  if (grad.scalar_type() == param.scalar_type()) {
    args(grad.data_ptr<P>());
  } else {
    auto g = grad.to(at::kFloat).contiguous();
    args(g.data_ptr<float>());
  }
}

}  // extern "C++"

// One AdamW step with 8-bit moments, as bitsandbytes' blockwise 8-bit Adam: the moments
// (uint8 codes qm, qv shaped like p; float32 absmax am, av per block) are dequantised
// to float32 (map code1 for the first, code2 for the second), updated with p by
// adamw_update's math, and quantised back in place. The float32 moments exist only
// inside the call (the CPU kernel keeps one block's at a time). kernel = 1 runs the
// CPU kernel where it applies (CPU, contiguous, f32/bf16/f16 parameter), else libtorch
// ops; kernel = 0 always the ops.
const char* bt_adamw8bit_step(bt_tensor p, bt_tensor g, bt_tensor qm, bt_tensor am, bt_tensor qv, bt_tensor av,
                              bt_tensor code1, bt_tensor code2, int64_t blocksize, double lr, double beta1,
                              double beta2, double eps, double weight_decay, int64_t step, int kernel) {
  BT_TRY({
    torch::NoGradGuard ng;
    const auto& param = T(p);
    const auto& grad = T(g);
    TORCH_CHECK(T(qm).sizes() == param.sizes() && T(qv).sizes() == param.sizes() && grad.sizes() == param.sizes(),
                "adamw8bit: parameter ", param.sizes(), ", gradient ", grad.sizes(), " and moments ", T(qm).sizes(),
                ", ", T(qv).sizes(), " differ in shape");
    TORCH_CHECK(step >= 1, "adamw: step must be >= 1, got ", step);
    check_code(T(code1), blocksize);
    check_code(T(code2), blocksize);
    const int64_t nb = (param.numel() + blocksize - 1) / blocksize;
    for (bt_tensor h : {qm, qv}) {
      TORCH_CHECK(T(h).scalar_type() == at::kByte && T(h).is_contiguous(), "adamw8bit: codes must be contiguous uint8");
    }
    for (bt_tensor h : {am, av}) {
      TORCH_CHECK(T(h).scalar_type() == at::kFloat && T(h).numel() == nb && T(h).is_contiguous(),
                  "adamw8bit: absmax must be a contiguous float32 tensor of ", nb, " values, got ", T(h).sizes());
    }
    bool cpu = true;
    for (bt_tensor h : {p, g, qm, am, qv, av, code1, code2}) cpu = cpu && T(h).is_cpu() && T(h).is_contiguous();
    auto dt = param.scalar_type();
    if (kernel && cpu && (dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf)) {
      switch (dt) {
        case at::kFloat:
          adamw8bit_cpu_grad<float>(param, grad, T(qm), T(am), T(qv), T(av), T(code1), T(code2), blocksize, lr,
                                    beta1, beta2, eps, weight_decay, step);
          break;
        case at::kBFloat16:
          adamw8bit_cpu_grad<at::BFloat16>(param, grad, T(qm), T(am), T(qv), T(av), T(code1), T(code2), blocksize,
                                           lr, beta1, beta2, eps, weight_decay, step);
          break;
        default:
          adamw8bit_cpu_grad<at::Half>(param, grad, T(qm), T(am), T(qv), T(av), T(code1), T(code2), blocksize, lr,
                                       beta1, beta2, eps, weight_decay, step);
      }
      return nullptr;
    }
    adamw8bit_ops(param, grad, T(qm), T(am), T(qv), T(av), T(code1), T(code2), blocksize, lr, beta1, beta2, eps,
                  weight_decay, step);
  })
}

// ---- autograd ---------------------------------------------------------------------------

const char* bt_set_requires_grad(bt_tensor t, int on) {
  BT_TRY({
    at::Tensor x = T(t);
    x.set_requires_grad(on != 0);
  })
}

const char* bt_backward(bt_tensor t, bt_tensor grad, int retain_graph) {
  BT_TRY({
    c10::optional<bool> retain;
    if (retain_graph) retain = true;
    T(t).backward(grad ? T(grad) : at::Tensor(), retain, false);
  })
}

const char* bt_grad(bt_tensor t, bt_tensor* out) {
  BT_TRY({
    const auto& g = T(t).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  })
}

const char* bt_grad_reset(bt_tensor t, int set_to_none) {
  BT_TRY({
    at::Tensor x = T(t);
    auto& g = x.mutable_grad();
    if (!g.defined()) return nullptr;
    if (set_to_none) {
      g.reset();
    } else {
      torch::NoGradGuard ng;
      g.zero_();
    }
  })
}

const char* bt_norm_probe(bt_tensor w, bt_tensor token, bt_tensor buf, int64_t slot, bt_tensor* out) {
  BT_TRY({
    TORCH_CHECK(T(token).requires_grad(), "norm probe: token must require grad");
    TORCH_CHECK(slot >= 0 && slot < T(buf).size(0), "norm probe: slot ", slot, " outside buffer of ",
                T(buf).size(0));
    *out = wrap(NormProbe::apply(T(w), T(token), T(buf), slot));
  })
}

const char* bt_grad_sink(int64_t id, bt_tensor w, bt_tensor* out) {
  BT_TRY({
    TORCH_CHECK(T(w).requires_grad(), "grad sink: the tensor must require grad");
    *out = wrap(GradSink::apply(id, T(w)));
  })
}

const char* bt_set_checkpoint_callback(bt_checkpoint_fn fn) { BT_TRY(g_ckpt_fn.store(fn)) }

const char* bt_checkpoint(int64_t id, bt_tensor x, bt_tensor token, bt_tensor* out) {
  BT_TRY({
    TORCH_CHECK(T(token).requires_grad(), "checkpoint: token must require grad");
    *out = wrap(Checkpoint::apply(id, T(x), T(token)));
  })
}

}  // extern "C"
