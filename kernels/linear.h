// A linear layer prepared for the kernel path: the weights are repacked once into the layout of
// their kernel family, and every call runs quantize -> dispatched kernel variant -> dequantize.
// The variant is chosen per (format, shape, token bucket, threads) by the dispatch table (tuned
// winners where the tuner recorded them, the AOT default otherwise).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  // Where those bytes start: weight_runs() runs of weight_bytes() / weight_runs() bytes,
  // weight_run_stride() apart (one run, in the order the kernel streams it, unless the layer is a
  // slice of a fused group whose tiles are in several parts: kernels/i2s.h).
  virtual const uint8_t* weight_data() const = 0;
  virtual int64_t weight_runs() const { return 1; }
  virtual int64_t weight_run_stride() const { return weight_bytes(); }
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

// Layers that read the same input (a layer's q, k and v; its gate and up) run as one kernel
// call: their tiles sit back to back in one buffer, so one GEMV (one parallel loop, one pass of
// the threads over contiguous weights) streams all of them. Each member is still a Linear of
// its own (a view into the group's tiles) with the same results, bit for bit: the kernel
// computes every row on its own, and each member's rows are dequantized with its own scale.
class LinearGroup {
 public:
  // Takes the members' weights when they can be fused (all i2_s, one K within the kernels'
  // limit, at least two); else returns nullptr and leaves them untouched.
  static std::shared_ptr<LinearGroup> create(std::vector<PackedWeights*> members);

  int size() const;
  int64_t n() const;  // all members' rows, each padded to 16
  int64_t k() const;
  // Member i as a Linear (a view that keeps the group alive).
  std::unique_ptr<Linear> member(int i) const;
  // ys[i][t * n_i + j]: every member's output from one kernel call on activations `a`.
  void forward_q(const QuantizedActs& a, const std::vector<float*>& ys) const;
  std::string variant_for(int64_t tokens) const;

  struct Impl;

 private:
  explicit LinearGroup(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace tritune
