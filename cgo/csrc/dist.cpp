// blockllm-go libtorch shim, distributed part: c10d stores, process groups and
// collectives. See dist.h for the conventions and docs/DESIGN.md ("Distributed")
// for how the pieces fit.
//
// c10d classes by libtorch version:
//   1.13: ProcessGroupGloo/ProcessGroupNCCL derive from c10d::ProcessGroup;
//   2.x:  they derive from c10d::Backend (ProcessGroup became a dispatching wrapper).
// Both have the same collective methods with the same option structs, so the shim holds
// the concrete group through the common base (PGBase) and calls those.
#include <torch/version.h>
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

// ProcessGroupGloo.hpp is wrapped in USE_C10D_GLOO and includes Gloo's headers
// (Debian: libgloo-dev); ProcessGroupNCCL.hpp is wrapped in USE_C10D_NCCL and includes
// nccl.h. Each backend is compiled in when its headers are there; bt_dist_features says
// which, and bt_pg_new names what is missing.
#if __has_include(<gloo/algorithm.h>)
#define BT_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#endif
#if defined(BT_CUDA) && __has_include(<nccl.h>)
#define BT_HAVE_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#endif

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#ifdef BT_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef BT_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "handle.h"

#define BT_VERSION_AT_LEAST(maj, min) \
  (TORCH_VERSION_MAJOR > (maj) || (TORCH_VERSION_MAJOR == (maj) && TORCH_VERSION_MINOR >= (min)))

extern "C" {
#include "dist.h"
#define X(name, params, args) const char* name params;
BT_DIST_FUNCS(X)
#undef X
}

namespace {

char* dupstr(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

#define BT_TRY(...)                                  \
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

// message of the exception being handled (inside a catch block)
std::string current_message() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown C++ exception";
  }
}

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

#if TORCH_VERSION_MAJOR >= 2
using PGBase = c10d::Backend;
#else
using PGBase = c10d::ProcessGroup;
#endif

const at::Tensor& T(bt_tensor h) {
  TORCH_CHECK(h != nullptr, "nil tensor handle");
  return static_cast<bt::Handle*>(h)->t;
}

struct StoreH {
  c10::intrusive_ptr<c10d::Store> s;
};

c10d::Store& S(bt_store h) {
  TORCH_CHECK(h != nullptr, "nil store handle");
  return *static_cast<StoreH*>(h)->s;
}

struct PG {
  c10::intrusive_ptr<PGBase> pg;
  int backend = BTD_GLOO;
  int rank = 0;
  int size = 1;
  int device = 0;  // CUDA device of an NCCL group
  ms timeout{0};
  std::mutex mu;       // guards the fields below
  std::string broken;  // why the group refuses collectives; empty while it works
  int rs_native = -1;  // reduce-scatter: -1 not tried, 1 the backend's own, 0 all-reduce + slice
  int pending = 0;     // issued collectives not yet waited for successfully
};

struct Work {
  std::shared_ptr<PG> pg;
  std::string op;
  c10::intrusive_ptr<c10d::Work> w;  // null: nothing to wait for (world size 1 staging)
  std::function<void()> finish;      // copies staged results back; runs after a successful wait
  ms timeout{0};
  bool done = false;
  bool failed = false;
};

// TCPStoreOptions::useLibUV (2.2+, on by default from 2.4) selects the libuv server; a
// libtorch built without libuv (Debian's 2.6) refuses it, even for a client.
template <typename T, typename = void>
struct has_libuv : std::false_type {};
template <typename T>
struct has_libuv<T, std::void_t<decltype(std::declval<T&>().useLibUV)>> : std::true_type {};
template <typename O>
bool disable_libuv(O& o) {
  if constexpr (has_libuv<O>::value) {
    if (!o.useLibUV) return false;
    o.useLibUV = false;
    return true;
  } else {
    (void)o;
    return false;
  }
}

std::shared_ptr<PG>& P(bt_pg h) {
  TORCH_CHECK(h != nullptr, "nil process group handle");
  return *static_cast<std::shared_ptr<PG>*>(h);
}

ms pick(int64_t timeout_ms, ms dflt) { return timeout_ms > 0 ? ms(timeout_ms) : dflt; }

