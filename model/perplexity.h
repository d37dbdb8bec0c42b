// Perplexity over a token sequence with strided windows (the Hugging Face recipe): windows of
// `ctx` tokens start every `stride` tokens; each token is scored once, by the window that ends
// nearest after it, so with stride < ctx every scored token has at least ctx - stride tokens
// of context (except at the start). The first token is never scored (nothing predicts it).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/transformer.h"

namespace tritune {

struct PerplexityOptions {
  int64_t ctx = 512;
  int64_t stride = 0;  // 0: ctx / 2
  // Called with the logits of every scored position, in order (rows of vocab floats), e.g. to
  // write --logits-out.
  std::function<void(const float* logits, int64_t rows)> on_logits;
  // Called after each window (windows done, total), e.g. to print progress.
  std::function<void(int64_t, int64_t)> on_window;
};

struct PerplexityResult {
  double ppl = 0, mean_nll = 0;
  int64_t scored = 0, windows = 0;
  double seconds = 0;
};

// Resets the transformer for every window. Throws Error if ctx exceeds its context, stride is
// out of range, or there are fewer than 2 tokens.
PerplexityResult perplexity(Transformer& tf, const std::vector<int32_t>& tokens,
                            const PerplexityOptions& opt);

}  // namespace tritune
