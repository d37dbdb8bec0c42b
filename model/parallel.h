// The transformer's own parallel loops (attention over heads, the output head over vocabulary
// rows, norms and quantization over tokens, the reference path over tokens). They run through
// halide_do_par_for on the pool the linear-layer kernels use (tritune's, kernels/thread_pool.h):
// one set of worker threads for the whole forward pass, so no two pools compete for the cores
// and the workers a kernel just used are still awake (spinning) for the loop that follows it.
#pragma once
#include <cstdint>
#include <functional>

namespace tritune {

class ThreadPool {
 public:
  // `threads` >= 1: how many parts parallel_for splits a loop into by default. The threads
  // themselves are the kernels' pool's (set_num_threads in kernels/variant.h); with fewer of them
  // the parts run in turn, with the same results.
  explicit ThreadPool(int threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn(begin, end, chunk) over [0, n) in chunks of `grain` items (0: n / size(), so each
  // thread gets one contiguous range, which is what bandwidth-bound loops want); `chunk` is the
  // chunk's index. Blocks until all chunks are done; the first exception thrown by any chunk is
  // rethrown here (the other chunks still run or are skipped, never half-written silently).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t grain = 0);

 private:
  int threads_;
};

}  // namespace tritune
