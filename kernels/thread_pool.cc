#include "kernels/thread_pool.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "HalideRuntime.h"
#include "kernels/env.h"

namespace tritune {

namespace {

using Clock = std::chrono::steady_clock;

// The loop being run, published as a seqlock on the claim word: the owner marks it busy under
// the new generation, writes the fields, then opens it; a worker reads the fields between two
// reads of the claim word and uses them only if both show that generation, not busy. Tasks are
// claimed on the same word, so a worker holding stale fields can never take a newer loop's task.
constexpr uint64_t kBusy = 0xffffffffu;  // claim index while a loop's fields are written

// Schedule kRanges: participant p's share of the loop, on its own cache line. High 32 bits:
// generation; then the next task (front) and the end (back) of the share, 16 bits each. The
// participant claims from the front, the others steal from the back; all by compare-exchange on
// the word, so a stale worker (another generation) can never claim.
struct alignas(64) Range {
  std::atomic<uint64_t> word{0};
};
constexpr uint64_t share_word(uint64_t g, uint64_t front, uint64_t back) {
  return (g << 32) | (front << 16) | back;
}
constexpr int share_front(uint64_t w) {
  return (int)((w >> 16) & 0xffff);
}
constexpr int share_back(uint64_t w) {
  return (int)(w & 0xffff);
}
constexpr int kMaxParticipants = 256;
constexpr int kMaxRangesTasks = 0xffff;  // larger loops (or more threads) use guided claims

struct Loop {
  std::atomic<halide_task_t> f{nullptr};
  std::atomic<void*> user_context{nullptr};
  std::atomic<uint8_t*> closure{nullptr};
  std::atomic<int> min{0};
  std::atomic<int> size{0};
  // High 32 bits: generation; low 32 bits: next task index. Claimed by compare-exchange so a
  // stale worker never takes an index of a newer loop.
  std::atomic<uint64_t> claim{0};
  std::atomic<int> done{0};          // tasks finished
  std::atomic<int> exit_status{0};   // first non-zero task result
  std::atomic<int> participants{0};  // > 0: schedule kRanges with this many shares
};

// When participant p of a kRanges loop ran its last task, tagged with the loop's generation (a
// participant that ran none leaves its slot stale). On its own cache line, like the shares.
struct alignas(64) Finish {
  std::atomic<uint64_t> gen{0};
  std::atomic<int64_t> ns{0};
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Never destroyed (see pool()): loops may still run during static destruction.
class Pool {
 public:
  // Workers start (or are replaced) by the next loop, not here: a process that sets a thread
  // count and never runs a loop starts no thread.
  void set_threads(int threads) { threads_.store(threads, std::memory_order_relaxed); }
  int threads() const { return threads_.load(std::memory_order_relaxed); }

