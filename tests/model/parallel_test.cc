// ThreadPool on the kernels' pool: every item exactly once, chunk bounds as documented, exceptions
// from any chunk reach the caller.
#include "model/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "kernels/variant.h"

namespace tritune {
namespace {

TEST(ThreadPool, EveryItemOnceInDeclaredChunks) {
  set_num_threads(2);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 100, 1001}) {
      for (int64_t grain : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> seen((size_t)n);
        std::atomic<int64_t> chunks{0};
        pool.parallel_for(
            n,
            [&](int64_t b, int64_t e, int c) {
              const int64_t g = grain > 0 ? grain : (n + threads - 1) / threads;
              EXPECT_EQ(b, (int64_t)c * g);
              EXPECT_EQ(e, std::min(n, b + g));
              for (int64_t i = b; i < e; ++i) seen[(size_t)i]++;
              chunks++;
            },
            grain);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[(size_t)i].load(), 1) << n << " " << i;
        EXPECT_GE(chunks.load(), 1);
      }
    }
  }
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  set_num_threads(2);
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(
                   100,
                   [](int64_t b, int64_t, int) {
                     if (b >= 50) throw std::runtime_error("chunk failed");
                   },
                   10),
               std::runtime_error);
  int calls = 0;
  pool.parallel_for(0, [&](int64_t, int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_THROW(ThreadPool(0), std::exception);
}

}  // namespace
}  // namespace tritune
