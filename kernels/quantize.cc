#include "kernels/quantize.h"

#include <cmath>
#include <string>

#include "kernels/error.h"

namespace tritune {

float quantize_row(const float* x, int64_t k, int8_t* q, int32_t* sum) {
  float amax = 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    const float v = x[j];
    if (!std::isfinite(v)) {
      throw Error("quantize_acts: element " + std::to_string(j) + " is " +
                  (std::isnan(v) ? std::string("NaN") : std::string("Inf")) +
                  "; activations must be finite (check the layer that produced them)");
    }
    amax = std::fmax(amax, std::fabs(v));
  }
  const float s = 127.0f / std::fmax(amax, 1e-5f);
  int32_t acc = 0;
  for (int64_t j = 0; j < k; ++j) {
    // nearbyint uses the current rounding mode, which is round-half-even by default.
    float r = std::nearbyint(x[j] * s);
    r = std::fmin(std::fmax(r, -128.0f), 127.0f);
    q[j] = (int8_t)r;
    acc += (int32_t)r;
  }
  *sum = acc;
  return s;
}

QuantizedActs quantize_acts(const float* x, int64_t tokens, int64_t k, int64_t x_stride,
                            int64_t k_align) {
  if (tokens < 0 || k <= 0 || x_stride < k || k_align <= 0) {
    throw Error("quantize_acts: bad shape tokens=" + std::to_string(tokens) +
                " k=" + std::to_string(k) + " stride=" + std::to_string(x_stride));
  }
  QuantizedActs a;
  a.tokens = tokens;
  a.k = k;
  a.k_stride = (k + k_align - 1) / k_align * k_align;
  a.q.assign((size_t)(tokens * a.k_stride), 0);
  a.scale.resize((size_t)tokens);
  a.sum.resize((size_t)tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    try {
      a.scale[t] = quantize_row(x + t * x_stride, k, a.q.data() + t * a.k_stride, &a.sum[t]);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (token " + std::to_string(t) + ")");
    }
  }
  return a;
}

}  // namespace tritune
