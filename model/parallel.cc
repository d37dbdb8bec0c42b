#include "model/parallel.h"

#include <algorithm>
#include <exception>
#include <mutex>

#include "HalideRuntime.h"
#include "kernels/error.h"

namespace tritune {

namespace {

struct Job {
  const std::function<void(int64_t, int64_t, int)>* fn;
  int64_t n, grain;
  std::mutex mu;
  std::exception_ptr error;
};

int run_chunk(void*, int chunk, uint8_t* closure) {
  Job* job = reinterpret_cast<Job*>(closure);
  const int64_t begin = (int64_t)chunk * job->grain;
  const int64_t end = std::min(job->n, begin + job->grain);
  try {
    (*job->fn)(begin, end, chunk);
  } catch (...) {
    std::lock_guard<std::mutex> lock(job->mu);
    if (!job->error) job->error = std::current_exception();
  }
  return 0;  // errors travel in job->error: Halide's runtime must not see an exception
}

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  if (threads < 1 || threads > 1024) {
    throw Error("ThreadPool: threads=" + std::to_string(threads) + " (use 1..1024)");
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  if (grain <= 0) grain = (n + size() - 1) / size();
  const int64_t chunks = (n + grain - 1) / grain;
  if (threads_ == 1 || chunks == 1) {
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain), (int)c);
    return;
  }
  if (chunks > (int64_t)1 << 30) throw Error("ThreadPool: too many chunks");
  Job job;
  job.fn = &fn;
  job.n = n;
  job.grain = grain;
  halide_do_par_for(nullptr, run_chunk, 0, (int)chunks, reinterpret_cast<uint8_t*>(&job));
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace tritune