  int par_for(void* uc, halide_task_t f, int min, int size, uint8_t* closure) {
    if (size <= 0) return 0;
    std::unique_lock<std::mutex> own(owner_, std::defer_lock);
    if (size == 1 || in_task_ || threads() == 1 || !own.try_lock()) {
      serial_loops_.fetch_add(1, std::memory_order_relaxed);
      return run_serial(uc, f, min, size, closure);
    }
    if ((int)workers_->size() != threads() - 1) {
      stop();
      shutdown_ = false;
      // They wait for the generation after the current one: this loop's.
      const uint64_t seen = gen_.load(std::memory_order_relaxed);
      for (int i = 0; i < threads() - 1; ++i)
        workers_->emplace_back([this, seen, i] { work(seen, i + 1); });
      if (threads() > counted_) counted_ = threads();
    }
    loops_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t g = (gen_.load(std::memory_order_relaxed) + 1) & 0xffffffffu;
    // Seqlock write: mark the claim word busy under the new generation (no index can be
    // claimed), write the fields, then open it.
    loop_.claim.store((g << 32) | kBusy, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    loop_.f.store(f, std::memory_order_relaxed);
    loop_.user_context.store(uc, std::memory_order_relaxed);
    loop_.closure.store(closure, std::memory_order_relaxed);
    loop_.min.store(min, std::memory_order_relaxed);
    loop_.size.store(size, std::memory_order_relaxed);
    loop_.done.store(0, std::memory_order_relaxed);
    loop_.exit_status.store(0, std::memory_order_relaxed);
    const int T = threads();
    const bool ranges =
        schedule() == PoolSchedule::kRanges && size <= kMaxRangesTasks && T <= kMaxParticipants;
    loop_.participants.store(ranges ? T : 0, std::memory_order_relaxed);
    if (ranges) {
      for (int p = 0; p < T; ++p) {
        const uint64_t front = (uint64_t)((int64_t)size * p / T);
        const uint64_t back = (uint64_t)((int64_t)size * (p + 1) / T);
        ranges_[p].word.store(share_word(g, front, back), std::memory_order_relaxed);
      }
    }
    loop_.claim.store(g << 32, std::memory_order_release);
    gen_.store(g, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mu_);
      wake_.notify_all();
    }
    in_task_ = true;
    tail_now_ = tail_next_;
    if (idle_prefetch() == 0) tail_now_.n = 0;
    tail_next_ = {};
    if (ranges) {
      run_ranges(g, 0, T, f, uc, closure, min, false);
    } else {
      run_tasks(g, f, uc, closure, min, size, false);
    }
    in_task_ = false;
    // Tasks a worker claimed are still running: wait for them (they are short).
    while (loop_.done.load(std::memory_order_acquire) < size) _mm_pause();
    if (ranges) add_tail_idle(g, T);
    return loop_.exit_status.load(std::memory_order_relaxed);
  }

  // In the child of a fork only the forking thread exists: the workers, the locks they or other
  // threads held and the sleep bookkeeping are the parent's. The child forgets them (the thread
  // objects are leaked, not joined or destroyed) and its next loop starts new workers.
  void after_fork_in_child() {
    workers_ = new std::vector<std::thread>();
    new (&owner_) std::mutex();
    new (&sleep_mu_) std::mutex();
    new (&wake_) std::condition_variable();
    sleepers_.store(0);
    shutdown_.store(false);
    in_task_ = false;
  }

  void set_schedule(PoolSchedule s) { schedule_.store(s, std::memory_order_relaxed); }
  PoolSchedule schedule() const { return schedule_.load(std::memory_order_relaxed); }

  void prefetch_next(const void* p, int64_t bytes, int64_t runs, int64_t run_stride) {
    const uint8_t* const bp = static_cast<const uint8_t*>(p);
    if (p == nullptr) bytes = 0;
    if (runs < 1) runs = 1;
    // The hint in force again (a decode names the next token's first GEMV after the head and
    // once more as the token starts): the workers keep their place in it instead of
    // prefetching its start a second time. Only the owning thread writes the fields.
    if (bp == hint_p_.load(std::memory_order_relaxed) &&
        bytes == hint_bytes_.load(std::memory_order_relaxed) &&
        runs == hint_runs_.load(std::memory_order_relaxed) &&
        run_stride == hint_stride_.load(std::memory_order_relaxed)) {
      return;
    }
    hint_p_.store(bp, std::memory_order_relaxed);
    hint_bytes_.store(bytes, std::memory_order_relaxed);
    hint_runs_.store(runs, std::memory_order_relaxed);
    hint_stride_.store(run_stride, std::memory_order_relaxed);
    hint_seq_.fetch_add(1, std::memory_order_release);
  }
  void set_idle_prefetch(int64_t bytes) {
    idle_prefetch_.store(bytes < 0 ? 0 : bytes, std::memory_order_relaxed);
  }
  int64_t idle_prefetch() const { return idle_prefetch_.load(std::memory_order_relaxed); }

