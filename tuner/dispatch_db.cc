#include "tuner/dispatch_db.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "generators/space.h"
#include "kernels/error.h"
#include "tuner/database.h"
#include "tuner/fingerprint.h"
#include "tuner/tune.h"

namespace tritune {

std::string unrunnable_variant(const Record& r) {
  try {
    const VariantName v = parse_variant_name(r.variant);
    if (v.family != r.task.family || v.op != r.task.op) {
      return "not an " + r.task.family + "_" + r.task.op + " variant";
    }
    const Shape shape{r.task.n, r.task.k, r.task.tokens};
    return find_space(v.family, v.op).check(v.params, &shape, v.isa);
  } catch (const Error& e) {
    return e.what();
  }
}

std::vector<Winner> select_winners(const std::vector<Record>& records, Objective objective,
                                   const std::string& prefer_cache, bool drop_no_gain,
                                   std::vector<std::string>* skipped) {
  using Key = std::tuple<std::string, std::string, int64_t, int64_t, int64_t, int>;
  struct Best {
    const Record* r = nullptr;
    double score = 0;
    bool preferred = false;
    size_t valid = 0;
  };
  // One record per (key, candidate): the best evidence (a confirmation supersedes the search).
  std::map<std::string, const Record*> per_candidate;
  std::vector<std::string> cand_order;
  for (const Record& r : records) {
    const std::string ck = r.task.str() + " " + r.variant;
    auto it = per_candidate.find(ck);
    if (it == per_candidate.end()) {
      per_candidate[ck] = &r;
      cand_order.push_back(ck);
    } else if (!better_evidence(*it->second, r)) {
      it->second = &r;
    }
  }
  std::map<Key, Best> best;
  std::vector<Key> order;
  for (const std::string& ck : cand_order) {
    const Record& r = *per_candidate[ck];
    const double s = record_score(r, objective);
    if (!std::isfinite(s)) continue;
    if (const std::string why = unrunnable_variant(r); !why.empty()) {
      if (skipped) {
        skipped->push_back("record of " + r.task.str() + " names " + r.variant +
                           ", which this build cannot run (" + why + "): skipped");
      }
      continue;
    }
    const Key key{r.task.family, r.task.op, r.task.n, r.task.k, token_bucket(r.task.tokens),
                  r.task.threads};
    const bool pref = r.task.cache == prefer_cache;
    auto it = best.find(key);
    if (it == best.end()) {
      best[key] = {&r, s, pref, 1};
      order.push_back(key);
      continue;
    }
    Best& b = it->second;
    ++b.valid;
    if ((pref && !b.preferred) || (pref == b.preferred && s < b.score)) {
      b.r = &r;
      b.score = s;
      b.preferred = pref;
    }
  }
  std::vector<Winner> out;
  for (const Key& key : order) {
    const Best& b = best[key];
    if (drop_no_gain && b.score >= 1.0) continue;  // the default is as good: keep it
    Winner w;
    std::tie(w.entry.family, w.entry.op, w.entry.n, w.entry.k, w.entry.tokens, w.entry.threads) =
        key;
    w.entry.variant = b.r->variant;
    w.speedup = 1.0 / b.score;
    w.value = objective_value(objective, b.r->m.time_s, b.r->m.energy_j);
    w.baseline_value = objective_value(objective, b.r->m.baseline_time_s, b.r->m.baseline_energy_j);
    w.baseline = b.r->m.baseline_variant;
    w.cache = b.r->task.cache;
    w.evaluated = b.valid;
    out.push_back(w);
  }
  return out;
}

std::vector<DispatchEntry> entries_of(const std::vector<Winner>& winners) {
  std::vector<DispatchEntry> out;
  for (const auto& w : winners) out.push_back(w.entry);
  return out;
}

std::vector<DispatchEntry> load_dispatch_entries(const std::string& dir, Objective objective,
                                                 std::vector<std::string>* warnings) {
  const std::string d = dir.empty() ? default_db_dir() : dir;
  const Fingerprint fp = current_fingerprint();
  const std::string path = TuningDb::path_in(d, fp);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};  // untuned: every call runs the default
  const DbLoad load = TuningDb::open_file(path, fp).load();
  std::vector<std::string> skipped;
  auto entries = entries_of(select_winners(load.records, objective, "cold", true, &skipped));
  if (warnings) {
    *warnings = load.warnings;
    warnings->insert(warnings->end(), skipped.begin(), skipped.end());
  }
  return entries;
}

void install_tuned_dispatch(const std::string& dir, Objective objective) {
  set_dispatch_loader([dir, objective]() -> std::vector<DispatchEntry> {
    try {
      std::vector<std::string> warnings;
      auto entries = load_dispatch_entries(dir, objective, &warnings);
      for (const auto& w : warnings) std::fprintf(stderr, "tritune: %s\n", w.c_str());
      return entries;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tritune: tuned dispatch disabled, default variants run: %s\n",
                   e.what());
      return {};
    }
  });
}

}  // namespace tritune
