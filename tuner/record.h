// One tuning measurement: which variant, on which problem, every sample, and why it is invalid
// if it is. A database line is one Record (tuner/database.h).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "generators/space.h"
#include "kernels/json.h"

namespace tritune {

// Numbers in tuning files: a failed candidate scores +inf, which JSON cannot spell, so
// non-finite numbers are written as null and null reads back as +inf.
json::Value json_number(double v);
json::Value json_numbers(const std::vector<double>& v);
std::vector<double> numbers_of(const json::Value& array);  // throws Error unless numbers/nulls

// What a candidate is scored by (lower is better).
enum class Objective { kTime, kEnergy, kEdp };
const char* objective_name(Objective o);
Objective parse_objective(const std::string& s);  // throws Error listing the names

// Why a candidate is invalid (DESIGN.md: compile, runtime, correctness, timeout) or ok.
namespace status {
constexpr const char* kOk = "ok";
constexpr const char* kCompile = "compile";
constexpr const char* kRuntime = "runtime";
constexpr const char* kCorrectness = "correctness";
constexpr const char* kTimeout = "timeout";
constexpr const char* kCrash = "crash";
}  // namespace status

// The problem a candidate is measured on.
struct TaskKey {
  std::string format;  // registry name ("i2_s")
  std::string family;  // generator family ("i2s")
  std::string op;      // "gemv" / "gemm"
  int64_t n = 0, k = 0, tokens = 1;
  int threads = 1;
  std::string cache = "cold";  // "cold" (weights rotated through > LLC) or "warm"
  std::string str() const;     // "i2_s gemv 2560x2560 t1 x2 cold"
  bool operator==(const TaskKey& o) const { return str() == o.str(); }
};

// What a measurement returns (tuner/harness.h produces it; tests fake it).
struct Measurement {
  std::string status = status::kOk;
  std::string reason;                   // empty when ok
  std::vector<double> time_s;           // seconds per call, one per repetition
  std::vector<double> baseline_time_s;  // the baseline, measured interleaved with time_s
  std::string baseline_variant;
  std::vector<double> energy_j;  // joules per call (may be empty)
  std::vector<double> baseline_energy_j;
  std::string energy_source;  // "rapl-powercap", "model" (estimated), ...
  double compile_s = 0;       // compile (or cache load) time
  bool ok() const { return status == status::kOk; }
};

struct Record {
  TaskKey task;
  std::string variant;
  Params params;
  Measurement m;
  std::string objective = "time";                                   // objective the run optimized
  double value = std::numeric_limits<double>::infinity();           // objective of the variant
  double baseline_value = std::numeric_limits<double>::infinity();  // of the baseline
  std::string strategy;
  double unix_time = 0;

  // Lower is better: the time ratio to the baseline (paired_ratio), +inf when invalid.
  double score() const;
  // Identity for resume: a record with this key means the candidate is finished.
  std::string key() const { return task.str() + " " + variant; }
  json::Value to_json() const;
  static Record from_json(const json::Value& j);  // throws Error naming the missing/bad field
};

double median(std::vector<double> v);  // +inf for an empty vector
// Objective of a candidate relative to its baseline from interleaved samples: the median of the
// per-pair ratios a_i / b_i (pairs measured back to back, so drift and a preempted pair cancel)
// when both have the same count, else median(a) / median(b). +inf if either is missing.
double paired_ratio(const std::vector<double>& a, const std::vector<double>& b);
// Objective of median time/energy; +inf if the objective needs samples that are missing.
double objective_value(Objective o, const std::vector<double>& time_s,
                       const std::vector<double>& energy_j);

}  // namespace tritune
