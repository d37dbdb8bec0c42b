// Token sampling from logits: greedy, temperature, top-k, top-p (nucleus), with a seeded
// generator of our own (xoshiro256**), so a seed gives the same tokens on every platform and
// standard library. Order as in Hugging Face generate: temperature, then top-k, then top-p.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace tritune {

struct SamplerOptions {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off; keep the smallest set with probability >= top_p
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws Error on a negative or non-finite temperature, top_k < 0, top_p outside (0, 1].
  explicit Sampler(const SamplerOptions& opt);
  const SamplerOptions& options() const { return opt_; }

  // Throws Error if a logit is NaN or every logit is -inf (a broken model must not look like a
  // choice). A -inf logit masks its token; +inf tokens, if any, share all the probability.
  int32_t sample(const float* logits, int64_t vocab);

  // The distribution sample() draws from: (token, probability) sorted by probability
  // (descending, then id), renormalized after the filters; tokens of probability 0 are left
  // out. Greedy: one entry with 1.
  std::vector<std::pair<int32_t, double>> distribution(const float* logits, int64_t vocab) const;

  // Uniform double in [0, 1) from the generator (53 bits).
  double uniform();

 private:
  SamplerOptions opt_;
  uint64_t s_[4];
};

}  // namespace tritune
