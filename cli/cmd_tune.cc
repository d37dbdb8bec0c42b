// `tritune tune`: search the generators' schedule spaces on this CPU, record every measurement in
// the per-CPU tuning database, print the winners; `--show` prints what the database holds;
// `tritune tune simulate` replays strategies against recorded measurements (convergence study).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/formats.h"
#include "tuner/database.h"
#include "tuner/dispatch_db.h"
#include "tuner/energy_hook.h"
#include "tuner/harness.h"
#include "tuner/shapes.h"
#include "tuner/strategy.h"
#include "tuner/tune.h"

namespace tritune::cli {
namespace {

// Under every table of speedups: what the figure is.
constexpr const char* kSpeedupNote =
    "(speedup: the median of per-sample ratios default/tuned, each pair measured back to back, "
    "so it can differ from the ratio of the two medians; below 1 the default stays in the "
    "dispatch table for that key)";

std::string strategy_help() {
  std::string s = "search strategy:";
  for (const auto& i : strategy_infos()) s += std::string("\n  ") + i.name + ": " + i.summary;
  return s;
}

// Candidates per task when --budget is not given (non-grid strategies): on a Zen 3 VM 20 per
// task tuned the 16 I2_S 2B4T tasks (1 and 2 threads, decode and 128-token prefill) in 7m21s.
constexpr int64_t kDefaultBudget = 24;

// "40" -> 40 candidates per task; "10m", "90s", "1h" -> total wall time; "40,10m" -> both.
void parse_budget(const std::string& b, int64_t* evals, double* seconds) {
  *evals = 0;
  *seconds = 0;
  std::stringstream ss(b);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || v <= 0) {
      throw Error("--budget '" + b + "': expected N, Ns, Nm, Nh or N,Nm");
    }
    const std::string unit(end);
    if (unit.empty())
      *evals = (int64_t)v;
    else if (unit == "s")
      *seconds = v;
    else if (unit == "m")
      *seconds = v * 60;
    else if (unit == "h")
      *seconds = v * 3600;
    else
      throw Error("--budget '" + b + "': unknown unit '" + unit + "' (use s, m or h)");
  }
}

std::string fmt_time(double s) {
  char buf[32];
  if (!std::isfinite(s)) return "-";
  if (s < 1e-3)
    std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  else if (s < 1)
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

// An objective value for tables: a time for `time`, else joules or J*s in 4 significant digits.
std::string fmt_value(Objective o, double v) {
  if (o == Objective::kTime) return fmt_time(v);
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, o == Objective::kEnergy ? "%.4g J" : "%.4g Js", v);
  return buf;
}

// default/tuned from a paired ratio tuned/default; "-" when there is none (a failed measurement).
double speedup_of(double paired) {
  return std::isfinite(paired) && paired > 0 ? 1.0 / paired : NAN;
}

