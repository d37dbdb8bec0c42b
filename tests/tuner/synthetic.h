// A synthetic search space with a known optimum and a deterministic fake cost, so strategies, the
// driver and the database are tested without kernels or timing.
#pragma once
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "generators/space.h"
#include "kernels/cpu_features.h"
#include "tests/kernels/test_util.h"  // scratch_dir
#include "tuner/fingerprint.h"
#include "tuner/record.h"

namespace tritune::testing {

inline SearchSpace synthetic_space() {
  SearchSpace s;
  s.family = "syn";
  s.op = "gemv";
  s.format = "i2_s";
  s.generator = "syn_gemv";
  s.params = {
      {"rows", "r", {"1", "2", "4", "8", "16"}, "1", {}, "rows"},
      {"vbits", "v", {"128", "256", "512"}, "128", {}, "vector bits"},
      {"unroll", "u", {"1", "2", "4", "8"}, "1", {}, "unroll"},
      {"grain", "g", {"0", "1", "2", "4", "8", "16"}, "0", {}, "grain"},
      {"accum", "a", {"x", "y"}, "x", {}, "accumulation"},
  };
  s.constraints.push_back({"rows*vbits/128 <= 32", [](const Params& p, const Shape*, Isa) {
                             const int need =
                                 std::stoi(p.at("rows")) * std::stoi(p.at("vbits")) / 128;
                             return need <= 32 ? std::string() : std::string("too many regs");
                           }});
  return s;
}

// Smooth bowl with an interaction (rows x vbits) and 1% deterministic jitter; the optimum is
// r4 v512 u2 g2 ay (cost 1.0 before jitter; jitter is zero there).
inline double synthetic_cost(const Params& p) {
  const double r = std::log2(std::stod(p.at("rows")));
  const double v = std::log2(std::stod(p.at("vbits")) / 128);
  const double u = std::log2(std::stod(p.at("unroll")));
  const double gv = std::stod(p.at("grain"));
  const double g = gv == 0 ? -1 : std::log2(gv);
  double c = 1 + 0.3 * (r - 2) * (r - 2) + 0.2 * (v - 2) * (v - 2) + 0.15 * (u - 1) * (u - 1) +
             0.05 * (g - 1) * (g - 1) + (p.at("accum") == "x" ? 0.12 : 0.0) +
             0.1 * std::fabs(r + v - 4);
  uint64_t h = 1469598103934665603ull;
  for (const auto& kv : p) {
    for (char ch : kv.second) h = (h ^ (unsigned char)ch) * 1099511628211ull;
  }
  if (c > 1.0) c *= 1.0 + 0.01 * ((double)(h % 2001) / 1000.0 - 1.0);
  return c;
}

inline Params synthetic_optimum() {
  return {{"rows", "4"}, {"vbits", "512"}, {"unroll", "2"}, {"grain", "2"}, {"accum", "y"}};
}

inline Fingerprint test_fingerprint(const std::string& cpu = "TestVendor|Test CPU 9000|f1m2") {
  Fingerprint f;
  f.cpu = cpu;
  f.halide_version = "21.0.0";
  f.kernel_hash = "0123456789abcdef";
  return f;
}

}  // namespace tritune::testing
