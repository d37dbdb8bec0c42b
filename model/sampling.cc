#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/error.h"

namespace tritune {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// -inf is a masked token; +inf is the limit of a logit above every finite one (the +inf tokens
// then share the probability between them). NaN, or no token above -inf, leaves nothing to
// sample.
void check_logits(const float* logits, int64_t vocab) {
  if (vocab <= 0) throw Error("sampler: empty vocabulary");
  bool any = false;
  for (int64_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i])) {
      throw Error("sampler: logit of token " + std::to_string(i) +
                  " is NaN (the model produced invalid values)");
    }
    any = any || logits[i] > -INFINITY;
  }
  if (!any) throw Error("sampler: every logit is -inf (no token can be sampled)");
}

}  // namespace

Sampler::Sampler(const SamplerOptions& opt) : opt_(opt) {
  if (!std::isfinite(opt.temperature) || opt.temperature < 0) {
    throw Error("sampler: --temp must be a finite value >= 0 (got " +
                std::to_string(opt.temperature) + ")");
  }
  if (opt.top_k < 0) throw Error("sampler: --top-k must be >= 0 (0 turns it off)");
  if (!(opt.top_p > 0.0f && opt.top_p <= 1.0f)) {
    throw Error("sampler: --top-p must be in (0, 1] (got " + std::to_string(opt.top_p) + ")");
  }
  uint64_t x = opt.seed;
  for (auto& s : s_) s = splitmix64(x);
}

double Sampler::uniform() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return (double)(result >> 11) * 0x1.0p-53;
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(const float* logits,
                                                              int64_t vocab) const {
  check_logits(logits, vocab);
  if (opt_.temperature <= 0.0f) {
    const int64_t best = std::max_element(logits, logits + vocab) - logits;
    return {{(int32_t)best, 1.0}};
  }
  std::vector<std::pair<int32_t, double>> c;
  c.reserve((size_t)vocab);
  double m = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) m = std::max(m, (double)logits[i] / opt_.temperature);
  for (int64_t i = 0; i < vocab; ++i) {
    const double z = (double)logits[i] / opt_.temperature;
    // exp(inf - inf) would be NaN: with a +inf logit only the +inf tokens keep any mass.
    const double p = std::isinf(m) ? (z == m ? 1.0 : 0.0) : std::exp(z - m);
    if (p > 0) c.push_back({(int32_t)i, p});  // a token of probability 0 is never drawn
  }
  auto by_prob = [](const std::pair<int32_t, double>& a, const std::pair<int32_t, double>& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  size_t keep = c.size();
  if (opt_.top_k > 0 && (size_t)opt_.top_k < keep) {
    keep = (size_t)opt_.top_k;
    std::partial_sort(c.begin(), c.begin() + (long)keep, c.end(), by_prob);
    c.resize(keep);
  } else {
    std::sort(c.begin(), c.end(), by_prob);
  }
  double total = 0;
  for (const auto& p : c) total += p.second;
  for (auto& p : c) p.second /= total;
  if (opt_.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < c.size()) {
      cum += c[n++].second;
      if (cum >= opt_.top_p) break;
    }
    c.resize(n);
    double t = 0;
    for (const auto& p : c) t += p.second;
    for (auto& p : c) p.second /= t;
  }
  return c;
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  const auto dist = distribution(logits, vocab);
  if (dist.size() == 1) return dist[0].first;
  const double u = uniform();
  double cum = 0;
  for (const auto& p : dist) {
    cum += p.second;
    if (u < cum) return p.first;
  }
  return dist.back().first;  // u within rounding of 1
}

}  // namespace tritune