std::string seconds(ms t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

void mark_broken(PG& g, const std::string& why) {
  std::lock_guard<std::mutex> lk(g.mu);
  if (g.broken.empty()) g.broken = why;
}

void check_usable(PG& g, const char* op) {
  std::lock_guard<std::mutex> lk(g.mu);
  TORCH_CHECK(g.broken.empty(), op, ": the process group is unusable after an earlier failure (", g.broken,
              "); close it");
}

bool is_gloo(const PG& g) { return g.backend == BTD_GLOO; }

// Gloo (1.13 at least) has no bfloat16 or bool kernels and its ops need dense contiguous
// tensors. staged() returns the tensor a collective runs on: t itself when usable, a
// same-size dtype view for ops that only move bytes (bf16 as f16, bool as u8), or a new
// contiguous (float32 for a reduced bf16) copy that finish() copies back.
bool gloo_dtype_ok(at::ScalarType s) {
  switch (s) {
    case at::kFloat: case at::kDouble: case at::kHalf: case at::kChar: case at::kByte:
    case at::kInt: case at::kLong:
      return true;
    default:
      return false;
  }
}

struct Staged {
  at::Tensor comm;         // what the collective runs on
  bool copy_back = false;  // comm is a copy: results go back into the user's tensor
};

Staged stage(const PG& g, const at::Tensor& t, bool reduces) {
  TORCH_CHECK(t.defined(), "undefined tensor");
  Staged r;
  at::ScalarType st = t.scalar_type();
  if (reduces) {
    TORCH_CHECK(st != at::kBool, "cannot reduce a bool tensor (use uint8)");
  }
  TORCH_CHECK(!t.is_sparse(), "collectives of sparse tensors are not supported");
  bool dense = t.is_contiguous();
  if (is_gloo(g) && !gloo_dtype_ok(st)) {
    if (!reduces && dense && (st == at::kBFloat16 || st == at::kBool)) {
      r.comm = t.view(st == at::kBool ? at::kByte : at::kHalf);
      return r;
    }
    TORCH_CHECK(st == at::kBFloat16 || st == at::kBool, "Gloo cannot run collectives on ", st, " tensors");
    r.comm = t.contiguous().to(st == at::kBool ? at::kByte : at::kFloat);
    r.copy_back = true;
    return r;
  }
  if (dense) {
    r.comm = t;
    return r;
  }
  r.comm = t.contiguous();  // a copy: t is not contiguous
  r.copy_back = true;
  return r;
}

void check_op(int op, at::ScalarType st) {
  TORCH_CHECK(op >= BTD_SUM && op <= BTD_MIN, "unknown reduce op ", op);
  if (op == BTD_AVG) {
    TORCH_CHECK(at::isFloatingType(st), "an average needs a floating-point tensor, got ", st);
  }
}

// The c10d reduce op for one of ours. AVG is the backend's own only for NCCL on 2.x
// (NCCL >= 2.10); elsewhere (Gloo has no AVG) the shim sums and divides after.
bool native_avg(const PG& g) {
#if TORCH_VERSION_MAJOR >= 2
  return g.backend == BTD_NCCL;
#else
  (void)g;
  return false;
#endif
}

c10d::ReduceOp reduce_op(const PG& g, int op) {
  switch (op) {
    case BTD_AVG:
      return native_avg(g) ? c10d::ReduceOp(c10d::ReduceOp::AVG) : c10d::ReduceOp(c10d::ReduceOp::SUM);
    case BTD_MAX:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    case BTD_MIN:
      return c10d::ReduceOp(c10d::ReduceOp::MIN);
    default:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
  }
}

bool divide_after(const PG& g, int op) { return op == BTD_AVG && !native_avg(g) && g.size > 1; }

// issue runs start() (which issues the c10d collective) and wraps the result. Any
// failure marks the group broken: this rank is now out of step with the others.
const char* issue(bt_pg h, const char* op, int64_t timeout_ms,
                  const std::function<c10::intrusive_ptr<c10d::Work>(PG&, ms)>& start,
                  std::function<void()> finish, bt_work* out) {
  std::shared_ptr<PG> g;
  try {
    g = P(h);
    TORCH_CHECK(out != nullptr, "nil work out-pointer");
    check_usable(*g, op);
  } catch (...) {
    return dupstr(current_message());
  }
  try {
    ms t = pick(timeout_ms, g->timeout);
    auto w = std::make_unique<Work>();
    w->pg = g;
    w->op = op;
    w->timeout = t;
    {
      at::NoGradGuard ng;  // staging copies are not part of any graph
      w->w = start(*g, t);
    }
    w->finish = std::move(finish);
    {
      std::lock_guard<std::mutex> lk(g->mu);
      g->pending++;
    }
    *out = w.release();
    return nullptr;
  } catch (...) {
    std::string msg = std::string(op) + ": " + current_message();
    mark_broken(*g, msg);
    return dupstr(msg);
  }
}

std::vector<at::Tensor> tensors(const bt_tensor* ts, int n) {
  TORCH_CHECK(n >= 1 && ts != nullptr, "no tensors");
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

}  // namespace

extern "C" {

const char* bt_dist_features(int* gloo, int* nccl) {
  BT_TRY({
#ifdef BT_HAVE_GLOO
    *gloo = 1;
#else
    *gloo = 0;
#endif
#ifdef BT_HAVE_NCCL
    *nccl = 1;
#else
    *nccl = 0;
#endif
  })
}

// ---- stores -------------------------------------------------------------------------

const char* bt_store_tcp(const char* host, int port, int is_server, int64_t timeout_ms, bt_store* out,
                         int* bound_port) {
  BT_TRY({
    TORCH_CHECK(host != nullptr && *host != 0, "empty store host");
    TORCH_CHECK(port >= 0 && port <= 65535, "store port ", port, " is outside 0..65535");
    TORCH_CHECK(port != 0 || is_server, "a store client needs the server's port");
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    o.waitWorkers = false;  // the Go side's join step waits, naming who is missing
    o.timeout = ms(timeout_ms > 0 ? timeout_ms : 300000);
    c10::intrusive_ptr<c10d::TCPStore> s;
    try {
      s = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    } catch (const std::exception& e) {
      if (std::string(e.what()).find("libuv") == std::string::npos || !disable_libuv(o)) throw;
      s = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    }
    *bound_port = static_cast<int>(s->getPort());
    *out = new StoreH{s};
  })
}

const char* bt_store_file(const char* path, int world_size, int64_t timeout_ms, bt_store* out) {
  BT_TRY({
    TORCH_CHECK(path != nullptr && *path != 0, "empty store file path");
    TORCH_CHECK(world_size >= 1, "world size ", world_size, " < 1");
    auto s = c10::make_intrusive<c10d::FileStore>(std::string(path), world_size);
    s->setTimeout(ms(timeout_ms > 0 ? timeout_ms : 300000));
    *out = new StoreH{s};
  })
}

const char* bt_store_prefix(bt_store base, const char* prefix, bt_store* out) {
  BT_TRY({
    TORCH_CHECK(base != nullptr, "nil store handle");
    TORCH_CHECK(prefix != nullptr, "nil prefix");
    auto s = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), static_cast<StoreH*>(base)->s);
    *out = new StoreH{s};
  })
}

