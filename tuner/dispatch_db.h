// From the tuning database to the runtime dispatch table (kernels/dispatch.h): per (family, op,
// n, k, token bucket, threads) the best valid recorded variant of this CPU's database. A problem
// without an entry runs the default variant. No per-CPU tables are written by hand: the database
// of this fingerprint is the table. Compiled winners are not rebuilt per run: get_variant()
// loads them from the on-disk JIT cache (kernels/cache_dir.h, keyed by CPU, Halide version and
// generator source hash, so a source change invalidates them).
#pragma once
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "tuner/record.h"

namespace tritune {

struct Winner {
  DispatchEntry entry;  // entry.tokens is the token bucket
  double speedup = 1;   // objective(baseline) / objective(winner), measured interleaved
  double value = 0, baseline_value = 0;
  std::string baseline;  // the baseline variant it was compared with
  std::string cache;     // the cache mode it was chosen in
  size_t evaluated = 0;  // valid candidates recorded for its key
};

// Best valid record per key (lowest record_score under `objective`); of several records of one
// candidate the one with the most samples counts (a confirmation). Records measured in the
// preferred cache mode win over the other mode's; ties keep the earliest. With
// `drop_no_gain`, keys whose best is no faster than the baseline are left out (the default runs).
// A record whose variant is not a legal point of its family's space for its shape (a hand edit,
// a space this build no longer has) is never chosen; each is named in `skipped` if given.
std::vector<Winner> select_winners(const std::vector<Record>& records, Objective objective,
                                   const std::string& prefer_cache = "cold",
                                   bool drop_no_gain = true,
                                   std::vector<std::string>* skipped = nullptr);

// Empty if this build can run the record's variant for the record's task, else why not.
std::string unrunnable_variant(const Record& r);
std::vector<DispatchEntry> entries_of(const std::vector<Winner>& winners);

// This CPU's database in `dir` (default_db_dir() if empty) -> dispatch entries. No database: an
// empty table. Corrupt lines and records select_winners skips go to `warnings`; a database of
// another fingerprint throws Error.
std::vector<DispatchEntry> load_dispatch_entries(const std::string& dir, Objective objective,
                                                 std::vector<std::string>* warnings = nullptr);

// Installs load_dispatch_entries as the kernels' dispatch loader (read on first lookup).
// Warnings and errors are printed to stderr once; an unreadable DB leaves the defaults running.
void install_tuned_dispatch(const std::string& dir = "", Objective objective = Objective::kTime);

}  // namespace tritune
