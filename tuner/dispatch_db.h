// From the tuning database to the runtime dispatch table: per (family, op, n, k, token bucket,
// threads) the best valid recorded variant of this CPU's database. The kernels' dispatch
// (kernels/dispatch.h) installs these entries; a problem without an entry runs the default
// variant. No per-CPU tables are written by hand: the database of this fingerprint is the table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tuner/record.h"

namespace tritune {

struct DispatchEntry {
  std::string family, op;
  int64_t n = 0, k = 0;
  int64_t token_bucket = 1;
  int threads = 1;
  std::string variant;
  double speedup = 1;  // baseline / winner on the objective (for --show)
  std::string cache;   // the cache mode the winner was chosen in
};

// The token bucket a call with `tokens` tokens falls into: 1 (decode), else the next power of
// two (2, 4, ..., capped at 512), so a 100-token prompt uses the 128-token winner.
int64_t token_bucket(int64_t tokens);

// Best valid record per key (lowest record_score under `objective`). Records measured in the
// preferred cache mode win over the other mode's; ties keep the earliest. Winners slower than
// the baseline are dropped (the default runs there).
std::vector<DispatchEntry> select_winners(const std::vector<Record>& records, Objective objective,
                                          const std::string& prefer_cache = "cold");

// Loads this CPU's database in `dir` (default_cache_dir() if empty) and selects the winners.
// A missing database gives an empty table; warnings (corrupt lines) go to `warnings`.
std::vector<DispatchEntry> load_dispatch_entries(const std::string& dir, Objective objective,
                                                 std::vector<std::string>* warnings = nullptr);

// The variant to run: an override (TRITUNE_VARIANT=<name>, or a `family_op=name,...` list for
// one family/op), else the entry for (family, op, n, k, bucket(tokens), threads), else
// `fallback` (the default variant's name). Threads fall back to the nearest tuned count below.
std::string pick_variant(const std::vector<DispatchEntry>& table, const std::string& family,
                         const std::string& op, int64_t n, int64_t k, int64_t tokens, int threads,
                         const std::string& fallback);

}  // namespace tritune
