// Sample statistics shared by the benchmarks, the roofline probes and the tuner.
#pragma once
#include <algorithm>
#include <vector>

namespace tritune {

// Median of a sample (the mean of the middle two for an even count); `if_empty` when there is
// no sample (0 for a figure that is not shown, +inf for an objective that must lose).
inline double median_or(std::vector<double> v, double if_empty) {
  if (v.empty()) return if_empty;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// The q-quantile (0 <= q <= 1) of a sample by nearest rank, e.g. q = 0.25 and 0.75 for the
// quartiles; `if_empty` when there is no sample.
inline double quantile_or(std::vector<double> v, double q, double if_empty) {
  if (v.empty()) return if_empty;
  std::sort(v.begin(), v.end());
  return v[(size_t)(q * (double)(v.size() - 1) + 0.5)];
}

}  // namespace tritune
