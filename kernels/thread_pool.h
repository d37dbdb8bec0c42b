// tritune's own implementation of halide_do_par_for: the thread pool every parallel loop runs
// on (the Halide kernels, the transformer's loops, the roofline probes).
//
// Why not Halide's: a decode step is ~250 parallel loops of 10-150 us each with gaps of a few
// microseconds between them (norms, quantization, dequantization on the calling thread).
// Halide's workers go to sleep on a condition variable almost at once, and on a virtual machine
// waking a halted vCPU takes 6-18 us (measured here: a 2-task loop after a 30 us gap started its
// second task 6 us late, after 300 us 13 us late; back to back, the second task ran on the
// calling thread after the first). For that long only one core streams weights.
//
// These workers spin on a generation counter (with pause) for a while after each loop before
// they sleep, so a loop that follows within the spin window starts on every thread at once.
// The calling thread takes tasks too. Tasks are claimed dynamically (see PoolSchedule).
// A loop started from inside a task, or while another thread's loop holds the pool, runs its
// tasks serially on the calling thread: same results, no deadlock.
#pragma once
#include <cstdint>
#include <string>

namespace tritune {

// The pool is Halide's do_par_for from static initialisation on. Its size: `threads` - 1
// workers plus the calling thread (default: HL_NUM_THREADS, else the number of CPUs).
// set_num_threads (kernels/variant.h) sets it.
void set_pool_threads(int threads);
int pool_threads();
// Microseconds a worker spins for the next loop before it sleeps (default 2000; 0: sleep at
// once, Halide's behaviour). Environment TRITUNE_SPIN_US sets the initial value.
// pool_spin_us() is the spin in force: 0 while the pool has more threads than available_cpus(),
// where a spinning worker takes the CPU from a thread with work (4 threads on 2 CPUs, 2B4T:
// tg 19-20 t/s spinning, 30 sleeping).
void set_pool_spin_us(int64_t us);
int64_t pool_spin_us();
// CPUs this process may run on (its affinity mask; the CPU count if that cannot be read), >= 1.
int available_cpus();

// How a loop's tasks are shared out. kRanges (default): each thread owns a contiguous share
// (thread p of T: tasks [size*p/T, size*(p+1)/T)) and runs it front to back; a thread whose
// share is done steals single tasks from the back of the largest share left. kGuided: one shared
// counter, each claim a run of 1/(2 x threads) of the tasks left. Environment
// TRITUNE_POOL_SCHEDULE=guided|ranges sets the initial value. Loops of more than 65535 tasks,
// and pools of more than 256 threads, are always guided.
enum class PoolSchedule { kRanges, kGuided };
void set_pool_schedule(PoolSchedule s);
PoolSchedule pool_schedule();
const char* pool_schedule_name(PoolSchedule s);  // "ranges" | "guided"
// The schedule named `name` (as pool_schedule_name spells it); false if there is none.
bool parse_pool_schedule(const std::string& name, PoolSchedule* out);

// Idle prefetch. A decode step's small stages (norms, quantization, RoPE, dequantization) run on
// the calling thread between the GEMVs while the workers wait, and for that long the memory
// system idles. pool_prefetch_next(p, bytes) names the weights the next parallel loop will
// stream: while it waits for a loop, worker w of T pulls the start of its share of them
// (the bytes from bytes * w / T on, the part a kRanges loop over those bytes in order hands
// it) into its caches with software prefetches, at most pool_idle_prefetch_bytes() of it,
// checking for a new loop every 1 KiB. The loop then finds those lines cached, the worker
// finishes its share early and steals from the calling thread's. `runs` runs of bytes / runs
// bytes, `run_stride` apart, are read in lockstep (a layer whose row tiles are split in parts
// of K). Prefetches never fault: a stale hint costs only bandwidth. nullptr clears it; naming
// the hint already in force again changes nothing (the workers keep their place in it).
void pool_prefetch_next(const void* p, int64_t bytes, int64_t runs = 1, int64_t run_stride = 0);
// Tail prefetch. The small stages after a GEMV read a few cold vectors (the next norm's
// weights, the residual, a RoPE row): the GEMV's weight stream has pushed them out of every
// cache, and one thread reading them back runs at DRAM latency. pool_prefetch_at_tail(spans, n)
// names up to kMaxTailSpans of them to the next parallel loop: the calling thread prefetches
// them when it takes the last task of its own share (kRanges loops; guided ones have no shares
// and skip it), so they arrive while that task streams. Consumed by that loop (loops of one
// task, which run inline, leave it for the next).
struct PrefetchSpan {
  const void* p = nullptr;
  int64_t bytes = 0;
};
constexpr int kMaxTailSpans = 4;
void pool_prefetch_at_tail(const PrefetchSpan* spans, int n);
// The most bytes a worker prefetches per hint (default 512 KiB, half a Zen 4/5 L2); 0 turns
// the idle and the tail prefetch off (A/B runs). Environment TRITUNE_IDLE_PREFETCH_KB sets the
// initial value.
void set_pool_idle_prefetch_bytes(int64_t bytes);
int64_t pool_idle_prefetch_bytes();

// Counters since the pool was installed (tests and profiling).
struct PoolStats {
  int64_t loops = 0;         // parallel loops run on the pool
  int64_t serial_loops = 0;  // loops run serially (nested, contended or one task)
  int64_t worker_tasks = 0;  // tasks run by workers (not the calling thread)
  int64_t sleeps = 0;        // times a worker went to sleep
  // kRanges loops: the work-sharing tail. For each loop, summed over the threads that ran a
  // task, the time from a thread's last task to the loop's last one (threads idle while the
  // slowest finishes: what a coarse task grain costs when one core runs slower).
  int64_t tail_idle_ns = 0;
  int64_t idle_prefetch_bytes = 0;  // bytes workers prefetched while idle (pool_prefetch_next)
};
PoolStats pool_stats();

}  // namespace tritune
