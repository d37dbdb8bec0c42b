// Runtime dispatch: which variant runs a (family, shape, token count, threads) problem. The table
// is data the tuner wrote (tuner/ installs a loader that reads this CPU's tuning database); where
// it has no entry the family's AOT default for the selected ISA runs. No per-CPU if-chains.
//
// TRITUNE_VARIANT=<name>[,<name>...] forces named variants (per family/op) for A/B runs.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tritune {

struct DispatchEntry {
  std::string family;  // "i2s", "f16", ...
  std::string op;      // "gemv" | "gemm"
  int64_t n = 0, k = 0;
  int64_t tokens = 1;  // token bucket the entry was tuned at
  int threads = 1;
  std::string variant;
};

// Token bucket of a call: 1 (decode), else the next power of two up to 512.
int64_t token_bucket(int64_t tokens);
const char* op_for_tokens(int64_t tokens);  // "gemv" for 1 token, else "gemm"

void set_dispatch_table(std::vector<DispatchEntry> entries);
// Installs a function that fills the table on first lookup (the tuner's DB reader).
void set_dispatch_loader(std::function<std::vector<DispatchEntry>()> loader);
std::vector<DispatchEntry> dispatch_table();

// The variant name for a call. Exact (n, k, threads) entries of the same op win; among them the
// nearest token bucket (log distance). Else the AOT default. `why` (optional) says which rule.
std::string lookup_variant(const std::string& family, int64_t n, int64_t k, int64_t tokens,
                           int threads, std::string* why = nullptr);

}  // namespace tritune
