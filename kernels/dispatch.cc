#include "kernels/dispatch.h"

#include <cmath>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include "generators/space.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/variant.h"

namespace tritune {

namespace {
std::mutex g_mutex;
std::vector<DispatchEntry> g_table;
std::function<std::vector<DispatchEntry>()> g_loader;
bool g_loaded = false;

void ensure_loaded_locked() {
  if (!g_loaded && g_loader) {
    g_loaded = true;
    g_table = g_loader();
  }
}
}  // namespace

int64_t token_bucket(int64_t tokens) {
  if (tokens <= 1) return 1;
  int64_t b = 2;
  while (b < tokens && b < 512) b *= 2;
  return b;
}

const char* op_for_tokens(int64_t tokens) {
  return tokens <= 1 ? "gemv" : "gemm";
}

void set_dispatch_table(std::vector<DispatchEntry> entries) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_table = std::move(entries);
  g_loaded = true;
}

void set_dispatch_loader(std::function<std::vector<DispatchEntry>()> loader) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_loader = std::move(loader);
  g_loaded = false;
}

std::vector<DispatchEntry> dispatch_table() {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensure_loaded_locked();
  return g_table;
}

std::string lookup_variant(const std::string& family, int64_t n, int64_t k, int64_t tokens,
                           int threads, std::string* why) {
  const std::string op = op_for_tokens(tokens);
  const Isa isa = selected_isa();
  if (const char* env = std::getenv("TRITUNE_VARIANT"); env && *env) {
    std::stringstream ss(env);
    std::string name;
    while (std::getline(ss, name, ',')) {
      const VariantName v = parse_variant_name(name);
      if (v.family == family && v.op == op) {
        if (why) *why = "forced by TRITUNE_VARIANT";
        return name;
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    ensure_loaded_locked();
    const DispatchEntry* best = nullptr;
    double best_d = 1e30;
    for (const auto& e : g_table) {
      if (e.family != family || e.op != op || e.n != n || e.k != k || e.threads != threads) {
        continue;
      }
      if (parse_variant_name(e.variant).isa > isa) continue;  // tuned above a forced ISA
      const double d = std::fabs(std::log2((double)std::max<int64_t>(e.tokens, 1)) -
                                 std::log2((double)token_bucket(tokens)));
      if (d < best_d) {
        best_d = d;
        best = &e;
      }
    }
    if (best != nullptr) {
      if (why) *why = "tuned (tokens " + std::to_string(best->tokens) + ")";
      return best->variant;
    }
  }
  if (why) *why = "default (untuned)";
  return default_variant(family, op, isa).name;
}

}  // namespace tritune
