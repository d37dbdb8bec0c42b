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
void set_pool_spin_us(int64_t us);
int64_t pool_spin_us();

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
};
PoolStats pool_stats();

}  // namespace tritune
