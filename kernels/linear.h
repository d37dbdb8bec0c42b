// A linear layer prepared for the kernel path: the weights are repacked once into the layout of
// their kernel family, and every call runs quantize -> dispatched kernel variant -> dequantize.
// The variant is chosen per (format, shape, token bucket, threads) by the dispatch table (tuned
// winners where the tuner recorded them, the AOT default otherwise).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/formats.h"
#include "kernels/quantize.h"

namespace tritune {

class Linear {
 public:
  virtual ~Linear() = default;
  // Takes the weights (any registry format). i2_s is repacked to the r16k16 kernel layout and
  // the storage bytes are released.
  static std::unique_ptr<Linear> create(PackedWeights w, const std::string& name = "");

  virtual Format format() const = 0;
  virtual int64_t n() const = 0;
  virtual int64_t k() const = 0;
  // Bytes the kernel reads per call for the weights (roofline / bytes-per-token accounting).
  virtual int64_t weight_bytes() const = 0;
  // Where those bytes start (weight_bytes() of them, in the order the kernel streams them).
  virtual const uint8_t* weight_data() const = 0;
  // The k_align quantize_acts() must use for forward_q (16 for i2_s).
  virtual int64_t act_align() const = 0;

  // y[t*ldy + j] for j < n(): float activations in, float out (quantizes internally for int8
  // formats with the math contract).
  virtual void forward(const float* x, int64_t tokens, float* y, int64_t ldy) const = 0;
  // Int8 formats: activations already quantized (q/k/v and gate/up share one quantization).
  // a.k == k(), a.k_stride a multiple of act_align().
  virtual void forward_q(const QuantizedActs& a, float* y, int64_t ldy) const = 0;
  // Int8 formats: the exact integer result raw = sum_k x_q * t (bit-exact validation). Rows are
  // written at kernel width: ldy must be >= raw_width() (n rounded up to 16 for i2_s); entries
  // n..raw_width()-1 of each row are padding.
  virtual void forward_raw(const QuantizedActs& a, int32_t* raw, int64_t ldy) const = 0;
  virtual int64_t raw_width() const { return n(); }
  // Name of the variant a call with this many tokens runs.
  virtual std::string variant_for(int64_t tokens) const = 0;
};

}  // namespace tritune
