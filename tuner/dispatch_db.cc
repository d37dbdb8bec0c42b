#include "tuner/dispatch_db.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <sys/stat.h>
#include <tuple>

#include "tuner/database.h"
#include "tuner/fingerprint.h"
#include "tuner/tune.h"

namespace tritune {

int64_t token_bucket(int64_t tokens) {
  if (tokens <= 1) return 1;
  int64_t b = 2;
  while (b < tokens && b < 512) b *= 2;
  return b;
}

std::vector<DispatchEntry> select_winners(const std::vector<Record>& records, Objective objective,
                                          const std::string& prefer_cache) {
  using Key = std::tuple<std::string, std::string, int64_t, int64_t, int64_t, int>;
  struct Best {
    const Record* r = nullptr;
    double score = 0;
    bool preferred = false;
  };
  std::map<Key, Best> best;
  std::vector<Key> order;
  for (const Record& r : records) {
    const double s = record_score(r, objective);
    if (!std::isfinite(s)) continue;
    const Key key{r.task.family, r.task.op, r.task.n, r.task.k, token_bucket(r.task.tokens),
                  r.task.threads};
    const bool pref = r.task.cache == prefer_cache;
    auto it = best.find(key);
    if (it == best.end()) {
      best[key] = {&r, s, pref};
      order.push_back(key);
      continue;
    }
    Best& b = it->second;
    if ((pref && !b.preferred) || (pref == b.preferred && s < b.score)) b = {&r, s, pref};
  }
  std::vector<DispatchEntry> out;
  for (const Key& key : order) {
    const Best& b = best[key];
    if (b.score >= 1.0) continue;  // the default is as good: keep dispatching it
    DispatchEntry e;
    std::tie(e.family, e.op, e.n, e.k, e.token_bucket, e.threads) = key;
    e.variant = b.r->variant;
    e.speedup = 1.0 / b.score;
    e.cache = b.r->task.cache;
    out.push_back(e);
  }
  return out;
}

std::vector<DispatchEntry> load_dispatch_entries(const std::string& dir, Objective objective,
                                                 std::vector<std::string>* warnings) {
  const std::string d = dir.empty() ? default_cache_dir() : dir;
  const Fingerprint fp = current_fingerprint();
  const std::string path = TuningDb::path_in(d, fp);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};  // untuned: every call runs the default
  const DbLoad load = TuningDb::open_file(path, fp).load();
  if (warnings) *warnings = load.warnings;
  return select_winners(load.records, objective);
}

std::string pick_variant(const std::vector<DispatchEntry>& table, const std::string& family,
                         const std::string& op, int64_t n, int64_t k, int64_t tokens, int threads,
                         const std::string& fallback) {
  const std::string prefix = family + "_" + op + "_";
  if (const char* ov = std::getenv("TRITUNE_VARIANT")) {
    std::stringstream ss(ov);
    std::string name;
    while (std::getline(ss, name, ',')) {
      if (name.compare(0, prefix.size(), prefix) == 0) return name;
    }
  }
  const int64_t bucket = token_bucket(tokens);
  const DispatchEntry* best = nullptr;
  for (const DispatchEntry& e : table) {
    if (e.family != family || e.op != op || e.n != n || e.k != k) continue;
    if (e.token_bucket > bucket || e.threads > threads) continue;
    // Closest bucket first, then closest thread count (both from below).
    if (!best || std::make_pair(e.token_bucket, e.threads) >
                     std::make_pair(best->token_bucket, best->threads)) {
      best = &e;
    }
  }
  return best ? best->variant : fallback;
}

}  // namespace tritune
