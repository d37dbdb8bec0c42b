#include "model/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernels/error.h"

namespace tritune {

PerplexityResult perplexity(Transformer& tf, const std::vector<int32_t>& tokens,
                            const PerplexityOptions& opt) {
  const int64_t n = (int64_t)tokens.size();
  if (n < 2) throw Error("perplexity: the text has " + std::to_string(n) + " tokens; need 2+");
  if (opt.ctx < 2 || opt.ctx > tf.context()) {
    throw Error("perplexity: --ctx " + std::to_string(opt.ctx) + " must be in [2, " +
                std::to_string(tf.context()) + "] (the transformer's context)");
  }
  const int64_t stride = opt.stride > 0 ? opt.stride : std::max<int64_t>(1, opt.ctx / 2);
  if (stride > opt.ctx) {
    throw Error("perplexity: --stride " + std::to_string(stride) + " exceeds --ctx " +
                std::to_string(opt.ctx) + " (tokens between windows would never be scored)");
  }
  const int64_t V = tf.hp().vocab;
  const auto t0 = std::chrono::steady_clock::now();
  PerplexityResult r;
  int64_t total_windows = 0;
  for (int64_t b = 0, e = 0; e < n; b += stride) {
    e = std::min(b + opt.ctx, n);
    ++total_windows;
  }
  double nll = 0;
  int64_t prev_end = 0;
  std::vector<float> logits;
  for (int64_t begin = 0; prev_end < n; begin += stride) {
    const int64_t end = std::min(begin + opt.ctx, n);
    // Targets: positions [first, end) not scored by an earlier window (never position 0).
    const int64_t first = std::max(prev_end, begin + 1);
    if (first < end) {
      const int64_t from = first - 1 - begin;  // logits row predicting `first`
      const int64_t rows = end - begin - from;
      logits.resize((size_t)(rows * V));
      tf.reset();
      tf.forward(tokens.data() + begin, end - begin, from, logits.data());
      for (int64_t p = first; p < end; ++p) {
        const float* l = logits.data() + (p - 1 - begin - from) * V;
        double m = -INFINITY;
        for (int64_t v = 0; v < V; ++v) {
          if (!std::isfinite(l[v])) {
            throw Error("perplexity: the logit of token " + std::to_string(v) + " at position " +
                        std::to_string(p - 1) + " is " + (std::isnan(l[v]) ? "NaN" : "infinite") +
                        " (the model produced invalid values)");
          }
          m = std::max(m, (double)l[v]);
        }
        double s = 0;
        for (int64_t v = 0; v < V; ++v) s += std::exp((double)l[v] - m);
        nll -= (double)l[tokens[(size_t)p]] - m - std::log(s);
        ++r.scored;
      }
      if (opt.on_logits) opt.on_logits(logits.data(), rows - 1);
    }
    prev_end = end;
    ++r.windows;
    if (opt.on_window) opt.on_window(r.windows, total_windows);
  }
  r.mean_nll = nll / (double)r.scored;
  r.ppl = std::exp(r.mean_nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace tritune