const char* bt_store_free(bt_store s) { BT_TRY(delete static_cast<StoreH*>(s)) }

const char* bt_store_set(bt_store s, const char* key, const void* data, int64_t n) {
  BT_TRY({
    TORCH_CHECK(n >= 0 && (n == 0 || data != nullptr), "bad value buffer");
    const auto* p = static_cast<const uint8_t*>(data);
    S(s).set(std::string(key), n == 0 ? std::vector<uint8_t>{} : std::vector<uint8_t>(p, p + n));
  })
}

const char* bt_store_get(bt_store s, const char* key, int64_t timeout_ms, void** data, int64_t* n) {
  BT_TRY({
    *data = nullptr;
    *n = 0;
    auto& st = S(s);
    std::string k(key);
    if (timeout_ms > 0) st.wait({k}, ms(timeout_ms));
    std::vector<uint8_t> v = st.get(k);
    if (!v.empty()) {
      void* p = std::malloc(v.size());
      TORCH_CHECK(p != nullptr, "out of memory");
      std::memcpy(p, v.data(), v.size());
      *data = p;
      *n = static_cast<int64_t>(v.size());
    }
  })
}

const char* bt_store_add(bt_store s, const char* key, int64_t delta, int64_t* out) {
  BT_TRY(*out = S(s).add(std::string(key), delta))
}

