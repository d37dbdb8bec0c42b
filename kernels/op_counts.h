// Per-operation counts a kernel family reports about itself: how many integer and floating-point
// adds and multiplies one call does, and how many bytes of weights and activations it moves. The
// energy model (energy/energy_model.h) turns them into joules where no energy counter exists;
// the counts are derived from the format registry (kernels/formats.h), so a new format is
// counted without an edit here as long as its traits say what it is (ternary or float, its
// activation type, its bits per weight).
#pragma once
#include <cstdint>
#include <string>

#include "kernels/formats.h"

namespace tritune {

struct OpCounts {
  double int8_add = 0, int8_mul = 0;  // integer ops (int8 operands; accumulators are wider)
  double fp16_add = 0, fp16_mul = 0;
  double fp32_add = 0, fp32_mul = 0;
  double bytes_weights = 0;  // weight storage read once per call (streamed from memory)
  double bytes_acts = 0;     // activations read plus outputs written
  double macs = 0;           // multiply-accumulates of the matrix product (n * k * tokens)

  OpCounts& operator+=(const OpCounts& o);
  OpCounts operator*(double s) const;  // e.g. counts of one call times the number of calls
  double total_ops() const;
  std::string to_string() const;  // "macs=.. int8_add=.. .. bytes_w=.. bytes_a=.."
};

// What to count.
enum class OpScope {
  // Only the multiply-accumulate arithmetic of the matrix product, the accounting of the BitNet
  // papers (b1.58 2402.17764 §energy: "arithmetic operations energy ... for matrix
  // multiplication"): a ternary weight makes each MAC one INT8 add, a float one a mul and an add.
  kMatmul,
  // Everything the kernel does per call: the matrix product plus the per-token activation
  // quantization (absmax, scale, round), the I2_S "- sum(a)" correction and the dequantization
  // of every output. This is what a measured kernel spends, so it is the default.
  kKernel,
};

// Counts of one call y[tokens x n] = x[tokens x k] * W[n x k]^T in format f. Arithmetic is
// charged at the precision the papers' model charges it: ternary weights with int8 activations
// -> one INT8 add per MAC (no multiply); float weights -> one mul + one add per MAC at the
// weight precision (<= 16 bits per weight: FP16, else FP32; note the f16 CPU kernels widen to
// f32 before the FMA, the model still charges the FP16 costs as the papers' FP16 baselines do).
// Bytes: weights from the format's bits per weight (n * k * bpw / 8, read once per call:
// activations of all tokens reuse them), activations at their own type, outputs f32.
// Throws Error on a non-positive shape.
OpCounts op_counts(Format f, int64_t n, int64_t k, int64_t tokens,
                   OpScope scope = OpScope::kKernel);

// One line saying how op_counts charges format f ("ternary x int8: 1 int8 add per MAC ...").
std::string op_count_rule(Format f);

}  // namespace tritune
