// The pool behind halide_do_par_for (kernels/thread_pool.h): every index runs exactly once, the
// first failing task's status comes back, nested and concurrent loops run correctly, workers
// take part and wake from sleep, and the Halide kernels give the same results on it.
#include "kernels/thread_pool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "HalideRuntime.h"
#include "kernels/variant.h"

namespace tritune {
namespace {

struct Counts {
  std::vector<std::atomic<int>> hits;
  int min = 0;
  int fail_at = -1;  // task index that returns fail_code
  int fail_code = 0;
  int64_t spin_ns = 0;  // work per task
  explicit Counts(int n) : hits((size_t)n) {}
};

void spin_for(int64_t ns) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  while (std::chrono::steady_clock::now() < end) {
  }
}

int count_task(void*, int i, uint8_t* closure) {
  auto* c = reinterpret_cast<Counts*>(closure);
  if (c->spin_ns > 0) spin_for(c->spin_ns);
  c->hits[(size_t)(i - c->min)].fetch_add(1);
  return i == c->fail_at ? c->fail_code : 0;
}

// Runs a loop of `size` tasks from `min` and checks each index ran exactly once.
void expect_each_once(int min, int size, int64_t spin_ns = 0) {
  Counts c(size);
  c.min = min;
  c.spin_ns = spin_ns;
  ASSERT_EQ(halide_do_par_for(nullptr, count_task, min, size, reinterpret_cast<uint8_t*>(&c)), 0);
  for (int i = 0; i < size; ++i) {
    ASSERT_EQ(c.hits[(size_t)i].load(), 1) << "index " << min + i << " of " << size;
  }
}

class ThreadPoolTest : public ::testing::Test {
 protected:
  void TearDown() override {
    set_pool_spin_us(2000);
    set_pool_schedule(PoolSchedule::kRanges);
    set_num_threads(2);
  }
};

TEST_F(ThreadPoolTest, EveryIndexRunsOnceForRandomLoops) {
  std::mt19937 rng(7);
  for (PoolSchedule sched : {PoolSchedule::kRanges, PoolSchedule::kGuided}) {
    set_pool_schedule(sched);
    for (int threads : {1, 2, 3, 4}) {
      set_num_threads(threads);
      EXPECT_EQ(num_threads(), threads);
      for (int rep = 0; rep < 200; ++rep) {
        const int size = (int)(rng() % 300);
        const int min = (int)(rng() % 2000) - 1000;
        expect_each_once(min, size);
      }
      expect_each_once(0, 1);
      expect_each_once(5, 0);
      // Ranges: shares of a few tasks with one slow task (the others steal around it); more
      // tasks than a share word holds (guided claims instead).
      expect_each_once(0, threads + 1, 20000);
      expect_each_once(-3, 70000);
    }
  }
}

TEST_F(ThreadPoolTest, WorkersSleepInsteadOfSpinningWhenThreadsOutnumberTheCpus) {
  ASSERT_GE(available_cpus(), 1);
  set_pool_spin_us(1500);
  set_num_threads(available_cpus());
  EXPECT_EQ(pool_spin_us(), 1500);
  set_num_threads(available_cpus() + 1);
  EXPECT_EQ(pool_spin_us(), 0);
  for (int rep = 0; rep < 5; ++rep) expect_each_once(0, 64, 20000);  // still every task once
  set_num_threads(available_cpus());
  EXPECT_EQ(pool_spin_us(), 1500);
}

TEST_F(ThreadPoolTest, WorkersTakePart) {
  set_num_threads(2);
  const PoolStats before = pool_stats();
  // 64 tasks of 50 us: a worker that spins or wakes within a few tasks takes some of them.
  for (int rep = 0; rep < 10; ++rep) expect_each_once(0, 64, 50000);
  const PoolStats after = pool_stats();
  EXPECT_GE(after.loops - before.loops, 5);
  EXPECT_GT(after.worker_tasks - before.worker_tasks, 0);
}

// Guided claims: a thread takes a run of consecutive tasks, 1/(2 x threads) of those left, so
// a loop of 100 tasks splits into at most ~20 same-thread runs (claims of 25, 18, 14, ... then
// single tasks), where one task per claim would alternate threads about every task.
struct Owners {
  std::vector<std::atomic<int>> tid;
  explicit Owners(int n) : tid((size_t)n) {}
};
thread_local int this_thread_tag = 0;
std::atomic<int> next_tag{1};
int owner_task(void*, int i, uint8_t* closure) {
  if (this_thread_tag == 0) this_thread_tag = next_tag.fetch_add(1);
  spin_for(20000);
  reinterpret_cast<Owners*>(closure)->tid[(size_t)i].store(this_thread_tag);
  return 0;
}

// Runs loops of 100 tasks of 20 us on 2 threads until 3 of them had both threads take part (a
// loaded machine can keep the worker off its CPU for a whole 2 ms loop; up to 50 tries), and
// returns the most same-thread runs one of those split into. At least one must have both threads,
// else the run count proves nothing.
int most_runs_of_100_tasks() {
  set_num_threads(2);
  expect_each_once(0, 16, 20000);  // workers up and spinning
  int most_runs = 0, shared = 0;
  for (int rep = 0; rep < 50 && shared < 3; ++rep) {
    Owners o(100);
    EXPECT_EQ(halide_do_par_for(nullptr, owner_task, 0, 100, reinterpret_cast<uint8_t*>(&o)), 0);
    int runs = 1;
    std::vector<int> tags;
    for (int i = 0; i < 100; ++i) {
      const int t = o.tid[(size_t)i].load();
      EXPECT_NE(t, 0) << "task " << i << " did not run";
      if (i > 0 && t != o.tid[(size_t)i - 1].load()) ++runs;
      if (std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);
    }
    if (tags.size() < 2) continue;
    ++shared;
    most_runs = std::max(most_runs, runs);
  }
  EXPECT_GE(shared, 1) << "the worker never took part";
  return most_runs;
}

TEST_F(ThreadPoolTest, GuidedClaimsAreRunsOfConsecutiveTasks) {
  set_pool_schedule(PoolSchedule::kGuided);
  EXPECT_LE(most_runs_of_100_tasks(), 24);
}

// Ranges: each thread runs its half front to back and steals from the back of the other's, so
// a loop is at most 4 runs (per half: the owner's run from the front, the thief's from the back),
// however the threads are delayed (guided claims give 10 or more).
TEST_F(ThreadPoolTest, RangesAreOneShareAndAStolenTailPerThread) {
  set_pool_schedule(PoolSchedule::kRanges);
  EXPECT_LE(most_runs_of_100_tasks(), 4);
}

struct Lopsided {
  std::atomic<int> tag[2];
};
// Task 0 works 4 ms, task 1 returns at once: each thread takes one (its share), so the one with
// task 1 waits about 4 ms at the loop's end.
int lopsided_task(void*, int i, uint8_t* closure) {
  if (this_thread_tag == 0) this_thread_tag = next_tag.fetch_add(1);
  if (i == 0) spin_for(4000000);
  reinterpret_cast<Lopsided*>(closure)->tag[i].store(this_thread_tag);
  return 0;
}

// PoolStats::tail_idle_ns counts the wait of the thread that finished first: never more than
// the loop's wall time (one other thread), and about the lopsided task's 4 ms less the other
// thread's start delay; loops run on one thread (a late worker) add nothing. A busy machine can
// delay the worker by a scheduler tick, so the 2 ms floor holds for the best of the runs.
TEST_F(ThreadPoolTest, TailIdleIsTheWaitForTheSlowestThread) {
  set_num_threads(2);
  set_pool_schedule(PoolSchedule::kRanges);
  expect_each_once(0, 16, 20000);  // workers up and spinning
  int both = 0;
  int64_t most = 0;
  for (int rep = 0; rep < 10; ++rep) {
    Lopsided l;
    l.tag[0] = l.tag[1] = 0;
    const PoolStats before = pool_stats();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(halide_do_par_for(nullptr, lopsided_task, 0, 2, reinterpret_cast<uint8_t*>(&l)), 0);
    const int64_t wall =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    const int64_t tail = pool_stats().tail_idle_ns - before.tail_idle_ns;
    if (l.tag[0].load() == l.tag[1].load()) {
      EXPECT_EQ(tail, 0) << "one thread ran both tasks";
      continue;
    }
    ++both;
    most = std::max(most, tail);
    EXPECT_GE(tail, 0) << "rep " << rep;
    EXPECT_LE(tail, wall) << "rep " << rep;
  }
  ASSERT_GT(both, 0) << "the worker never took part";
  EXPECT_GE(most, 2000000);
  // Serial loops (one thread) count no tail.
  set_num_threads(1);
  const int64_t before = pool_stats().tail_idle_ns;
  expect_each_once(0, 8, 1000);
  EXPECT_EQ(pool_stats().tail_idle_ns, before);
}

// pool_prefetch_next: a worker waiting for the next loop prefetches the start of its share of
// the named bytes (worker w of T: from bytes * w / T on), at most pool_idle_prefetch_bytes().
TEST_F(ThreadPoolTest, IdleWorkersPrefetchTheStartOfTheirShare) {
  set_num_threads(2);
  set_pool_schedule(PoolSchedule::kRanges);
  const int64_t cap0 = pool_idle_prefetch_bytes();
  std::vector<uint8_t> buf(size_t(1) << 20, 1);
  set_pool_spin_us(1000000);  // the worker spins through the waits below
  // Whether the worker, given time, prefetches exactly `want` bytes for one hint (a loaded
  // machine may keep it off its core for a while: a few attempts).
  auto prefetched = [&](const void* p, int64_t bytes, int64_t runs, int64_t stride, int64_t cap,
                        int64_t want) {
    set_pool_idle_prefetch_bytes(cap);
    std::string seen;
    for (int attempt = 0; attempt < 20; ++attempt) {
      expect_each_once(0, 4);  // the worker is up and spinning
      pool_prefetch_next(nullptr, 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // done with the last hint
      const int64_t before = pool_stats().idle_prefetch_bytes;
      pool_prefetch_next(p, bytes, runs, stride);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const int64_t got = pool_stats().idle_prefetch_bytes - before;
      if (got == want) return std::string("ok");
      seen += std::to_string(got) + " ";
    }
    return seen;
  };
  // The worker's half of 1 MiB is 512 KiB; the cap stops it at 256 KiB.
  EXPECT_EQ(prefetched(buf.data(), 1 << 20, 1, 0, 256 << 10, 256 << 10), "ok");
  EXPECT_EQ(prefetched(buf.data(), 1 << 20, 1, 0, 4 << 20, 512 << 10), "ok");
  // Two runs of 512 KiB: the second half of each, 256 KiB each.
  EXPECT_EQ(prefetched(buf.data(), 1 << 20, 2, 512 << 10, 4 << 20, 512 << 10), "ok");
  // Off, and a hint of nothing.
  EXPECT_EQ(prefetched(buf.data(), 1 << 20, 1, 0, 0, 0), "ok");
  EXPECT_EQ(prefetched(nullptr, 1 << 20, 1, 0, 256 << 10, 0), "ok");
  // Prefetches never fault: a hint at unmapped or freed memory costs nothing but bandwidth.
  EXPECT_EQ(
      prefetched(reinterpret_cast<const void*>(uintptr_t(64)), 1 << 20, 1, 0, 64 << 10, 64 << 10),
      "ok");
  {
    std::vector<uint8_t> gone(size_t(8) << 20, 1);
    pool_prefetch_next(gone.data(), (int64_t)gone.size());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  expect_each_once(0, 64);
  pool_prefetch_next(nullptr, 0);
  set_pool_idle_prefetch_bytes(cap0);
}

// pool_prefetch_at_tail: the next loop's calling thread prefetches the spans before its last
// task; more spans than kMaxTailSpans, empty and null ones, and loops of one task (inline,
// which leave the list for the next) change nothing about what runs.
TEST_F(ThreadPoolTest, TailPrefetchListsLeaveLoopsAlone) {
  set_num_threads(2);
  std::vector<float> a(4096, 1.0f), b(100, 2.0f);
  const PrefetchSpan spans[] = {{a.data(), 16384}, {nullptr, 64},  {b.data(), 0},
                                {b.data(), 400},   {a.data(), 64}, {a.data() + 100, 8},
                                {b.data(), 4},     {a.data(), 1}};
  for (int n : {0, 1, 3, 8}) {
    pool_prefetch_at_tail(spans, n);
    expect_each_once(0, 1);
    expect_each_once(0, 37, 1000);
    pool_prefetch_at_tail(spans, n);
    expect_each_once(5, 1000);
  }
  set_num_threads(1);
  pool_prefetch_at_tail(spans, 8);
  expect_each_once(0, 9);
}

TEST_F(ThreadPoolTest, SleepingWorkersWakeUp) {
  set_num_threads(3);
  set_pool_spin_us(0);  // sleep at once
  expect_each_once(0, 32, 20000);
  const PoolStats before = pool_stats();
  for (int rep = 0; rep < 5; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    expect_each_once(0, 64, 30000);
  }
  const PoolStats after = pool_stats();
  EXPECT_GT(after.sleeps - before.sleeps, 0);
  EXPECT_GT(after.worker_tasks - before.worker_tasks, 0);
}

TEST_F(ThreadPoolTest, FirstFailingStatusIsReturned) {
  set_num_threads(2);
  for (int fail_at : {0, 17, 99}) {
    Counts c(100);
    c.fail_at = fail_at;
    c.fail_code = -7;
    EXPECT_EQ(halide_do_par_for(nullptr, count_task, 0, 100, reinterpret_cast<uint8_t*>(&c)), -7);
    // The other tasks still ran, once each.
    for (int i = 0; i < 100; ++i) EXPECT_EQ(c.hits[(size_t)i].load(), 1);
  }
  // The pool is usable after a failure, and a later loop reports success.
  expect_each_once(0, 50);
}

struct Nested {
  std::atomic<int> inner_total{0};
  std::atomic<int> bad{0};
};

int inner_task(void*, int, uint8_t* closure) {
  reinterpret_cast<Nested*>(closure)->inner_total.fetch_add(1);
  return 0;
}

int outer_task(void*, int, uint8_t* closure) {
  auto* n = reinterpret_cast<Nested*>(closure);
  if (halide_do_par_for(nullptr, inner_task, 0, 10, closure) != 0) n->bad.fetch_add(1);
  return 0;
}

TEST_F(ThreadPoolTest, NestedLoopsRunSerially) {
  set_num_threads(2);
  Nested n;
  ASSERT_EQ(halide_do_par_for(nullptr, outer_task, 0, 20, reinterpret_cast<uint8_t*>(&n)), 0);
  EXPECT_EQ(n.inner_total.load(), 200);
  EXPECT_EQ(n.bad.load(), 0);
}

TEST_F(ThreadPoolTest, ConcurrentCallersAllComplete) {
  set_num_threads(2);
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([t, &failures] {
      std::mt19937 rng((unsigned)t);
      for (int rep = 0; rep < 300; ++rep) {
        const int size = 1 + (int)(rng() % 64);
        Counts c(size);
        if (halide_do_par_for(nullptr, count_task, 0, size, reinterpret_cast<uint8_t*>(&c)) != 0)
          failures++;
        for (int i = 0; i < size; ++i)
          if (c.hits[(size_t)i].load() != 1) failures++;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
}

// More threads than the ranges schedule has shares for (256) fall back to guided claims.
TEST_F(ThreadPoolTest, MoreThreadsThanSharesStillRunEveryIndexOnce) {
  set_pool_spin_us(0);  // 299 workers: sleep between loops instead of spinning
  set_pool_threads(300);
  EXPECT_EQ(pool_threads(), 300);
  expect_each_once(0, 1000);
  expect_each_once(7, 3, 1000);
  set_pool_threads(2);
  expect_each_once(0, 100);
}

TEST_F(ThreadPoolTest, ResizingKeepsResults) {
  for (int threads : {4, 1, 2, 3, 2}) {
    set_num_threads(threads);
    expect_each_once(0, 100, 2000);
  }
}

// The tuner measures candidates in forked children (tuner/isolate.cc). A child of a process
// whose pool had started must get working workers of its own, not wait for the parent's.
TEST_F(ThreadPoolTest, AForkedChildStartsItsOwnWorkers) {
  set_num_threads(2);
  // The parent's worker must be past its start before the fork: a thread still starting can
  // hold a lock of the allocator (ASan's does not reset at fork), and the child's first thread
  // would wait for it forever. A worker that has run a task has started.
  const int64_t started = pool_stats().worker_tasks;
  for (int i = 0; i < 500 && pool_stats().worker_tasks == started; ++i) {
    expect_each_once(0, 64, 20000);
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const PoolStats before = pool_stats();
    Counts c(200);  // 10 ms of work: time for a new worker to start and take some
    c.spin_ns = 50000;
    int rc = halide_do_par_for(nullptr, count_task, 0, 200, reinterpret_cast<uint8_t*>(&c));
    for (int i = 0; i < 200; ++i)
      if (c.hits[(size_t)i].load() != 1) rc = 1;
    set_num_threads(3);  // resizing must not join the parent's threads
    Counts d(16);
    rc |= halide_do_par_for(nullptr, count_task, 0, 16, reinterpret_cast<uint8_t*>(&d));
    const bool helped = pool_stats().worker_tasks > before.worker_tasks;
    ::_exit(rc != 0 ? 2 : helped ? 0 : 3);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "2: wrong results in the child, 3: no worker helped";
  expect_each_once(0, 64);  // the parent's pool still works
}

// A share word of schedule kRanges holds a share's front and end in 16 bits each, so 65535 tasks
// is the largest loop it can split: at 65536 the last share's end (65536) does not fit, and the
// loop must take guided claims instead. Run in a child with a deadline: a loop whose tasks were
// lost never returns.
TEST_F(ThreadPoolTest, LoopsAtTheShareWordLimitRunEveryIndexOnce) {
  set_pool_schedule(PoolSchedule::kRanges);
  set_num_threads(2);
  const int64_t started = pool_stats().worker_tasks;  // see AForkedChildStartsItsOwnWorkers
  for (int i = 0; i < 500 && pool_stats().worker_tasks == started; ++i) {
    expect_each_once(0, 64, 20000);
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int rc = 0;
    for (int threads : {2, 3}) {
      set_num_threads(threads);
      for (int size : {65535, 65536}) {
        Counts c(size);
        rc |= halide_do_par_for(nullptr, count_task, 0, size, reinterpret_cast<uint8_t*>(&c));
        for (int i = 0; i < size; ++i)
          if (c.hits[(size_t)i].load() != 1) rc = 1;
      }
    }
    ::_exit(rc != 0 ? 2 : 0);
  }
  int st = 0;
  pid_t got = 0;
  for (int i = 0; i < 500 && (got = ::waitpid(pid, &st, WNOHANG)) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (got == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    FAIL() << "a loop of 65535 or 65536 tasks did not finish within 5 s (tasks lost)";
  }
  ASSERT_EQ(got, pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "2: an index did not run exactly once";
}

TEST_F(ThreadPoolTest, RejectsBadThreadCounts) {
  EXPECT_ANY_THROW(set_num_threads(0));
  EXPECT_ANY_THROW(set_num_threads(-3));
  EXPECT_ANY_THROW(set_num_threads(100000));
}

}  // namespace
}  // namespace tritune