const char* bt_store_check(bt_store s, const char* key, int* exists) {
  BT_TRY(*exists = S(s).check({std::string(key)}) ? 1 : 0)
}

// ---- process groups --------------------------------------------------------------------

const char* bt_pg_new(int backend, bt_store s, int rank, int size, int64_t timeout_ms, const char* gloo_ifname,
                      const char* gloo_host, int device, bt_pg* out) {
  BT_TRY({
    TORCH_CHECK(s != nullptr, "nil store handle");
    TORCH_CHECK(size >= 1 && rank >= 0 && rank < size, "rank ", rank, " is outside world size ", size);
    auto g = std::make_shared<PG>();
    g->backend = backend;
    g->rank = rank;
    g->size = size;
    g->device = device;
    g->timeout = ms(timeout_ms > 0 ? timeout_ms : 1800000);
    auto store = static_cast<StoreH*>(s)->s;
    if (backend == BTD_GLOO) {
#ifdef BT_HAVE_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
      std::string ifname = gloo_ifname ? gloo_ifname : "";
      std::string host = gloo_host ? gloo_host : "";
      if (!ifname.empty()) {
        // GLOO_SOCKET_IFNAME may list several interfaces, comma-separated (as PyTorch reads it)
        size_t start = 0;
        while (start <= ifname.size()) {
          size_t end = ifname.find(',', start);
          if (end == std::string::npos) end = ifname.size();
          std::string one = ifname.substr(start, end - start);
          if (!one.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(one));
          start = end + 1;
        }
        TORCH_CHECK(!opts->devices.empty(), "no interface in GLOO_SOCKET_IFNAME=", ifname);
      } else if (!host.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2 * static_cast<int>(opts->devices.size());  // as torch.distributed does
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
#else
      TORCH_CHECK(false,
                  "this shim was built without Gloo (no gloo/algorithm.h when it was compiled: on Debian "
                  "install libgloo-dev and run `make shim`)");
#endif
    } else if (backend == BTD_NCCL) {
#ifdef BT_HAVE_NCCL
      // Without blocking wait, a timed-out NCCL collective makes libtorch's watchdog tear
      // the process down; with it, wait() aborts the communicators and throws, and the
      // error comes back here. A user's own setting of either variable wins.
      if (std::getenv("TORCH_NCCL_BLOCKING_WAIT") == nullptr && std::getenv("NCCL_BLOCKING_WAIT") == nullptr &&
          std::getenv("TORCH_NCCL_ASYNC_ERROR_HANDLING") == nullptr &&
          std::getenv("NCCL_ASYNC_ERROR_HANDLING") == nullptr) {
#if BT_VERSION_AT_LEAST(2, 2)
        setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
#else
        setenv("NCCL_BLOCKING_WAIT", "1", 0);
#endif
      }
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g->timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
#else
#if defined(BT_CUDA)
      TORCH_CHECK(false, "this shim was built without NCCL (no nccl.h when it was compiled)");
#else
      TORCH_CHECK(false, "NCCL needs a shim built against a CUDA libtorch (BT_CUDA)");
#endif
#endif
    } else {
      TORCH_CHECK(false, "unknown backend ", backend);
    }
    *out = new std::shared_ptr<PG>(std::move(g));
  })
}

const char* bt_pg_free(bt_pg h, int* abandoned) {
  BT_TRY({
    *abandoned = 0;
    if (h == nullptr) return nullptr;
    auto* holder = static_cast<std::shared_ptr<PG>*>(h);
    std::shared_ptr<PG> g = *holder;
    delete holder;
    bool keep;
    {
      std::lock_guard<std::mutex> lk(g->mu);
      keep = !g->broken.empty() || g->pending > 0;
    }
    if (keep) {
      // The destructor joins the worker threads, which may sit in a collective with a
      // dead or stuck peer until the backend's own timeout: leave the group to the
      // process's exit instead of blocking here.
      g->pg.release();
      *abandoned = 1;
    }
  })
}

const char* bt_pg_allreduce(bt_pg h, const bt_tensor* ts, int n, int op, int64_t timeout_ms, bt_work* out) {
  std::vector<at::Tensor> users;
  try {
    users = tensors(ts, n);
    for (const auto& t : users) {
      TORCH_CHECK(t.scalar_type() == users[0].scalar_type() && t.device() == users[0].device(),
                  "all-reduce of several tensors needs one dtype and device: ", users[0].scalar_type(), " on ",
                  users[0].device(), " and ", t.scalar_type(), " on ", t.device());
    }
    check_op(op, users[0].scalar_type());
  } catch (...) {
    return dupstr("all_reduce: " + current_message());
  }
  auto buf = std::make_shared<at::Tensor>();
  auto copy_back = std::make_shared<bool>(false);
  std::shared_ptr<PG> g;
  try {
    g = P(h);
  } catch (...) {
    return dupstr(current_message());
  }
  bool div = divide_after(*g, op);
  int size = g->size;
  return issue(
      h, "all_reduce", timeout_ms,
      [&](PG& pg, ms t) {
        if (users.size() == 1) {
          Staged s = stage(pg, users[0], true);
          *buf = s.comm;
          *copy_back = s.copy_back;
        } else {
          // one bucket: the tensors flattened and concatenated (as DDP's reducer does)
          std::vector<at::Tensor> flat;
          flat.reserve(users.size());
          for (const auto& u : users) flat.push_back(u.reshape({-1}));
          at::Tensor cat = at::cat(flat);
          *buf = stage(pg, cat, true).comm;
          *copy_back = true;
        }
        c10d::AllreduceOptions o;
        o.reduceOp = reduce_op(pg, op);
        o.timeout = t;
        std::vector<at::Tensor> v{*buf};
        return pg.pg->allreduce(v, o);
      },
      [users, buf, copy_back, div, size]() {
        at::NoGradGuard ng;
        if (div) buf->div_(size);
        if (!*copy_back) return;
        if (users.size() == 1) {
          users[0].copy_(buf->view(users[0].sizes()));
          return;
        }
        int64_t off = 0;
        for (const auto& u : users) {
          int64_t k = u.numel();
          u.copy_(buf->narrow(0, off, k).view(u.sizes()));
          off += k;
        }
      },
      out);
}

const char* bt_pg_broadcast(bt_pg h, bt_tensor th, int root, int64_t timeout_ms, bt_work* out) {
  at::Tensor user;
  try {
    user = T(th);
  } catch (...) {
    return dupstr("broadcast: " + current_message());
  }
  auto st = std::make_shared<Staged>();
  return issue(
      h, "broadcast", timeout_ms,
      [&](PG& pg, ms t) {
        TORCH_CHECK(root >= 0 && root < pg.size, "root rank ", root, " is outside world size ", pg.size);
        *st = stage(pg, user, false);
        c10d::BroadcastOptions o;
        o.rootRank = root;
        o.timeout = t;
        std::vector<at::Tensor> v{st->comm};
        return pg.pg->broadcast(v, o);
      },
      [user, st]() mutable {
        at::NoGradGuard ng;
        if (st->copy_back) user.copy_(st->comm.view(user.sizes()));
      },
      out);
}

const char* bt_pg_allgather(bt_pg h, bt_tensor inh, const bt_tensor* outs, int n, int64_t timeout_ms,
                            bt_work* out) {
  at::Tensor in;
  std::vector<at::Tensor> users;
  try {
    in = T(inh);
    users = tensors(outs, n);
    for (const auto& u : users) {
      TORCH_CHECK(u.numel() == in.numel() && u.scalar_type() == in.scalar_type(),
                  "each output must have the input's size and dtype: ", in.sizes(), " ", in.scalar_type(),
                  ", got ", u.sizes(), " ", u.scalar_type());
    }
  } catch (...) {
    return dupstr("all_gather: " + current_message());
  }
  auto staged = std::make_shared<std::vector<Staged>>();
  return issue(
      h, "all_gather", timeout_ms,
      [&](PG& pg, ms t) {
        TORCH_CHECK(static_cast<int>(users.size()) == pg.size, "all_gather needs ", pg.size,
                    " output tensors (the world size), got ", users.size());
        at::Tensor cin = stage(pg, in, false).comm;
        std::vector<at::Tensor> couts;
        for (const auto& u : users) {
          staged->push_back(stage(pg, u, false));
          // c10d wants outputs shaped like the input: view the staged (contiguous) output that way
          at::Tensor o = staged->back().comm;
          couts.push_back(o.sizes() == cin.sizes() ? o : o.view(cin.sizes()));
        }
        c10d::AllgatherOptions o;
        o.timeout = t;
        std::vector<std::vector<at::Tensor>> ov{couts};
        std::vector<at::Tensor> iv{cin};
        return pg.pg->allgather(ov, iv, o);
      },
      [users, staged]() mutable {
        at::NoGradGuard ng;
        for (size_t i = 0; i < users.size(); i++) {
          if ((*staged)[i].copy_back) users[i].copy_((*staged)[i].comm.view(users[i].sizes()));
        }
      },
      out);
}

const char* bt_pg_allgather_flat(bt_pg h, bt_tensor inh, bt_tensor flath, int64_t timeout_ms, bt_work* out) {
  at::Tensor in, flat;
  try {
    in = T(inh);
    flat = T(flath);
    TORCH_CHECK(flat.scalar_type() == in.scalar_type(), "output dtype ", flat.scalar_type(), " differs from input's ",
                in.scalar_type());
  } catch (...) {
    return dupstr("all_gather: " + current_message());
  }
  auto st = std::make_shared<Staged>();
  return issue(
      h, "all_gather", timeout_ms,
      [&](PG& pg, ms t) {
        int64_t k = in.numel();
        TORCH_CHECK(flat.numel() == k * pg.size, "the output needs ", k * pg.size, " elements (world size ", pg.size,
                    " x ", k, "), got ", flat.numel());
        at::Tensor cin = stage(pg, in, false).comm;
        *st = stage(pg, flat, false);
        at::Tensor cflat = st->comm.view({-1});
        c10d::AllgatherOptions o;
        o.timeout = t;
        if (pg.backend == BTD_NCCL) {
          at::Tensor cin1 = cin.view({-1});
          return pg.pg->_allgather_base(cflat, cin1, o);
        }
        // Gloo: the list form into views of the flat output (no extra copy)
        std::vector<at::Tensor> couts;
        for (int r = 0; r < pg.size; r++) couts.push_back(cflat.narrow(0, r * k, k).view(cin.sizes()));
        std::vector<std::vector<at::Tensor>> ov{couts};
        std::vector<at::Tensor> iv{cin};
        return pg.pg->allgather(ov, iv, o);
      },
      [flat, st]() mutable {
        at::NoGradGuard ng;
        if (st->copy_back) flat.copy_(st->comm.view(flat.sizes()));
      },
      out);
}

const char* bt_pg_reduce_scatter(bt_pg h, bt_tensor inh, bt_tensor outh, int op, int64_t timeout_ms, bt_work* w) {
  at::Tensor in, user;
  try {
    in = T(inh);
    user = T(outh);
    TORCH_CHECK(in.scalar_type() == user.scalar_type(), "output dtype ", user.scalar_type(), " differs from input's ",
                in.scalar_type());
    check_op(op, in.scalar_type());
  } catch (...) {
    return dupstr("reduce_scatter: " + current_message());
  }
  auto buf = std::make_shared<at::Tensor>();   // the reduced data: the output, or the whole all-reduced input
  auto slice = std::make_shared<bool>(false);  // buf is the whole input (all-reduce fallback)
  auto st = std::make_shared<Staged>();
  std::shared_ptr<PG> g;
  try {
    g = P(h);
  } catch (...) {
    return dupstr(current_message());
  }
  bool div = divide_after(*g, op);
  int size = g->size, rank = g->rank;
  return issue(
      h, "reduce_scatter", timeout_ms,
      [&](PG& pg, ms t) {
        int64_t k = user.numel();
        TORCH_CHECK(in.numel() == k * pg.size, "the input needs ", k * pg.size, " elements (world size ", pg.size,
                    " x ", k, "), got ", in.numel());
        c10d::ReduceScatterOptions o;
        o.reduceOp = reduce_op(pg, op);
        o.timeout = t;
        int native;
        {
          std::lock_guard<std::mutex> lk(pg.mu);
          native = pg.rs_native;
        }
        if (native != 0) {
          // the input is only read: a contiguous (float32 for bf16 on Gloo) view or copy
          at::Tensor cin = stage(pg, in, true).comm.view({-1});
          *st = stage(pg, user, true);
          at::Tensor cout = st->comm.view({-1});
          try {
            auto work = pg.pg->_reduce_scatter_base(cout, cin, o);
            std::lock_guard<std::mutex> lk(pg.mu);
            pg.rs_native = 1;
            *buf = st->comm;
            return work;
          } catch (const std::exception& e) {
            // Gloo before 2.x: "ProcessGroupGloo does not support _reduce_scatter_base",
            // thrown before anything is sent. Anything else is a real failure.
            std::string m = e.what();
            if (m.find("does not support") == std::string::npos || pg.backend != BTD_GLOO) throw;
            std::lock_guard<std::mutex> lk(pg.mu);
            pg.rs_native = 0;
          }
        }
        // all-reduce a copy of the whole input; keep this rank's chunk (as PyTorch's
        // functional collectives do for Gloo)
        *buf = stage(pg, in, true).comm;
        if (buf->is_same(in)) *buf = in.clone();
        *slice = true;
        c10d::AllreduceOptions ao;
        ao.reduceOp = o.reduceOp;
        ao.timeout = t;
        std::vector<at::Tensor> v{*buf};
        return pg.pg->allreduce(v, ao);
      },
      [user, buf, slice, st, div, size, rank]() mutable {
        at::NoGradGuard ng;
        if (*slice) {
          int64_t k = user.numel();
          at::Tensor mine = buf->view({-1}).narrow(0, rank * k, k);
          if (div) mine.div_(size);
          user.copy_(mine.view(user.sizes()));
          return;
        }
        if (div) buf->div_(size);
        if (st->copy_back) user.copy_(buf->view(user.sizes()));
      },
      w);
}

const char* bt_pg_barrier(bt_pg h, int64_t timeout_ms, bt_work* out) {
  return issue(
      h, "barrier", timeout_ms,
      [&](PG& pg, ms t) {
        c10d::BarrierOptions o;
        o.timeout = t;
        if (pg.backend == BTD_NCCL) o.device_ids = {static_cast<int64_t>(pg.device)};
        return pg.pg->barrier(o);
      },
      nullptr, out);
}

const char* bt_pg_info(bt_pg h, int* rs_native, char* broken, int64_t n) {
  BT_TRY({
    auto& g = P(h);
    std::lock_guard<std::mutex> lk(g->mu);
    *rs_native = g->rs_native;
    if (broken != nullptr && n > 0) std::snprintf(broken, static_cast<size_t>(n), "%s", g->broken.c_str());
  })
}

const char* bt_work_wait(bt_work h, int64_t timeout_ms) {
  auto* w = static_cast<Work*>(h);
  if (w == nullptr) return dupstr("nil work handle");
  if (w->done) return nullptr;
  if (w->failed) return dupstr(w->op + ": waited on again after it failed");
  ms t = pick(timeout_ms, w->timeout);
  auto t0 = Clock::now();
  try {
    if (w->w) {
      bool ok = w->w->wait(t);
      TORCH_CHECK(ok, "the operation was aborted");
    }
    if (w->finish) w->finish();
    w->done = true;
    std::lock_guard<std::mutex> lk(w->pg->mu);
    w->pg->pending--;
    return nullptr;
  } catch (...) {
    std::string why = current_message();
    auto took = std::chrono::duration_cast<ms>(Clock::now() - t0);
    bool timed_out = w->w && !w->w->isCompleted() && took >= t - ms(50);
    std::string msg = timed_out ? w->op + ": timed out after " + seconds(t) + " (" + why + ")" : w->op + ": " + why;
    w->failed = true;
    mark_broken(*w->pg, msg);
    return dupstr(msg);
  }
}

const char* bt_work_free(bt_work h) { BT_TRY(delete static_cast<Work*>(h)) }

}  // extern "C"
