#include "kernels/op_counts.h"

#include <cstdio>

#include "kernels/error.h"

namespace tritune {

OpCounts& OpCounts::operator+=(const OpCounts& o) {
  int8_add += o.int8_add;
  int8_mul += o.int8_mul;
  fp16_add += o.fp16_add;
  fp16_mul += o.fp16_mul;
  fp32_add += o.fp32_add;
  fp32_mul += o.fp32_mul;
  bytes_weights += o.bytes_weights;
  bytes_acts += o.bytes_acts;
  macs += o.macs;
  return *this;
}

OpCounts OpCounts::operator*(double s) const {
  OpCounts r = *this;
  r.int8_add *= s;
  r.int8_mul *= s;
  r.fp16_add *= s;
  r.fp16_mul *= s;
  r.fp32_add *= s;
  r.fp32_mul *= s;
  r.bytes_weights *= s;
  r.bytes_acts *= s;
  r.macs *= s;
  return r;
}

double OpCounts::total_ops() const {
  return int8_add + int8_mul + fp16_add + fp16_mul + fp32_add + fp32_mul;
}

std::string OpCounts::to_string() const {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "macs=%.4g int8_add=%.4g int8_mul=%.4g fp16_add=%.4g fp16_mul=%.4g "
                "fp32_add=%.4g fp32_mul=%.4g bytes_w=%.4g bytes_a=%.4g",
                macs, int8_add, int8_mul, fp16_add, fp16_mul, fp32_add, fp32_mul, bytes_weights,
                bytes_acts);
  return buf;
}

namespace {

// The arithmetic class of a format, read from its traits (no per-format switch: a new ternary
// or float format is counted by the same rules).
enum class MacClass { kTernaryInt8, kFp16, kFp32 };

MacClass mac_class(const FormatTraits& t) {
  if (t.ternary) return MacClass::kTernaryInt8;
  return t.bits_per_weight <= 16.0 ? MacClass::kFp16 : MacClass::kFp32;
}

double act_bytes(ActType a) {
  switch (a) {
    case ActType::kInt8PerToken:
      return 1.0;
    case ActType::kF32:
      return 4.0;
  }
  return 4.0;
}

}  // namespace

OpCounts op_counts(Format f, int64_t n, int64_t k, int64_t tokens, OpScope scope) {
  if (n <= 0 || k <= 0 || tokens <= 0) {
    throw Error("op_counts: shape n=" + std::to_string(n) + " k=" + std::to_string(k) +
                " tokens=" + std::to_string(tokens) + " must be positive");
  }
  const FormatTraits& t = format_traits(f);
  const double dn = (double)n, dk = (double)k, dt = (double)tokens;
  const double macs = dn * dk * dt;
  OpCounts c;
  c.macs = macs;
  switch (mac_class(t)) {
    case MacClass::kTernaryInt8:
      c.int8_add = macs;
      break;  // +a, -a or skip: one add
    case MacClass::kFp16:
      c.fp16_mul = c.fp16_add = macs;
      break;
    case MacClass::kFp32:
      c.fp32_mul = c.fp32_add = macs;
      break;
  }
  c.bytes_weights = dn * dk * t.bits_per_weight / 8.0;
  c.bytes_acts = dt * dk * act_bytes(t.act) + dt * dn * 4.0;
  if (scope == OpScope::kMatmul) return c;

  if (t.act == ActType::kInt8PerToken) {
    // quantize_acts per token: absmax over K (a compare ~ an fp32 add), one reciprocal, K
    // scalings (fp32 mul; the round is folded in), and the sum of the K codes (integer adds).
    c.fp32_add += dt * dk;
    c.fp32_mul += dt * (dk + 1.0);
    c.int8_add += dt * dk;
    // Per output: the I2_S "- sum(a)" correction (an integer add) and the dequantization by
    // 1 / (s * weight_scale) (one fp32 mul; the product is formed once per token).
    c.int8_add += dt * dn;
    c.fp32_mul += dt * dn + dt;
  }
  return c;
}

std::string op_count_rule(Format f) {
  const FormatTraits& t = format_traits(f);
  std::string r = std::string(t.name) + ": ";
  switch (mac_class(t)) {
    case MacClass::kTernaryInt8:
      r += "ternary weights x int8 activations: 1 INT8 add per MAC";
      break;
    case MacClass::kFp16:
      r += "FP16 mul + FP16 add per MAC";
      break;
    case MacClass::kFp32:
      r += "FP32 mul + FP32 add per MAC";
      break;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "; weights %.3g bits each, activations %s", t.bits_per_weight,
                act_type_name(t.act));
  r += buf;
  if (t.act == ActType::kInt8PerToken) {
    r += "; kernel scope adds activation quantization and per-output dequantization";
  }
  return r;
}

}  // namespace tritune
