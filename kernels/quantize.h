// Activation quantizer of BitNet b1.58 (the math contract in the design):
//   s = 127 / max(max_j |x_j|, 1e-5)      per token
//   x_q = clamp(round_half_even(x * s), -128, 127)
//   sum = sum_j x_q                       kept per token (the I2_S kernels subtract it)
// Non-finite input is refused with an error naming the token and element.
#pragma once
#include <cstdint>
#include <vector>

namespace tritune {

struct QuantizedActs {
  int64_t tokens = 0;
  int64_t k = 0;             // logical length of a token
  int64_t k_stride = 0;      // row stride of q (>= k; the tail k..k_stride is zero)
  std::vector<int8_t> q;     // tokens * k_stride
  std::vector<float> scale;  // s per token (127 / absmax)
  std::vector<int32_t> sum;  // sum of x_q per token

  const int8_t* row(int64_t t) const { return q.data() + t * k_stride; }
};

// Quantizes `tokens` rows of `k` floats (row stride `x_stride`, >= k). `k_align` rounds the row
// stride of the result up (zero-filled) so kernels that read K in blocks need no tail handling.
QuantizedActs quantize_acts(const float* x, int64_t tokens, int64_t k, int64_t x_stride,
                            int64_t k_align = 1);

// One token; returns the scale and writes q (k values) and the sum.
float quantize_row(const float* x, int64_t k, int8_t* q, int32_t* sum);

}  // namespace tritune