  void set_spin_us(int64_t us) { spin_us_.store(us < 0 ? 0 : us, std::memory_order_relaxed); }
  int64_t spin_us() const {
    return threads() > available_cpus() ? 0 : spin_us_.load(std::memory_order_relaxed);
  }

  PoolStats stats() const {
    PoolStats s;
    s.loops = loops_.load();
    s.serial_loops = serial_loops_.load();
    s.worker_tasks = worker_tasks_.load();
    s.sleeps = sleeps_.load();
    s.tail_idle_ns = tail_idle_ns_.load();
    // Only the slots a worker ever had (profiling reads the stats at every stage).
    const int slots = counted_.load(std::memory_order_relaxed);
    for (int i = 0; i < slots; ++i) s.idle_prefetch_bytes += prefetched_[i].bytes.load();
    return s;
  }

 private:
  static int run_serial(void* uc, halide_task_t f, int min, int size, uint8_t* closure) {
    int status = 0;
    for (int i = 0; i < size; ++i) {
      const int r = f(uc, min + i, closure);
      if (r != 0 && status == 0) status = r;
    }
    return status;
  }

  // Claims and runs tasks of generation g until none are left. Guided self-scheduling: a claim
  // takes a run of consecutive tasks, 1/(2 x threads) of those left (at least one), so each
  // thread streams through long contiguous runs (a GEMV's row tiles: its prefetches run on
  // into the next task's weights) while the last claims are single tasks that even out the
  // threads' finishing times.
  void run_tasks(uint64_t g, halide_task_t f, void* uc, uint8_t* closure, int min, int size,
                 bool worker) {
    const int share = 2 * std::max(1, threads());
    for (;;) {
      uint64_t c = loop_.claim.load(std::memory_order_acquire);
      int first = 0, n = 0;
      for (;;) {
        first = (int)(c & 0xffffffffu);
        if ((c >> 32) != g || first >= size) return;
        n = std::max(1, (size - first) / share);
        if (loop_.claim.compare_exchange_weak(c, c + (uint64_t)n, std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
          break;
        }
      }
      for (int i = first; i < first + n; ++i) run_task(f, uc, min + i, closure);
      finished(n, worker);
    }
  }

  // Runs one task; the loop keeps the first non-zero status.
  void run_task(halide_task_t f, void* uc, int index, uint8_t* closure) {
    const int r = f(uc, index, closure);
    if (r != 0) {
      int zero = 0;
      loop_.exit_status.compare_exchange_strong(zero, r, std::memory_order_relaxed);
    }
  }

  // Counts `n` tasks of the current loop as done (by a worker or the calling thread).
  void finished(int n, bool worker) {
    if (n <= 0) return;
    if (worker) worker_tasks_.fetch_add(n, std::memory_order_relaxed);
    loop_.done.fetch_add(n, std::memory_order_release);
  }

  // The work-sharing tail of kRanges loop g (every participant's finish is visible: the caller
  // saw `done` reach the size, and each participant stores its finish before adding its count):
  // each participant that ran a task waited from its finish to the last one's.
  void add_tail_idle(uint64_t g, int participants) {
    int64_t last = 0, sum = 0;
    int n = 0;
    for (int p = 0; p < participants; ++p) {
      if (finish_[p].gen.load(std::memory_order_relaxed) != g) continue;
      const int64_t t = finish_[p].ns.load(std::memory_order_relaxed);
      last = std::max(last, t);
      sum += t;
      ++n;
    }
    if (n > 1) tail_idle_ns_.fetch_add(n * last - sum, std::memory_order_relaxed);
  }

  // Schedule kRanges: participant `self` runs its own share front to back, then steals single
  // tasks from the back of the largest share left, until every share is empty. Each thread
  // streams one contiguous run of the loop (a GEMV's rows: long runs of weights per core, and
  // its prefetches run on into its own next task); only the last tasks move between threads.
  void run_ranges(uint64_t g, int self, int participants, halide_task_t f, void* uc,
                  uint8_t* closure, int min, bool worker) {
    // Tasks run are counted here and added to `done` once, on leaving: a shared counter
    // bumped per task moves its cache line between the cores at every task. The loop cannot
    // end (nor a newer one start) before this thread adds its count.
    int ran = 0;
    for (;;) {
      int task = self < participants ? take(ranges_[self], g, true) : -1;
      if (!worker && tail_now_.n > 0 && task >= 0) {
        const uint64_t c = ranges_[self].word.load(std::memory_order_relaxed);
        // This thread's last own task: the inputs of the small stages after the loop next.
        if (share_front(c) >= share_back(c)) tail_now_.issue();
      }
      while (task < 0) {
        int victim = -1, most = 0;
        for (int p = 0; p < participants; ++p) {
          const uint64_t c = ranges_[p].word.load(std::memory_order_acquire);
          if ((c >> 32) != g) {  // a newer loop (only possible before this thread ran a task)
            victim = -1;
            break;
          }
          const int left = share_back(c) - share_front(c);
          if (left > most) most = left, victim = p;
        }
        if (victim < 0) break;
        task = take(ranges_[victim], g, false);
      }
      if (task < 0) break;
      run_task(f, uc, min + task, closure);
      ++ran;
    }
    if (ran > 0 && self < participants) {
      finish_[self].ns.store(now_ns(), std::memory_order_relaxed);
      finish_[self].gen.store(g, std::memory_order_relaxed);
    }
    finished(ran, worker);
  }

  // The calling thread's tail-prefetch list (pool_prefetch_at_tail).
  struct TailList {
    PrefetchSpan spans[kMaxTailSpans];
    int n = 0;
    void issue() {
      for (int i = 0; i < n; ++i) {
        const char* p = static_cast<const char*>(spans[i].p);
        const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t(63);
        const uintptr_t end = reinterpret_cast<uintptr_t>(p) + (uintptr_t)spans[i].bytes;
        for (uintptr_t a = first; a < end; a += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
        }
      }
      n = 0;
    }
  };

 public:
  void prefetch_at_tail(const PrefetchSpan* spans, int n) {
    tail_next_.n = 0;
    for (int i = 0; i < n && i < kMaxTailSpans; ++i) {
      if (spans[i].p != nullptr && spans[i].bytes > 0) tail_next_.spans[tail_next_.n++] = spans[i];
    }
  }

 private:
  // Claims the front (or back) task of a share of generation g; -1 when it is empty or stale.
  static int take(Range& r, uint64_t g, bool front) {
    uint64_t c = r.word.load(std::memory_order_acquire);
    for (;;) {
      const int lo = share_front(c), hi = share_back(c);
      if ((c >> 32) != g || lo >= hi) return -1;
      const uint64_t next = front ? c + (uint64_t(1) << 16) : c - 1;
      if (r.word.compare_exchange_weak(c, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return front ? lo : hi - 1;
      }
    }
  }

  // A worker's progress through the current prefetch hint (see pool_prefetch_next).
  struct HintCursor {
    uint64_t seq = 0;
    const uint8_t* base = nullptr;
    int64_t runs = 1, stride = 0, line = 0, lines = 0;
    // Prefetches the next 1 KiB of this worker's share; false when there is nothing to do.
    bool step(Pool& pool, int self) {
      const uint64_t s = pool.hint_seq_.load(std::memory_order_acquire);
      if (s != seq) {
        seq = s;
        line = lines = 0;
        const int T = pool.threads();
        const int64_t bytes = pool.hint_bytes_.load(std::memory_order_relaxed);
        runs = pool.hint_runs_.load(std::memory_order_relaxed);
        stride = pool.hint_stride_.load(std::memory_order_relaxed);
        const int64_t run = bytes / runs, cap = pool.idle_prefetch() / runs;
        if (bytes <= 0 || cap <= 0 || self >= T) return false;
        const int64_t from = run * self / T / 64 * 64, to = run * (self + 1) / T;
        base = pool.hint_p_.load(std::memory_order_relaxed) + from;
        lines = runs * ((std::min(to - from, cap) + 63) / 64);
      }
      if (line >= lines) return false;
      const int64_t first = line;
      for (int i = 0; i < 16 && line < lines; ++i, ++line) {
        const int64_t r = line % runs, off = line / runs * 64;
        _mm_prefetch(reinterpret_cast<const char*>(base + r * stride + off), _MM_HINT_T0);
      }
      // This worker's own counter (its cache line): no traffic between the cores.
      pool.prefetched_[self].bytes.fetch_add(64 * (line - first), std::memory_order_relaxed);
      return true;
    }
  };

  void work(uint64_t seen, int self) {
    in_task_ = true;  // a loop started from a task runs serially
    HintCursor hint;
    for (;;) {
      // Spin for the next loop, then sleep.
      const auto deadline = Clock::now() + std::chrono::microseconds(spin_us());
      uint64_t g = gen_.load(std::memory_order_acquire);
      for (int i = 0; g == seen && !shutdown_.load(std::memory_order_relaxed); ++i) {
        if (!hint.step(*this, self)) _mm_pause();
        if ((i & 63) == 63 && Clock::now() >= deadline) break;
        g = gen_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(sleep_mu_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while ((g = gen_.load(std::memory_order_seq_cst)) == seen &&
               !shutdown_.load(std::memory_order_relaxed)) {
          sleeps_.fetch_add(1, std::memory_order_relaxed);
          wake_.wait(lock);
        }
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      }
      if (shutdown_.load(std::memory_order_relaxed)) return;
      seen = g;
      // Seqlock read of the loop's fields: valid if the claim word shows generation g, not
      // busy, before and after (a newer loop marks it busy before touching the fields).
      const uint64_t c1 = loop_.claim.load(std::memory_order_acquire);
      if ((c1 >> 32) != g || (c1 & 0xffffffffu) == kBusy) continue;
      const halide_task_t f = loop_.f.load(std::memory_order_relaxed);
      void* uc = loop_.user_context.load(std::memory_order_relaxed);
      uint8_t* closure = loop_.closure.load(std::memory_order_relaxed);
      const int min = loop_.min.load(std::memory_order_relaxed);
      const int size = loop_.size.load(std::memory_order_relaxed);
      const int participants = loop_.participants.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if ((loop_.claim.load(std::memory_order_relaxed) >> 32) != g) continue;
      if (participants > 0) {
        run_ranges(g, self, participants, f, uc, closure, min, true);
      } else {
        run_tasks(g, f, uc, closure, min, size, true);
      }
    }
  }

  void stop() {
    if (workers_->empty()) return;
    {
      std::lock_guard<std::mutex> lock(sleep_mu_);
      shutdown_ = true;
      wake_.notify_all();
    }
    for (auto& t : *workers_) t.join();
    workers_->clear();
  }

  std::atomic<int> threads_{initial_threads()};
  std::mutex owner_;  // held by the thread whose loop runs on the pool
  std::vector<std::thread>* workers_ = new std::vector<std::thread>();
  Loop loop_;
  Range ranges_[kMaxParticipants];
  Finish finish_[kMaxParticipants];
  std::atomic<PoolSchedule> schedule_{initial_schedule()};
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> shutdown_{false};
  std::mutex sleep_mu_;
  std::condition_variable wake_;
  std::atomic<int64_t> spin_us_{initial_spin_us()};
  // The idle-prefetch hint (pool_prefetch_next): fields, then the sequence number bumped.
  std::atomic<const uint8_t*> hint_p_{nullptr};
  std::atomic<int64_t> hint_bytes_{0}, hint_runs_{1}, hint_stride_{0};
  std::atomic<uint64_t> hint_seq_{0};
  std::atomic<int64_t> idle_prefetch_{initial_idle_prefetch()};
  struct alignas(64) Prefetched {
    std::atomic<int64_t> bytes{0};
  };
  Prefetched prefetched_[kMaxParticipants];  // per worker: bytes its idle prefetch issued
  std::atomic<int> counted_{0};              // participants the pool ever started workers for
  std::atomic<int64_t> loops_{0}, serial_loops_{0}, worker_tasks_{0}, sleeps_{0}, tail_idle_ns_{0};
  static thread_local bool in_task_;
  // Set by the thread that owns the next loop, read by it alone (as the calling thread).
  static thread_local TailList tail_next_, tail_now_;

  // Halide's default: HL_NUM_THREADS, else the number of CPUs (those the process may run on).
  static int initial_threads() {
    return (int)env_int("HL_NUM_THREADS", std::min(available_cpus(), 256), 1, 256);
  }

  static PoolSchedule initial_schedule() {
    PoolSchedule s = PoolSchedule::kRanges;
    parse_pool_schedule(env_choice("TRITUNE_POOL_SCHEDULE", {"ranges", "guided"}, "ranges"), &s);
    return s;
  }

  static int64_t initial_idle_prefetch() {
    return env_int("TRITUNE_IDLE_PREFETCH_KB", 512, 0, int64_t(1) << 20) << 10;
  }
  static int64_t initial_spin_us() { return env_int("TRITUNE_SPIN_US", 2000, 0, 10000000); }
};

thread_local bool Pool::in_task_ = false;
thread_local Pool::TailList Pool::tail_next_, Pool::tail_now_;

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: loops may run during static destruction
  return *p;
}

int do_par_for(void* uc, halide_task_t f, int min, int size, uint8_t* closure) {
  return pool().par_for(uc, f, min, size, closure);
}

// Every binary that links the kernels runs its loops on this pool (installing it only sets a
// function pointer; the workers start with the first parallel loop).
const bool g_installed = [] {
  halide_set_custom_do_par_for(do_par_for);
  pthread_atfork(nullptr, nullptr, [] { pool().after_fork_in_child(); });
  return true;
}();

}  // namespace

void set_pool_threads(int threads) {
  pool().set_threads(threads < 1 ? 1 : threads);
}
int pool_threads() {
  return pool().threads();
}

int available_cpus() {
  static const int n = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
      return CPU_COUNT(&set);
    }
    const unsigned h = std::thread::hardware_concurrency();
    return h == 0 ? 1 : (int)h;
  }();
  return n;
}

void set_pool_spin_us(int64_t us) {
  pool().set_spin_us(us);
}
int64_t pool_spin_us() {
  return pool().spin_us();
}
void pool_prefetch_next(const void* p, int64_t bytes, int64_t runs, int64_t run_stride) {
  pool().prefetch_next(p, bytes, runs, run_stride);
}
void pool_prefetch_at_tail(const PrefetchSpan* spans, int n) {
  pool().prefetch_at_tail(spans, n);
}
void set_pool_idle_prefetch_bytes(int64_t bytes) {
  pool().set_idle_prefetch(bytes);
}
int64_t pool_idle_prefetch_bytes() {
  return pool().idle_prefetch();
}
void set_pool_schedule(PoolSchedule s) {
  pool().set_schedule(s);
}
PoolSchedule pool_schedule() {
  return pool().schedule();
}
const char* pool_schedule_name(PoolSchedule s) {
  return s == PoolSchedule::kGuided ? "guided" : "ranges";
}
bool parse_pool_schedule(const std::string& name, PoolSchedule* out) {
  for (PoolSchedule s : {PoolSchedule::kRanges, PoolSchedule::kGuided}) {
    if (name == pool_schedule_name(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}
PoolStats pool_stats() {
  return pool().stats();
}

}  // namespace tritune
