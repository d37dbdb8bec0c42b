#include "tuner/tune.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "kernels/error.h"
#include "synthetic.h"

namespace tritune {
namespace {

using testing::scratch_dir;
using testing::synthetic_cost;
using testing::synthetic_optimum;
using testing::synthetic_space;
using testing::test_fingerprint;

struct Fixture {
  SearchSpace space = synthetic_space();
  TuneTask task;
  std::map<std::string, Params> by_name;
  Fixture() {
    task.key = {"i2_s", "syn", "gemv", 256, 512, 1, 1, "warm"};
    task.space = &space;
    task.isa = Isa::kX86_64;
    task.baseline_variant = variant_name(space, space.defaults(), task.isa);
    for (const auto& p : task_candidates(task)) by_name[variant_name(space, p, task.isa)] = p;
  }
  // A fake measurement: the synthetic cost, three repetitions, the baseline interleaved.
  Measurement fake(const std::string& variant) const {
    Measurement m;
    const double c = synthetic_cost(by_name.at(variant)) * 1e-4;
    const double b = synthetic_cost(space.defaults()) * 1e-4;
    m.time_s = {c, c * 1.01, c * 0.99};
    m.baseline_time_s = {b, b, b};
    m.baseline_variant = task.baseline_variant;
    return m;
  }
  std::string optimum() const { return variant_name(space, synthetic_optimum(), task.isa); }
};

TEST(Tune, GridFindsTheKnownOptimumAndRecordsEveryCandidate) {
  Fixture f;
  const TuningDb db = TuningDb::open_dir(scratch_dir("tune-grid"), test_fingerprint());
  TuneOptions opt;
  opt.strategy = "grid";
  size_t calls = 0, progress_calls = 0;
  Progress last;
  const TaskResult r = tune_task(
      f.task, opt,
      [&](const TaskKey& k, const std::string& v) {
        EXPECT_EQ(k, f.task.key);
        ++calls;
        return f.fake(v);
      },
      &db, {},
      [&](const Progress& p) {
        ++progress_calls;
        last = p;
      });
  EXPECT_EQ(r.candidates, f.by_name.size());
  EXPECT_EQ(r.measured, r.candidates);
  EXPECT_EQ(calls, r.candidates);
  EXPECT_EQ(r.best_variant, f.optimum());
  EXPECT_NEAR(r.best_score,
              synthetic_cost(synthetic_optimum()) / synthetic_cost(f.space.defaults()), 1e-9);
  EXPECT_EQ(progress_calls, r.candidates);
  EXPECT_EQ(last.done, r.candidates);
  EXPECT_EQ(last.best_variant, f.optimum());
  const DbLoad load = db.load();
  EXPECT_EQ(load.records.size(), r.candidates);
  EXPECT_EQ(load.records[0].variant, f.task.baseline_variant) << "grid measures the baseline first";
  ASSERT_EQ(r.trace.size(), r.candidates);
  for (size_t i = 1; i < r.trace.size(); ++i) EXPECT_LE(r.trace[i], r.trace[i - 1]);
}

TEST(Tune, FailuresScoreInfinityWithTheirReasonAndNeverStopTheSearch) {
  Fixture f;
  const TuningDb db = TuningDb::open_dir(scratch_dir("tune-fail"), test_fingerprint());
  TuneOptions opt;
  opt.strategy = "grid";
  // The true optimum returns a wrong result: it must never be chosen.
  const std::string wrong = f.optimum();
  const TaskResult r = tune_task(f.task, opt,
                                 [&](const TaskKey&, const std::string& v) {
                                   const Params& p = f.by_name.at(v);
                                   if (p.at("unroll") == "8")
                                     throw Error("compile failed: out of registers");
                                   Measurement m = f.fake(v);
                                   if (p.at("rows") == "16") {
                                     m = Measurement();
                                     m.status = status::kCrash;
                                     m.reason = "child killed by signal 11 (Segmentation fault)";
                                   }
                                   if (v == wrong) {
                                     m.status = status::kCorrectness;
                                     m.reason = "raw[3] = 7, reference 8";
                                   }
                                   return m;
                                 },
                                 &db, {});
  EXPECT_EQ(r.measured, r.candidates) << "the search went on past every failure";
  EXPECT_NE(r.best_variant, wrong);
  EXPECT_FALSE(r.best_variant.empty());
  EXPECT_TRUE(std::isfinite(r.best_score));
  size_t runtime = 0, crash = 0, wrong_n = 0;
  for (const auto& rec : db.load().records) {
    if (rec.m.status == status::kRuntime) {
      ++runtime;
      EXPECT_NE(rec.m.reason.find("out of registers"), std::string::npos);
    }
    if (rec.m.status == status::kCrash) ++crash;
    if (rec.m.status == status::kCorrectness) ++wrong_n;
    if (!rec.m.ok()) {
      EXPECT_TRUE(std::isinf(rec.score()));
      EXPECT_FALSE(rec.m.reason.empty());
    }
  }
  EXPECT_GT(runtime, 0u);
  EXPECT_GT(crash, 0u);
  EXPECT_EQ(wrong_n, 1u);
  EXPECT_EQ(r.failed, runtime + crash + wrong_n);
  // The summary names the first failure (variant and reason), not just a count.
  EXPECT_NE(r.first_failure.find(": "), std::string::npos) << r.first_failure;
  EXPECT_TRUE(r.first_failure.find("out of registers") != std::string::npos ||
              r.first_failure.find("signal 11") != std::string::npos ||
              r.first_failure.find("reference 8") != std::string::npos)
      << r.first_failure;
}

TEST(Tune, ATaskWhereEverythingFailsSaysWhyAndChoosesNothing) {
  Fixture f;
  TuneOptions opt;
  opt.strategy = "grid";
  opt.max_evals = 5;
  const TaskResult r =
      tune_task(f.task, opt,
                [&](const TaskKey&, const std::string&) -> Measurement {
                  throw Error("run_i2s: 6250 column tiles in 1 parts 2500000000 bytes apart");
                },
                nullptr, {});
  EXPECT_EQ(r.evaluated, 5u);
  EXPECT_EQ(r.failed, 5u);
  EXPECT_TRUE(r.best_variant.empty());
  EXPECT_FALSE(std::isfinite(r.best_score));
  EXPECT_NE(r.first_failure.find("2500000000 bytes apart"), std::string::npos) << r.first_failure;
  // A clean task has none.
  const TaskResult ok = tune_task(
      f.task, opt, [&](const TaskKey&, const std::string& v) { return f.fake(v); }, nullptr, {});
  EXPECT_TRUE(ok.first_failure.empty()) << ok.first_failure;
  EXPECT_EQ(ok.failed, 0u);
}

TEST(Tune, ConfirmationRejectsALuckySingleMeasurement) {
  Fixture f;
  const TuningDb db = TuningDb::open_dir(scratch_dir("tune-confirm"), test_fingerprint());
  // One mediocre point measures 10x too fast in the search (a preempted baseline); its
  // confirmation with more samples shows the truth, so the real optimum wins.
  const std::string lucky = f.task.baseline_variant == f.by_name.begin()->first
                                ? std::next(f.by_name.begin())->first
                                : f.by_name.begin()->first;
  TuneOptions opt;
  opt.strategy = "grid";
  opt.confirm_top = 3;
  size_t confirms = 0;
  opt.confirm = [&](const TaskKey&, const std::string& v) {
    ++confirms;
    Measurement m = f.fake(v);
    m.time_s.insert(m.time_s.end(), m.time_s.begin(), m.time_s.end());
    m.baseline_time_s.insert(m.baseline_time_s.end(), m.baseline_time_s.begin(),
                             m.baseline_time_s.end());
    return m;
  };
  const TaskResult r = tune_task(f.task, opt,
                                 [&](const TaskKey&, const std::string& v) {
                                   Measurement m = f.fake(v);
                                   if (v == lucky) {
                                     for (double& x : m.time_s) x *= 0.1;
                                   }
                                   return m;
                                 },
                                 &db, {});
  EXPECT_EQ(confirms, 3u);
  EXPECT_EQ(r.best_variant, f.optimum());
  EXPECT_EQ(r.measured, r.candidates + 3);
  // The database's winner agrees: the confirming record supersedes the lucky one.
  std::vector<Record> recs = db.load().records;
  size_t lucky_records = 0;
  for (const auto& rec : recs) lucky_records += rec.variant == lucky;
  EXPECT_EQ(lucky_records, 2u);
  // A resumed run measures no search point again; it confirms only candidates that moved into
  // the top 3 once the lucky one fell out, and after that nothing.
  for (int run = 0; run < 2; ++run) {
    confirms = 0;
    const TaskResult again = tune_task(
        f.task, opt,
        [&](const TaskKey&, const std::string& v) {
          ADD_FAILURE() << v << " re-measured";
          return f.fake(v);
        },
        &db, db.load().records);
    EXPECT_EQ(again.best_variant, f.optimum());
    EXPECT_LE(confirms, run == 0 ? 1u : 0u);
  }
}

TEST(Tune, BudgetsLimitTheEvaluations) {
  Fixture f;
  TuneOptions opt;
  opt.strategy = "random";
  opt.max_evals = 20;
  TaskResult r = tune_task(
      f.task, opt, [&](const TaskKey&, const std::string& v) { return f.fake(v); }, nullptr, {});
  EXPECT_EQ(r.measured, 20u);
  opt.max_evals = 0;
  opt.time_budget_s = 0.05;
  r = tune_task(f.task, opt,
                [&](const TaskKey&, const std::string& v) {
                  usleep(5000);
                  return f.fake(v);
                },
                nullptr, {});
  EXPECT_GE(r.measured, 1u);
  EXPECT_LT(r.measured, r.candidates);
}

TEST(Tune, ResumeNeverMeasuresAFinishedCandidateAgain) {
  Fixture f;
  const TuningDb db = TuningDb::open_dir(scratch_dir("tune-resume"), test_fingerprint());
  TuneOptions opt;
  opt.strategy = "model";
  opt.max_evals = 30;
  std::set<std::string> first, second;
  tune_task(
      f.task, opt,
      [&](const TaskKey&, const std::string& v) {
        first.insert(v);
        return f.fake(v);
      },
      &db, db.load().records);
  opt.max_evals = 60;
  const TaskResult r = tune_task(
      f.task, opt,
      [&](const TaskKey&, const std::string& v) {
        EXPECT_EQ(first.count(v), 0u) << v << " measured twice";
        second.insert(v);
        return f.fake(v);
      },
      &db, db.load().records);
  EXPECT_EQ(first.size(), 30u);
  EXPECT_EQ(second.size(), 30u);
  EXPECT_EQ(r.evaluated, 60u);
  EXPECT_EQ(r.measured, 30u);
  EXPECT_EQ(db.load().records.size(), 60u);
  // Records of another task (other threads) are not taken for this one.
  Fixture g;
  g.task.key.threads = 2;
  const TaskResult other = tune_task(
      g.task, opt, [&](const TaskKey&, const std::string& v) { return g.fake(v); }, nullptr,
      db.load().records);
  EXPECT_EQ(other.measured, 60u);
}

TEST(Tune, ResumesAfterTheTunerIsKilledMidRun) {
  Fixture f;
  const std::string dir = scratch_dir("tune-kill");
  const TuningDb db = TuningDb::open_dir(dir, test_fingerprint());
  TuneOptions opt;
  opt.strategy = "grid";
  const pid_t kid = fork();
  ASSERT_GE(kid, 0);
  if (kid == 0) {
    tune_task(f.task, opt,
              [&](const TaskKey&, const std::string& v) {
                usleep(2000);
                return f.fake(v);
              },
              &db, {});
    _exit(0);
  }
  // Kill it once a few dozen records are in, mid-run.
  for (int i = 0; i < 2000; ++i) {
    std::ifstream in(db.path());
    const auto lines =
        std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
    if (lines > 30) break;
    usleep(2000);
  }
  ASSERT_EQ(kill(kid, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(waitpid(kid, &st, 0), kid);
  ASSERT_TRUE(WIFSIGNALED(st)) << "the child finished before it was killed";

  const DbLoad before = db.load();
  EXPECT_LE(before.warnings.size(), 1u);
  std::set<std::string> done;
  for (const auto& r : before.records) done.insert(r.variant);
  ASSERT_GE(done.size(), 30u);
  ASSERT_LT(done.size(), f.by_name.size());
  size_t measured = 0;
  const TaskResult r = tune_task(
      f.task, opt,
      [&](const TaskKey&, const std::string& v) {
        EXPECT_EQ(done.count(v), 0u) << v << " was finished before the kill";
        ++measured;
        return f.fake(v);
      },
      &db, before.records);
  EXPECT_EQ(measured, f.by_name.size() - done.size());
  EXPECT_EQ(r.evaluated, f.by_name.size());
  EXPECT_EQ(r.best_variant, f.optimum());
  std::set<std::string> all;
  for (const auto& rec : db.load().records) all.insert(rec.variant);
  EXPECT_EQ(all.size(), f.by_name.size());
}

}  // namespace
}  // namespace tritune
