// Sample statistics shared by the benchmarks, the roofline probes and the tuner.
#pragma once
#include <algorithm>
#include <cmath>
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

// Mean and sample standard deviation (divided by n - 1; 0 for fewer than two samples), the way
// llama-bench reports "mean ± sd". Both 0 for no sample.
struct MeanSd {
  double mean = 0, sd = 0;
};
inline MeanSd mean_sd(const std::vector<double>& v) {
  MeanSd s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= (double)v.size();
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / (double)(v.size() - 1));
  }
  return s;
}

// A bandwidth probe taken before and after a measurement: the first call (after = false)
// appends it, the second keeps the better (higher) of the two, the stricter bound to compare the
// measurement with.
inline void keep_better_probe(std::vector<double>& probes, double gbs, bool after) {
  if (after && !probes.empty()) {
    probes.back() = std::max(probes.back(), gbs);
  } else {
    probes.push_back(gbs);
  }
}

// Time over the memory bound: `seconds` against reading `bytes` at the better of the bandwidths
// (GB/s, 1e9 bytes) probed just before and after. 1 is the bound; above it, slower.
inline double time_over_bound(double seconds, double bytes, double gbs_before, double gbs_after) {
  return seconds / (bytes / (std::max(gbs_before, gbs_after) * 1e9));
}

}  // namespace tritune
