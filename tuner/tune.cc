#include "tuner/tune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>

#include "kernels/error.h"
#include "tuner/strategy.h"

namespace tritune {

namespace {
double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

double record_score(const Record& r, Objective o) {
  if (!r.m.ok()) return std::numeric_limits<double>::infinity();
  const double t = paired_ratio(r.m.time_s, r.m.baseline_time_s);
  switch (o) {
    case Objective::kTime:
      return t;
    case Objective::kEnergy:
      return paired_ratio(r.m.energy_j, r.m.baseline_energy_j);
    case Objective::kEdp:
      return t * paired_ratio(r.m.energy_j, r.m.baseline_energy_j);
  }
  return std::numeric_limits<double>::infinity();
}

bool better_evidence(const Record& a, const Record& b) {
  return a.m.time_s.size() > b.m.time_s.size();  // equal: the later record (b) wins
}

std::vector<Params> task_candidates(const TuneTask& t) {
  if (!t.space) throw Error("tune task " + t.key.str() + ": no search space");
  const Shape shape{t.key.n, t.key.k, t.key.tokens};
  return t.space->enumerate(&shape, t.isa);
}

TaskResult tune_task(const TuneTask& t, const TuneOptions& opt, const MeasureFn& measure,
                     const TuningDb* db, const std::vector<Record>& existing,
                     const ProgressFn& progress) {
  const double t0 = now_s();
  const std::vector<Params> points = task_candidates(t);
  std::vector<std::string> names;
  std::map<std::string, size_t> index_of;
  int64_t first = -1;
  for (size_t i = 0; i < points.size(); ++i) {
    names.push_back(variant_name(*t.space, points[i], t.isa));
    index_of[names.back()] = i;
    if (names.back() == t.baseline_variant) first = (int64_t)i;
  }

  TaskResult res;
  res.key = t.key;
  res.candidates = points.size();
  const size_t total =
      opt.max_evals > 0 ? std::min<size_t>((size_t)opt.max_evals, points.size()) : points.size();

  // Finished candidates of this task (the last record wins if one was measured twice).
  std::map<size_t, const Record*> done;
  for (const Record& r : existing) {
    if (!(r.task == t.key)) continue;
    auto it = index_of.find(r.variant);
    if (it == index_of.end()) continue;
    const Record*& d = done[it->second];
    if (!d || !better_evidence(*d, r)) d = &r;
  }

  std::vector<Observation> history;
  Progress pr;
  pr.task = &t;
  pr.total = total;
  double best = std::numeric_limits<double>::infinity();
  std::map<size_t, Record> measured;  // this run's records by index
  auto note = [&](size_t idx, double score, const std::string& reason) {
    history.push_back({idx, score});
    if (!std::isfinite(score)) {
      ++res.failed;
      if (res.first_failure.empty()) res.first_failure = names[idx] + ": " + reason;
    }
    if (score < best) {
      best = score;
      res.best_variant = names[idx];
    }
    res.trace.push_back(best);
    pr.done = history.size();
    pr.last_variant = names[idx];
    pr.last_score = score;
    pr.best_variant = res.best_variant;
    pr.best_score = best;
    pr.elapsed_s = now_s() - t0;
    if (progress) progress(pr);
  };
  // Resume: what the database already has counts as evaluated (and toward the budget).
  for (const auto& kv : done) {
    if (history.size() >= total) break;
    ++pr.resumed;
    note(kv.first, record_score(*kv.second, opt.objective), kv.second->m.reason);
  }

  auto strategy = make_strategy(opt.strategy);
  strategy->reset(*t.space, points, first, opt.seed);
  while (history.size() < total) {
    if (opt.time_budget_s > 0 && now_s() - t0 > opt.time_budget_s) break;
    const std::optional<size_t> nx = strategy->next(history);
    if (!nx) break;
    const size_t idx = *nx;
    if (idx >= points.size()) throw Error("strategy " + opt.strategy + " proposed a bad index");
    bool dup = false;
    for (const auto& o : history) dup = dup || o.index == idx;
    if (dup) throw Error("strategy " + opt.strategy + " proposed a finished candidate");

    Record r;
    r.task = t.key;
    r.variant = names[idx];
    r.params = points[idx];
    try {
      r.m = measure(t.key, r.variant);
    } catch (const std::exception& e) {
      r.m = Measurement();
      r.m.status = status::kRuntime;
      r.m.reason = e.what();
    }
    if (!r.m.ok() && r.m.reason.empty()) r.m.reason = r.m.status;
    r.objective = objective_name(opt.objective);
    r.value = objective_value(opt.objective, r.m.time_s, r.m.energy_j);
    r.baseline_value = objective_value(opt.objective, r.m.baseline_time_s, r.m.baseline_energy_j);
    if (!r.m.ok()) r.value = std::numeric_limits<double>::infinity();
    r.strategy = opt.strategy;
    r.unix_time = (double)std::time(nullptr);
    if (db) db->append(r);
    ++res.measured;
    const double score = record_score(r, opt.objective);
    const std::string reason = r.m.reason;
    measured[idx] = std::move(r);
    note(idx, score, reason);
  }

  res.evaluated = history.size();

  // Confirmation: the search measured each point once, so its best is biased toward a lucky
  // measurement (winner's curse). Re-measure the top few with more samples; the winner is the
  // best confirmed one, and the confirming records (more samples) supersede the search's.
  auto record_of = [&](size_t idx) -> const Record* {
    if (measured.count(idx)) return &measured[idx];
    auto it = done.find(idx);
    return it == done.end() ? nullptr : it->second;
  };
  if (opt.confirm_top > 0 && opt.confirm) {
    std::vector<std::pair<double, size_t>> ranked;
    for (const auto& o : history) {
      if (std::isfinite(o.score)) ranked.emplace_back(o.score, o.index);
    }
    std::sort(ranked.begin(), ranked.end());
    if (ranked.size() > (size_t)opt.confirm_top) ranked.resize((size_t)opt.confirm_top);
    best = std::numeric_limits<double>::infinity();
    res.best_variant.clear();
    for (const auto& sc : ranked) {
      const size_t idx = sc.second;
      const Record* prev = record_of(idx);
      double score = sc.first;
      if (!(prev && prev->strategy == "confirm")) {
        Record r = *prev;
        try {
          r.m = opt.confirm(t.key, r.variant);
        } catch (const std::exception& e) {
          r.m = Measurement();
          r.m.status = status::kRuntime;
          r.m.reason = e.what();
        }
        r.value = r.m.ok() ? objective_value(opt.objective, r.m.time_s, r.m.energy_j)
                           : std::numeric_limits<double>::infinity();
        r.baseline_value =
            objective_value(opt.objective, r.m.baseline_time_s, r.m.baseline_energy_j);
        r.strategy = "confirm";
        r.unix_time = (double)std::time(nullptr);
        if (db) db->append(r);
        ++res.measured;
        score = record_score(r, opt.objective);
        measured[idx] = std::move(r);
      }
      if (score < best) {
        best = score;
        res.best_variant = names[idx];
      }
    }
  }

  res.best_score = best;
  if (!res.best_variant.empty()) {
    const size_t bi = index_of[res.best_variant];
    const Record* br = record_of(bi);
    res.best_value = objective_value(opt.objective, br->m.time_s, br->m.energy_j);
    res.baseline_value =
        objective_value(opt.objective, br->m.baseline_time_s, br->m.baseline_energy_j);
    res.baseline_variant = br->m.baseline_variant;
  }
  res.elapsed_s = now_s() - t0;
  return res;
}

}  // namespace tritune