std::string fmt_speedup(double sp) {
  if (!std::isfinite(sp)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fx", sp);
  return buf;
}

void warn_all(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

// The winners of a loaded database (every key, the default kept too), with a warning for each
// line the load skipped and each record select_winners skipped.
std::vector<Winner> winners_of(const DbLoad& load, Objective obj, const std::string& cache) {
  warn_all(load.warnings);
  std::vector<std::string> skipped;
  auto ws = select_winners(load.records, obj, cache, /*drop_no_gain=*/false, &skipped);
  warn_all(skipped);
  return ws;
}

std::string fmt_dur(double s) {
  char buf[32];
  if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

std::string db_dir_of(const Args& a) {
  return a.has("--db-dir") ? a.get("--db-dir") : default_db_dir();
}

json::Value winners_json(const std::vector<Winner>& ws, Objective obj) {
  json::Value arr = json::Value::array();
  for (const auto& w : ws) {
    json::Value j = json::Value::object();
    j.set("family", w.entry.family);
    j.set("op", w.entry.op);
    j.set("n", w.entry.n);
    j.set("k", w.entry.k);
    j.set("token_bucket", w.entry.tokens);
    j.set("threads", w.entry.threads);
    j.set("variant", w.entry.variant);
    j.set("baseline", w.baseline);
    j.set("cache", w.cache);
    j.set("objective", objective_name(obj));
    j.set("value", json_number(w.value));
    j.set("baseline_value", json_number(w.baseline_value));
    j.set("speedup", json_number(w.speedup));
    j.set("valid_candidates", (int64_t)w.evaluated);
    arr.push_back(j);
  }
  return arr;
}

void print_winners(const std::vector<Winner>& ws, Objective obj) {
  std::printf("%-6s %-4s %-11s %6s %3s %-5s %10s %10s %8s %5s  %s\n", "family", "op", "shape",
              "tokens", "thr", "cache", "default", "tuned", "speedup", "evals", "variant");
  for (const auto& w : ws) {
    char shape[32];
    std::snprintf(shape, sizeof shape, "%lldx%lld", (long long)w.entry.n, (long long)w.entry.k);
    std::printf("%-6s %-4s %-11s %6lld %3d %-5s %10s %10s %7.3fx %5zu  %s\n",
                w.entry.family.c_str(), w.entry.op.c_str(), shape, (long long)w.entry.tokens,
                w.entry.threads, w.cache.c_str(), fmt_value(obj, w.baseline_value).c_str(),
                fmt_value(obj, w.value).c_str(), w.speedup, w.evaluated, w.entry.variant.c_str());
  }
}

int show(const Args& a, Objective obj) {
  const std::string dir = db_dir_of(a);
  const Fingerprint fp = current_fingerprint();
  const std::string path = TuningDb::path_in(dir, fp);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    std::printf(
        "no tuning database for this CPU and kernel build in %s (expected %s): every "
        "call runs the default variant. Run 'tritune tune' to create it.\n",
        dir.c_str(), path.c_str());
    return 0;
  }
  const DbLoad load = TuningDb::open_file(path, fp).load();
  const auto ws = winners_of(load, obj, a.get("--cache") == "warm" ? "warm" : "cold");
  if (a.has("--export")) {
    json::Value j = json::Value::object();
    j.set("database", path);
    j.set("fingerprint", fp.to_json());
    j.set("records", (int64_t)load.records.size());
    j.set("winners", winners_json(ws, obj));
    json::Value recs = json::Value::array();
    if (a.has("--export-records")) {
      for (const auto& r : load.records) recs.push_back(r.to_json());
      j.set("all_records", recs);
    }
    write_json_file("--export", a.get("--export"), j);
  }
  std::printf("database %s: %zu records (%zu corrupt lines skipped)\n", path.c_str(),
              load.records.size(), load.warnings.size());
  print_winners(ws, obj);
  std::printf("%s\n", kSpeedupNote);
  return 0;
}

struct TaskSpec {
  TuneTask task;
  std::string space_family;
};

int run_tune(const std::vector<std::string>& argv) {
  Args a("tune",
         "Search the generators' schedule spaces on this CPU and record every measurement in the\n"
         "tuning database of this CPU fingerprint (one JSON-lines file; an interrupted run\n"
         "resumes). Later runs dispatch the winners automatically; TRITUNE_VARIANT=<name> forces\n"
         "a variant for A/B runs.\n\n" +
             strategy_help());
  a.option("--formats", "F[,F..]", "weight formats (registry names)", "i2_s");
  a.option("--shapes", "NxK[,..]|JSON|FILE.json", "problem shapes (N outputs x K inputs)");
  a.option("--model-shapes", "SET[,..]", "named shape sets: 2b4t, 700m, 3b");
  a.option("--tokens", "T[,T..]", "token counts (1 = decode GEMV, more = prefill GEMM)", "1,128");
  a.option("--threads", "N[,N..]", "thread counts", "1");
  a.option("--strategy", "NAME", "grid, random, evolution or model", "model");
  a.option("--objective", "NAME",
           "time, energy or edp (energy without counters: the model, "
           "labelled estimated)",
           "time");
  a.option("--budget", "N|Ns|Nm|Nh|N,Nm",
           "candidates per task and/or total wall time (default: " +
               std::to_string(kDefaultBudget) +
               " per task for random, evolution and model, which tunes the 2B4T shapes in "
               "minutes; the whole space for grid)");
  a.option("--cache", "MODE", "cold (weights streamed from memory), warm or both", "cold");
  a.option("--db-dir", "DIR", "tuning database directory (default: the user cache dir)");
  a.option("--seed", "N", "strategy seed", "1");
  a.option("--confirm", "K",
           "re-measure the best K candidates of each task with 3x the samples and pick the "
           "winner among them (guards against a lucky single measurement)",
           "3");
  a.option("--reps", "N", "timing samples per candidate (each interleaved with the baseline)",
           "15");
  a.option("--min-sample-ms", "MS", "a timing sample loops calls for at least this long", "1");
  a.option("--timeout", "S", "per-candidate limit (compile included)", "180");
  a.option("--export", "FILE", "with --show: write the winners as JSON");
  a.flag("--export-records", "with --export: include every record");
  a.flag("--show", "print the winners recorded in this CPU's database and exit");
  a.flag("--no-isolate", "measure in-process (faster; a crashing candidate kills the tuner)");
  a.flag("--quiet", "no per-candidate progress lines");
  if (!a.parse(argv)) return 0;
  const Objective obj = parse_objective(a.get("--objective"));
  if (a.has("--export") && !a.has("--show")) {
    throw Error("--export writes what --show prints: add --show");
  }
  if (a.has("--export-records") && !a.has("--export")) {
    throw Error("--export-records adds to the --export file: add --show --export FILE");
  }
  if (a.has("--export")) check_output_file("--export", a.get("--export"));
  if (a.has("--show")) return show(a, obj);

  std::vector<std::pair<int64_t, int64_t>> shapes;
  if (a.has("--shapes")) shapes = parse_shapes(a.get("--shapes"));
  if (a.has("--model-shapes")) {
    for (const auto& name : a.get_list("--model-shapes")) {
      for (const auto& s : find_model_shapes(name).shapes) shapes.emplace_back(s.n, s.k);
    }
  }
  if (shapes.empty()) throw Error("give --shapes NxK[,..] or --model-shapes 2b4t");
  {
    std::set<std::pair<int64_t, int64_t>> seen;
    std::vector<std::pair<int64_t, int64_t>> uniq;
    for (const auto& s : shapes) {
      if (seen.insert(s).second) uniq.push_back(s);
    }
    shapes = uniq;
  }
  const auto tokens = a.get_int_list("--tokens");
  const auto threads = a.get_int_list("--threads");
  for (int64_t t : tokens) {
    if (t < 1 || t > kMaxTaskTokens) {
      throw Error("--tokens: " + std::to_string(t) + " not in 1.." +
                  std::to_string(kMaxTaskTokens));
    }
  }
  for (int64_t t : threads) {
    if (t < 1 || t > kMaxTaskThreads) {
      throw Error("--threads: " + std::to_string(t) + " not in 1.." +
                  std::to_string(kMaxTaskThreads));
    }
  }
  const uint64_t seed = seed_arg(a);
  const int64_t reps = a.get_int("--reps"), confirm = a.get_int("--confirm");
  if (reps < 1 || reps > 100000) {
    throw Error("--reps: " + std::to_string(reps) + " not in 1..100000");
  }
  if (confirm < 0 || confirm > 100) {
    throw Error("--confirm: " + std::to_string(confirm) + " not in 0..100");
  }
  std::vector<std::string> caches;
  if (a.get("--cache") == "both")
    caches = {"cold", "warm"};
  else if (a.get("--cache") == "cold" || a.get("--cache") == "warm")
    caches = {a.get("--cache")};
  else
    throw Error("--cache " + a.get("--cache") + ": expected cold, warm or both");
  int64_t max_evals = 0;
  double budget_s = 0;
  parse_budget(a.get("--budget"), &max_evals, &budget_s);
  make_strategy(a.get("--strategy"));  // validates the name before any work
  if (a.get("--budget").empty() && a.get("--strategy") != "grid") max_evals = kDefaultBudget;

  const Isa isa = selected_isa();
  std::vector<TuneTask> tasks;
  for (const auto& fmt : a.get_list("--formats")) {
    const FormatTraits& f = find_format(fmt);
    for (const auto& nk : shapes) require_shape_fits(nk.first, nk.second, {f.name}, 2);
    for (int64_t t : tokens) {
      const SearchSpace& space = space_for(f.name, t);
      for (const auto& nk : shapes) {
        for (int64_t th : threads) {
          for (const auto& c : caches) {
            TuneTask task;
            task.key = {f.name, space.family, space.op, nk.first, nk.second, t, (int)th, c};
            task.space = &space;
            task.isa = isa;
            task.baseline_variant = baseline_variant(space, isa);
            tasks.push_back(task);
          }
        }
      }
    }
  }

  HarnessOptions ho;
  ho.reps = (int)reps;
  ho.min_sample_s = a.get_double("--min-sample-ms") * 1e-3;
  ho.timeout_s = a.get_double("--timeout");
  ho.isolate = !a.has("--no-isolate");
  ho.objective = obj;
  if (obj != Objective::kTime) {
    std::string note;
    ho.energy = make_energy_fn(&note);
    std::printf("energy: %s\n", note.c_str());
  }
  KernelHarness harness(ho);

  const std::string dir = db_dir_of(a);
  const TuningDb db = TuningDb::open_dir(dir, current_fingerprint());
  DbLoad existing = db.load();
  warn_all(existing.warnings);

  std::printf("tuning %zu tasks on %s (ISA %s), strategy %s, objective %s, database %s\n",
              tasks.size(), cpu_info().brand.c_str(), isa_name(isa), a.get("--strategy").c_str(),
              objective_name(obj), db.path().c_str());
  const bool quiet = a.has("--quiet");
  const double t0 =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
               .count() -
           t0;
  };
  std::vector<TaskResult> results;
  for (size_t i = 0; i < tasks.size(); ++i) {
    TuneOptions opt;
    opt.strategy = a.get("--strategy");
    opt.objective = obj;
    opt.max_evals = max_evals;
    opt.seed = seed;
    opt.confirm_top = (int)confirm;
    opt.confirm = harness.fn(3 * ho.reps);
    if (budget_s > 0) {
      const double left = budget_s - elapsed();
      if (left <= 0) {
        std::printf("time budget spent: %zu of %zu tasks not tuned\n", tasks.size() - i,
                    tasks.size());
        break;
      }
      opt.time_budget_s = left / (double)(tasks.size() - i);
    }
    const std::string label = "[" + std::to_string(i + 1) + "/" + std::to_string(tasks.size()) +
                              "] " + tasks[i].key.str();
    auto progress = [&](const Progress& p) {
      if (quiet) return;
      const double task_left = opt.time_budget_s > 0
                                   ? std::max(0.0, opt.time_budget_s - p.elapsed_s)
                                   : p.elapsed_s / (double)std::max<size_t>(1, p.done - p.resumed) *
                                         (double)(p.total - p.done);
      const std::string last = fmt_speedup(speedup_of(p.last_score));
      std::printf("%s  %zu/%zu%s  last %s %s  best %s  %s  task left ~%s\n", label.c_str(), p.done,
                  p.total,
                  p.resumed ? (" (" + std::to_string(p.resumed) + " resumed)").c_str() : "",
                  p.last_variant.c_str(), last == "-" ? "failed" : last.c_str(),
                  fmt_speedup(speedup_of(p.best_score)).c_str(), fmt_dur(elapsed()).c_str(),
                  fmt_dur(task_left).c_str());
      std::fflush(stdout);
    };
    TaskResult r = tune_task(tasks[i], opt, harness.fn(), &db, existing.records, progress);
    std::printf("%s  done: %zu of %zu evaluated (%zu failed), %zu new records; best %s %s\n",
                label.c_str(), r.evaluated, r.candidates, r.failed, r.measured,
                r.best_variant.c_str(), fmt_speedup(speedup_of(r.best_score)).c_str());
    results.push_back(r);
  }

  // Summary: per task, default vs tuned (objective medians of the winner's own run).
  std::printf("\nsummary (%s, %s total)\n", objective_name(obj), fmt_dur(elapsed()).c_str());
  std::printf("%-40s %10s %10s %8s %9s\n", "task", "default", "tuned", "speedup", "evaluated");
  size_t all_failed = 0;
  for (const auto& r : results) {
    const bool every_failed = r.evaluated > 0 && r.failed == r.evaluated;
    all_failed += every_failed;
    const std::string outcome =
        every_failed            ? "(every variant failed; the first, " + r.first_failure + ")"
        : !(r.best_score < 1.0) ? "(default kept: nothing faster)"
        : r.best_variant == r.baseline_variant ? "(default kept: it measured best)"
                                               : r.best_variant;
    std::printf("%-40s %10s %10s %8s %4zu/%-4zu %s\n", r.key.str().c_str(),
                fmt_value(obj, r.baseline_value).c_str(), fmt_value(obj, r.best_value).c_str(),
                fmt_speedup(speedup_of(r.best_score)).c_str(), r.evaluated, r.candidates,
                outcome.c_str());
  }
  std::printf("%s\n", kSpeedupNote);
  if (all_failed > 0) {
    std::fprintf(stderr, "tune: every variant failed in %zu of %zu tasks (first failures above)\n",
                 all_failed, results.size());
    return 1;
  }
  return 0;
}

// Replays strategies on tasks whose whole space is recorded: each evaluation looks the recorded
// measurement up instead of running the kernel, so many seeds cost nothing and every strategy
// sees the same numbers. Writes the best-so-far traces as JSON.
int run_simulate(const std::vector<std::string>& argv) {
  Args a("tune simulate",
         "Replay search strategies against measurements recorded by a grid run (every legal\n"
         "point of a task recorded) and write their convergence traces as JSON for\n"
         "experiments/tuner_convergence.py.");
  a.option("--db-dir", "DIR", "tuning database directory (default: the user cache dir)");
  a.option("--strategies", "S[,S..]", "strategies to replay", "grid,random,evolution,model");
  a.option("--seeds", "N", "seeds per strategy", "20");
  a.option("--budget-fraction", "F", "evaluations per replay as a fraction of the grid", "0.25");
  a.option("--objective", "NAME", "time, energy or edp", "time");
  a.option("--output", "FILE", "JSON output", "tuner_convergence.json");
  if (!a.parse(argv)) return 0;
  check_output_file("--output", a.get("--output"));
  const double fraction = a.get_double("--budget-fraction");
  if (!(fraction > 0) || fraction > 1) {
    throw Error("--budget-fraction " + a.get("--budget-fraction") + ": a fraction, in (0, 1]");
  }
  const int64_t seeds_per_strategy = a.get_int("--seeds");
  if (seeds_per_strategy < 1 || seeds_per_strategy > 10000) {
    throw Error("--seeds " + a.get("--seeds") + ": must be in 1..10000");
  }
  const Objective obj = parse_objective(a.get("--objective"));
  const TuningDb db = TuningDb::open_dir(db_dir_of(a), current_fingerprint());
  const DbLoad load = db.load();
  warn_all(load.warnings);
  std::map<std::string, std::vector<const Record*>> by_task;
  std::map<std::string, TaskKey> keys;
  for (const auto& r : load.records) {
    by_task[r.task.str()].push_back(&r);
    keys[r.task.str()] = r.task;
  }
  const Isa isa = selected_isa();
  json::Value out = json::Value::object();
  out.set("fingerprint", db.fingerprint().to_json());
  out.set("objective", objective_name(obj));
  out.set("budget_fraction", json_number(fraction));
  json::Value tasks = json::Value::array();
  for (const auto& kv : by_task) {
    const TaskKey& key = keys[kv.first];
    const SearchSpace& space = space_for(key.format, key.tokens);
    TuneTask task;
    task.key = key;
    task.space = &space;
    task.isa = isa;
    task.baseline_variant = baseline_variant(space, isa);
    const auto points = task_candidates(task);
    std::map<std::string, const Record*> rec;
    for (const Record* r : kv.second) rec[r->variant] = r;
    size_t covered = 0;
    for (const auto& p : points) covered += rec.count(variant_name(space, p, isa));
    if (covered < points.size()) {
      std::printf("%s: %zu of %zu points recorded, skipped (needs a full grid)\n", kv.first.c_str(),
                  covered, points.size());
      continue;
    }
    double opt_score = INFINITY;
    for (const auto& r : rec) opt_score = std::min(opt_score, record_score(*r.second, obj));
    json::Value tj = json::Value::object();
    tj.set("task", kv.first);
    tj.set("candidates", (int64_t)points.size());
    tj.set("grid_best_score", json_number(opt_score));
    tj.set("threads", key.threads);
    tj.set("tokens", key.tokens);
    tj.set("n", key.n);
    tj.set("k", key.k);
    tj.set("op", key.op);
    json::Value runs = json::Value::array();
    const int64_t budget =
        std::max<int64_t>(1, (int64_t)std::floor(fraction * (double)points.size()));
    for (const auto& sname : a.get_list("--strategies")) {
      const int seeds = sname == "grid" ? 1 : (int)seeds_per_strategy;
      for (int s = 1; s <= seeds; ++s) {
        TuneOptions opt;
        opt.strategy = sname;
        opt.objective = obj;
        opt.seed = (uint64_t)s;
        opt.max_evals = sname == "grid" ? 0 : budget;
        const TaskResult r =
            tune_task(task, opt, [&](const TaskKey&, const std::string& v) { return rec.at(v)->m; },
                      nullptr, {});
        json::Value run = json::Value::object();
        run.set("strategy", sname);
        run.set("seed", s);
        run.set("trace", json_numbers(r.trace));
        runs.push_back(run);
      }
    }
    tj.set("runs", runs);
    tasks.push_back(tj);
    std::printf("%s: replayed (%zu points, grid best %.3fx)\n", kv.first.c_str(), points.size(),
                1.0 / opt_score);
  }
  out.set("tasks", tasks);
  write_json_file("--output", a.get("--output"), out);
  return 0;
}

// Re-measures the recorded winners against the defaults with many interleaved repetitions in one
// run (the benchmark figures), optionally together with a second database's winners for the
// same keys (e.g. model-guided vs grid), so every ratio comes from the same run.
int run_verify(const std::vector<std::string>& argv) {
  Args a("tune verify",
         "Re-measure the winners of this CPU's tuning database against the default variants\n"
         "(baseline interleaved ABBA in the same run, medians) and optionally the winners of a\n"
         "second database for the same keys. Writes JSON for the reports.");
  a.option("--db-dir", "DIR", "tuning database directory (default: the user cache dir)");
  a.option("--compare-db-dir", "DIR", "a second database whose winners are measured too");
  a.option("--compare-label", "NAME", "label of the second database's winners", "compare");
  a.option("--label", "NAME", "label of the first database's winners", "tuned");
  a.option("--reps", "N", "interleaved samples per variant", "41");
  a.option("--min-sample-ms", "MS", "a timing sample loops calls for at least this long", "1");
  a.option("--cache", "MODE", "cold or warm", "cold");
  a.option("--json", "FILE", "write the figures as JSON");
  if (!a.parse(argv)) return 0;
  if (a.has("--json")) check_output_file("--json", a.get("--json"));
  if (a.get("--cache") != "cold" && a.get("--cache") != "warm") {
    throw Error("--cache " + a.get("--cache") + ": expected cold or warm");
  }
  const Fingerprint fp = current_fingerprint();
  auto winners_in = [&](const std::string& dir) {
    const TuningDb db = TuningDb::open_dir(dir, fp);
    return winners_of(db.load(), Objective::kTime, a.get("--cache"));
  };
  const auto mine = winners_in(db_dir_of(a));
  if (mine.empty()) {
    throw Error("the tuning database in " + db_dir_of(a) + " has no " + a.get("--cache") +
                " winners to verify (run tritune tune first)");
  }
  std::vector<Winner> other;
  if (a.has("--compare-db-dir")) other = winners_in(a.get("--compare-db-dir"));
  int failed = 0;  // measurements that did not succeed (the exit status says so)
  HarnessOptions ho;
  ho.reps = (int)a.get_int("--reps");
  ho.min_sample_s = a.get_double("--min-sample-ms") * 1e-3;
  KernelHarness harness(ho);
  json::Value rows = json::Value::array();
  std::printf("%-34s %10s %10s %8s", "key", "default", a.get("--label").c_str(), "speedup");
  if (!other.empty()) std::printf(" %10s %8s", a.get("--compare-label").c_str(), "speedup");
  std::printf("\n");
  for (const Winner& w : mine) {
    const int64_t tokens = w.entry.tokens;
    const SearchSpace& space = space_for(w.entry.family == "i2s" ? "i2_s" : w.entry.family, tokens);
    const TaskKey key{space.format, space.family, space.op,        w.entry.n,
                      w.entry.k,    tokens,       w.entry.threads, a.get("--cache")};
    const Measurement m = harness.measure(key, w.entry.variant);
    json::Value row = json::Value::object();
    row.set("task", key.str());
    row.set("n", key.n);
    row.set("k", key.k);
    row.set("tokens", tokens);
    row.set("threads", key.threads);
    row.set("op", key.op);
    row.set("baseline", m.baseline_variant);
    row.set("variant", w.entry.variant);
    row.set("status", m.status);
    row.set("reason", m.reason);
    row.set("time_s", json_numbers(m.time_s));
    row.set("baseline_time_s", json_numbers(m.baseline_time_s));
    const double sp = speedup_of(paired_ratio(m.time_s, m.baseline_time_s));
    row.set("speedup", json_number(sp));
    row.set("speedup_of_medians", json_number(median(m.baseline_time_s) / median(m.time_s)));
    std::printf("%-34s %10s %10s %8s", key.str().c_str(),
                fmt_time(median(m.baseline_time_s)).c_str(), fmt_time(median(m.time_s)).c_str(),
                fmt_speedup(sp).c_str());
    if (!m.ok()) {
      std::printf("  (%s: %s)", m.status.c_str(), m.reason.c_str());
      ++failed;
    }
    for (const Winner& o : other) {
      if (!(o.entry.family == w.entry.family && o.entry.op == w.entry.op &&
            o.entry.n == w.entry.n && o.entry.k == w.entry.k && o.entry.tokens == tokens &&
            o.entry.threads == w.entry.threads)) {
        continue;
      }
      const Measurement mo = harness.measure(key, o.entry.variant);
      if (!mo.ok()) ++failed;
      const double so = speedup_of(paired_ratio(mo.time_s, mo.baseline_time_s));
      row.set("compare_variant", o.entry.variant);
      row.set("compare_status", mo.status);
      row.set("compare_time_s", json_numbers(mo.time_s));
      row.set("compare_baseline_time_s", json_numbers(mo.baseline_time_s));
      row.set("compare_speedup", json_number(so));
      std::printf(" %10s %8s", fmt_time(median(mo.time_s)).c_str(), fmt_speedup(so).c_str());
    }
    std::printf("\n");
    std::fflush(stdout);
    rows.push_back(row);
  }
  if (a.has("--json")) {
    json::Value out = json::Value::object();
    out.set("fingerprint", fp.to_json());
    out.set("cpu", cpu_info().brand);
    out.set("cache", a.get("--cache"));
    out.set("reps", a.get_int("--reps"));
    out.set("label", a.get("--label"));
    out.set("compare_label", a.get("--compare-label"));
    out.set("rows", rows);
    write_json_file("--json", a.get("--json"), out);
  }
  if (failed > 0) {
    std::fprintf(stderr, "tune verify: %d measurement(s) failed (see above)\n", failed);
    return 1;
  }
  return 0;
}

// Every tritune command dispatches this CPU's tuned winners (read lazily on the first kernel
// lookup, from default_db_dir()).
struct InstallTunedDispatch {
  InstallTunedDispatch() { install_tuned_dispatch(); }
} install_tuned_dispatch_at_startup;

CommandRegistrar reg_verify({"tune verify",
                             "re-measure recorded winners against the defaults (benchmark)",
                             run_verify});
CommandRegistrar reg_tune({"tune",
                           "tune kernel variants for this CPU (grid, random, evolution, "
                           "model); --show prints the winners",
                           run_tune});
CommandRegistrar reg_sim({"tune simulate",
                          "replay strategies on recorded grid measurements (convergence study)",
                          run_simulate});

}  // namespace
}  // namespace tritune::cli
