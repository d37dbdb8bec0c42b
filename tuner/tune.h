// The tuning driver: for one task (format, op, shape, tokens, threads, cache mode) it enumerates
// the legal points of the generator's search space, lets a strategy pick candidates, measures
// each through an injected MeasureFn (tuner/harness.h in the product, a fake in tests), appends
// every result to the database as it goes, and returns the winner. Records already in the
// database for the task are fed to the strategy first: an interrupted run resumes where it
// stopped and never measures a finished candidate twice. A failing candidate (compile error,
// crash, timeout, wrong result, or an exception from MeasureFn) scores +inf and the search goes
// on.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "generators/space.h"
#include "tuner/database.h"
#include "tuner/record.h"

namespace tritune {

using MeasureFn = std::function<Measurement(const TaskKey& task, const std::string& variant)>;

struct TuneTask {
  TaskKey key;
  const SearchSpace* space = nullptr;
  Isa isa{};
  std::string baseline_variant;  // the default variant (scored 1.0 by definition of the ratio)
};

struct TuneOptions {
  std::string strategy = "model";
  Objective objective = Objective::kTime;
  int64_t max_evals = 0;     // candidates per task, finished ones included (0: no limit)
  double time_budget_s = 0;  // wall time for this task's new measurements (0: no limit)
  uint64_t seed = 1;
  // After the search, re-measure the best `confirm_top` candidates with `confirm` (a measurement
  // with more samples) and pick the winner among those (0 or no confirm: the search's best).
  int confirm_top = 0;
  MeasureFn confirm;
};

struct Progress {
  const TuneTask* task = nullptr;
  size_t done = 0, total = 0;  // evaluations so far / planned (budget or candidates)
  size_t resumed = 0;          // of `done`, taken from the database
  std::string last_variant;
  double last_score = 0;
  std::string best_variant;
  double best_score = 0;  // ratio to the baseline (lower is better)
  double elapsed_s = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct TaskResult {
  TaskKey key;
  size_t candidates = 0;                      // legal points
  size_t evaluated = 0;                       // points with a record after this run
  size_t measured = 0;                        // new measurements in this run
  size_t failed = 0;                          // of evaluated, invalid
  std::string first_failure;                  // "variant: reason" of the first invalid one
  std::string best_variant;                   // empty if nothing valid
  double best_score = 0;                      // objective ratio to the baseline
  double best_value = 0, baseline_value = 0;  // objective of winner and baseline (same run)
  std::string baseline_variant;                // the default the winner was measured against
  double elapsed_s = 0;
  std::vector<double> trace;  // best score after each evaluation (convergence)
};

// Legal points of the task's space for its shape and ISA.
std::vector<Params> task_candidates(const TuneTask& t);

// Runs one task. `existing` are the database's records (any task; this task's are used).
// `db` may be null (dry/simulated runs). Throws only on database I/O errors.
TaskResult tune_task(const TuneTask& t, const TuneOptions& opt, const MeasureFn& measure,
                     const TuningDb* db, const std::vector<Record>& existing,
                     const ProgressFn& progress = nullptr);

// Of two records of one candidate, whether `a` is better evidence than `b` (more samples; on a
// tie the later one, b, wins). Resume, confirmation and winner selection use it.
bool better_evidence(const Record& a, const Record& b);

// Score of a record under an objective: objective(variant) / objective(baseline), +inf if
// invalid or if the objective needs samples the record lacks.
double record_score(const Record& r, Objective o);

}  // namespace tritune
