// Minimal reproduction, outside blockllm-go's code, of why one training step run from Go
// could give different gradients at float32 rounding: libtorch's autograd engine runs
// ready nodes in the order of their sequence numbers (Node::sequence_nr, "nodes
// corresponding to ops executed later are the first to be executed in the backward
// pass"), and those numbers come from a thread_local counter (at::sequence_number). When
// the forward ops of one graph are recorded on several OS threads (as Go does: a
// goroutine moves between OS threads between cgo calls), the numbers no longer follow
// program order; a tensor whose gradient is the sum of three or more contributions then
// gets them summed in another order, and float addition is not associative.
//
// Part 2 shows a second per-thread state: at::set_num_threads changes the calling OS
// thread's OpenMP thread count (and the count of threads that have not run a parallel
// op yet); a thread that already ran one keeps its old count.
//
// Build and run: scripts/determinism/run.sh (it reads build/libtorch.env, as make shim).
#include <torch/torch.h>
#include <ATen/Parallel.h>
#include <ATen/SequenceNumber.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

// a [n] is used by three branches; the gradient of a is g1 + g2 + g3, summed in the order
// the three MulBackward nodes run. Each branch's op is recorded on thread on[i] (0: the
// calling thread, 1: a fresh std::thread).
static at::Tensor grad_of_x(const at::Tensor& x0, const std::vector<at::Tensor>& c, const int on[3],
                            uint64_t* seq) {
  auto x = x0.detach().requires_grad_(true);
  auto a = x.mul(1.0);  // the node whose input gets the three gradients
  std::vector<at::Tensor> b(3);
  for (int i = 0; i < 3; i++) {
    auto op = [&, i] { b[i] = a.mul(c[i]); };
    if (on[i]) {
      std::thread t(op);
      t.join();
    } else {
      op();
    }
    seq[i] = b[i].grad_fn()->sequence_nr();
  }
  auto loss = b[0].sum().add(b[1].sum()).add(b[2].sum());
  loss.backward();
  return x.grad().clone();
}

static bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

int main() {
  at::set_num_threads(1);
  torch::manual_seed(0);
  const int64_t n = 4096;
  auto x = torch::randn({n});
  // branch scales of very different magnitudes make (g1 + g2) + g3 != (g3 + g2) + g1 often
  std::vector<at::Tensor> c = {torch::randn({n}).mul(1e3), torch::randn({n}), torch::randn({n}).mul(1e-3)};

  const int same[3] = {0, 0, 0}, mixed[3] = {0, 0, 1};
  uint64_t s0[3], s1[3], s2[3];
  auto ref = grad_of_x(x, c, same, s0);
  auto again = grad_of_x(x, c, same, s1);
  auto moved = grad_of_x(x, c, mixed, s2);
  int64_t ndiff = moved.ne(ref).sum().item<int64_t>();
  std::printf("part 1: autograd order\n");
  std::printf("  one thread, twice:        sequence numbers %llu %llu %llu / %llu %llu %llu; gradients %s\n",
              (unsigned long long)s0[0], (unsigned long long)s0[1], (unsigned long long)s0[2],
              (unsigned long long)s1[0], (unsigned long long)s1[1], (unsigned long long)s1[2],
              same_bits(ref, again) ? "bit-identical" : "DIFFER");
  std::printf("  third op on a new thread: sequence numbers %llu %llu %llu; gradients %s (%lld of %lld elements, max |diff| %.3g)\n",
              (unsigned long long)s2[0], (unsigned long long)s2[1], (unsigned long long)s2[2],
              same_bits(ref, moved) ? "bit-identical" : "DIFFER", (long long)ndiff, (long long)n,
              moved.sub(ref).abs().max().item<double>());

  // part 1b: the remedy blockllm's shim applies: before recording ops on a thread, advance
  // its counter past the highest number any thread has handed out, so numbers follow
  // program order whatever thread records the op.
  uint64_t hi = at::sequence_number::peek();
  auto x2 = x.detach().requires_grad_(true);
  auto a = x2.mul(1.0);
  std::vector<at::Tensor> b(3);
  for (int i = 0; i < 3; i++) {
    auto op = [&, i] {
      while (at::sequence_number::peek() < hi) at::sequence_number::get_and_increment();
      b[i] = a.mul(c[i]);
      hi = std::max(hi, at::sequence_number::peek());
    };
    if (mixed[i]) {
      std::thread t(op);
      t.join();
    } else {
      op();
    }
  }
  b[0].sum().add(b[1].sum()).add(b[2].sum()).backward();
  std::printf("  same, counters synchronised: gradients %s\n", same_bits(ref, x2.grad()) ? "bit-identical" : "DIFFER");

  // part 2: thread counts are per OS thread
  std::printf("part 2: intra-op thread count\n");
  int before = -1, after = -1;
  std::thread w([&] {
    before = at::get_num_threads();  // this thread initialises its count now (1)
  });
  w.join();
  at::set_num_threads(2);
  std::thread w2([&] { after = at::get_num_threads(); });
  w2.join();
  std::printf("  new thread after set_num_threads(2): %d (the calling thread: %d)\n", after, at::get_num_threads());
  int stale = -1;
  {
    std::mutex mu;
    std::condition_variable cv;
    int phase = 0;
    std::thread t([&] {
      at::get_num_threads();  // initialised with the count of the moment (2)
      std::unique_lock<std::mutex> lk(mu);
      phase = 1;
      cv.notify_all();
      cv.wait(lk, [&] { return phase == 2; });
      stale = at::get_num_threads();
    });
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return phase == 1; });
    }
    at::set_num_threads(1);  // on the main thread
    {
      std::lock_guard<std::mutex> lk(mu);
      phase = 2;
    }
    cv.notify_all();
    t.join();
  }
  std::printf("  thread that ran before set_num_threads(1) elsewhere: %d (the calling thread: %d)\n", stale,
              at::get_num_threads());
  (void)before;
  return same_bits(ref, again) && !same_bits(ref, moved) ? 0 : 1;
}
