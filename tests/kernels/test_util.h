// Shared helpers of the tests: seeded random data (kernel tests), scratch directories (all).
#pragma once
#include <stdlib.h>
#include <sys/stat.h>

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

// A fresh directory under $TRITUNE_TEST_TMP (or /tmp) for one test.
inline std::string scratch_dir(const std::string& tag) {
  const char* base = std::getenv("TRITUNE_TEST_TMP");
  std::string root = base && *base ? base : "/tmp";
  mkdir(root.c_str(), 0755);
  std::string tmpl = root + "/" + tag + "_XXXXXX";
  return mkdtemp(tmpl.data()) ? tmpl : root;
}

}  // namespace tritune::testing
