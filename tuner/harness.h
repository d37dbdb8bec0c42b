// Measures one candidate variant on one task, the real way: compile (JIT, cached on disk by its
// parameters), check against the scalar reference on a small input of the task's K and token
// count (int32 bit-exact for i2_s, a stated tolerance for f32/f16; a wrong result is recorded as
// `correctness` and never chosen), then time it against the task's baseline (the default
// variant): warm-up, then `reps` samples of each, interleaved in ABBA order so drift cancels; a
// sample loops calls for at least `min_sample_s` and divides. Cold mode rotates through enough
// copies of the weights to exceed twice the last-level cache, so every call streams its weights
// from memory as decode does; warm mode reuses one copy. With isolation (the default) every
// measurement runs in a forked child (tuner/isolate.h): crashes and hangs score infinity with
// their reason and the tuner goes on.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kernels/op_counts.h"
#include "tuner/record.h"
#include "tuner/tune.h"

namespace tritune {

// Joules per call of `call` (which runs the kernel once) and where the figure comes from.
struct EnergySample {
  double joules_per_call = 0;
  std::string source;  // "rapl-powercap", ..., "model"
  bool estimated = false;
};
using EnergyFn =
    std::function<EnergySample(const std::function<void()>& call, const OpCounts& work_per_call)>;

struct HarnessOptions {
  int warmup = 3;               // calls of each variant before timing
  int reps = 15;                // samples per variant (interleaved with the baseline)
  double min_sample_s = 0.001;  // short samples: a preempted one is an outlier, not the median
  double timeout_s = 180;       // per candidate, compile included (isolated mode)
  bool isolate = true;          // fork per candidate (crash-safe); false: in-process
  int64_t llc_bytes = 0;        // cold mode rotates > 2x this (0: cpu_info().l3_bytes)
  int64_t max_cold_bytes = int64_t(1) << 30;
  int64_t check_rows = 80;  // rows of the correctness input (K and tokens are the task's)
  Objective objective = Objective::kTime;
  EnergyFn energy;  // required for energy/edp objectives
  int energy_reps = 3;
  uint64_t seed = 42;
};

class KernelHarness {
 public:
  explicit KernelHarness(HarnessOptions o);
  ~KernelHarness();
  // Baseline = the task's default variant; the task's op must match the variant's.
  Measurement measure(const TaskKey& task, const std::string& variant);
  // The same with `reps` samples (confirmation of the best candidates uses more).
  Measurement measure(const TaskKey& task, const std::string& variant, int reps);
  MeasureFn fn(int reps = 0) {
    return [this, reps](const TaskKey& t, const std::string& v) {
      return reps > 0 ? measure(t, v, reps) : measure(t, v);
    };
  }

 private:
  struct Workload;
  Measurement measure_here(const TaskKey& task, const std::string& variant, int reps);
  Workload& workload(const TaskKey& task);
  HarnessOptions o_;
  std::unique_ptr<Workload> w_;
};

// The search space serving a (format, tokens) problem: the format's generator family, op
// gemv for one token, gemm otherwise. Throws Error naming the format.
const SearchSpace& space_for(const std::string& format, int64_t tokens);
// The default (AOT) variant name of that space on an ISA: the baseline of its tasks.
std::string baseline_variant(const SearchSpace& space, Isa isa);

}  // namespace tritune
