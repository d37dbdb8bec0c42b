// Shared helpers of the kernel tests (and the tuner's): seeded random data, scratch
// directories.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace tritune::testing {

inline std::vector<int8_t> random_ternary(int64_t count, std::mt19937& rng, double p_zero = 0.4) {
  std::vector<int8_t> t((size_t)count);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& v : t) {
    const double r = u(rng);
    v = r < p_zero ? 0 : (r < p_zero + (1 - p_zero) / 2 ? 1 : -1);
  }
  return t;
}

inline std::vector<float> random_floats(int64_t count, std::mt19937& rng, float scale = 1.0f) {
  std::vector<float> x((size_t)count);
  std::normal_distribution<float> n(0.0f, scale);
  for (auto& v : x) v = n(rng);
  return x;
}

// A fresh scratch directory (under TRITUNE_TEST_TMP when set).
inline std::string scratch_dir(const std::string& name) {
  const char* base = std::getenv("TRITUNE_TEST_TMP");
  std::string root = base && *base ? base : "/tmp";
  std::string cmd = "mkdir -p '" + root + "'";
  if (std::system(cmd.c_str()) != 0) return "/tmp";
  std::string tmpl = root + "/" + name + "-XXXXXX";
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : root;
}

}  // namespace tritune::testing
