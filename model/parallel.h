// A small fixed-size thread pool for the transformer's own parallel loops (attention over heads,
// the output head over vocabulary rows, the reference path over tokens). The linear layers do
// not use it: their Halide kernels run on Halide's pool, and the two are never busy at once.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tritune {

class ThreadPool {
 public:
  // `threads` >= 1 workers in total; the calling thread is one of them.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return (int)workers_.size() + 1; }

  // Runs fn(begin, end, worker) over [0, n) in chunks of `grain` items (0: n / size(), so each
  // worker gets one contiguous range, which is what bandwidth-bound loops want). Blocks until
  // all chunks are done; the first exception thrown by any chunk is rethrown here.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t grain = 0);

 private:
  void worker_loop(int id);
  void run_chunks(int id);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
  // The current job.
  const std::function<void(int64_t, int64_t, int)>* fn_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  int64_t next_ = 0;  // next chunk start (guarded by mu_)
  std::exception_ptr error_;
};

}  // namespace tritune
