#include "kernels/formats.h"

#include <cmath>
#include <cstring>
#include <string>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/i2s.h"

namespace tritune {

const char* act_type_name(ActType a) {
  switch (a) {
    case ActType::kInt8PerToken:
      return "int8_per_token";
    case ActType::kF32:
      return "f32";
  }
  return "?";
}

float ternarize_absmean(const float* w, int64_t count, int8_t* t) {
  double sum_abs = 0.0;
  float first_nonzero = 0.0f;
  bool already_ternary = true;
  for (int64_t i = 0; i < count; ++i) {
    const float v = w[i];
    if (!std::isfinite(v)) {
      throw Error("ternarize: weight " + std::to_string(i) + " is not finite");
    }
    sum_abs += std::fabs(v);
    if (v != 0.0f) {
      if (first_nonzero == 0.0f) first_nonzero = std::fabs(v);
      if (std::fabs(v) != first_nonzero) already_ternary = false;
    }
  }
  if (already_ternary && first_nonzero > 0.0f) {
    for (int64_t i = 0; i < count; ++i) t[i] = (int8_t)(w[i] > 0 ? 1 : (w[i] < 0 ? -1 : 0));
    return first_nonzero;
  }
  const float scale = (float)std::fmax(sum_abs / (double)count, 1e-8);
  for (int64_t i = 0; i < count; ++i) {
    float r = std::nearbyint(w[i] / scale);
    t[i] = (int8_t)std::fmin(std::fmax(r, -1.0f), 1.0f);
  }
  return scale;
}

namespace {

void check_shape(const char* fmt, int64_t n, int64_t k) {
  if (n <= 0 || k <= 0 || n > (int64_t(1) << 31) || k > (int64_t(1) << 31)) {
    throw Error(std::string(fmt) + ": impossible shape " + std::to_string(n) + "x" +
                std::to_string(k));
  }
}

// ---- i2_s -----------------------------------------------------------------------------------
PackedWeights i2s_pack(const float* w, int64_t n, int64_t k) {
  check_shape("i2_s", n, k);
  std::vector<int8_t> t((size_t)(n * k));
  const float scale = ternarize_absmean(w, n * k, t.data());
  return i2s_pack_ternary(t.data(), n, k, scale);
}

void i2s_unpack(const PackedWeights& p, float* w) {
  const std::vector<int8_t> t = i2s_unpack_ternary(p);
  for (size_t i = 0; i < t.size(); ++i) w[i] = (float)t[i] * p.scale;
}

void i2s_ref_gemm_int(const PackedWeights& p, const QuantizedActs& a, int32_t* raw) {
  const std::vector<int8_t> t = i2s_unpack_ternary(p);
  if (a.k != p.k) throw Error("i2_s reference: activation K mismatch");
  for (int64_t tok = 0; tok < a.tokens; ++tok) {
    const int8_t* x = a.row(tok);
    for (int64_t r = 0; r < p.n; ++r) {
      int32_t acc = 0;
      const int8_t* row = t.data() + r * p.k;
      for (int64_t c = 0; c < p.k; ++c) acc += (int32_t)row[c] * (int32_t)x[c];
      raw[tok * p.n + r] = acc;
    }
  }
}

void i2s_ref_gemm(const PackedWeights& p, const float* x, int64_t tokens, float* y) {
  const QuantizedActs a = quantize_acts(x, tokens, p.k, p.k);
  std::vector<int32_t> raw((size_t)(tokens * p.n));
  i2s_ref_gemm_int(p, a, raw.data());
  for (int64_t tok = 0; tok < tokens; ++tok) {
    for (int64_t r = 0; r < p.n; ++r) {
      y[tok * p.n + r] = i2s_dequant(raw[(size_t)(tok * p.n + r)], a.scale[tok], p.scale);
    }
  }
}

// ---- f32 / f16 ------------------------------------------------------------------------------
PackedWeights f32_pack(const float* w, int64_t n, int64_t k) {
  check_shape("f32", n, k);
  PackedWeights p;
  p.format = Format::kF32;
  p.n = n;
  p.k = k;
  p.data.resize((size_t)(n * k * 4));
  std::memcpy(p.data.data(), w, p.data.size());
  return p;
}

void f32_unpack(const PackedWeights& p, float* w) {
  std::memcpy(w, p.data.data(), p.data.size());
}

PackedWeights f16_pack(const float* w, int64_t n, int64_t k) {
  check_shape("f16", n, k);
  PackedWeights p;
  p.format = Format::kF16;
  p.n = n;
  p.k = k;
  p.data.resize((size_t)(n * k * 2));
  uint16_t* h = reinterpret_cast<uint16_t*>(p.data.data());
  for (int64_t i = 0; i < n * k; ++i) h[i] = float_to_half(w[i]);
  return p;
}

void f16_unpack(const PackedWeights& p, float* w) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p.data.data());
  for (int64_t i = 0; i < p.n * p.k; ++i) w[i] = half_to_float(h[i]);
}

// Float reference: products and sums in double, rounded once. Kernels accumulate in f32 in
// another order, so they are compared with a relative tolerance (tests state it).
template <void (*Unpack)(const PackedWeights&, float*)>
void fp_ref_gemm(const PackedWeights& p, const float* x, int64_t tokens, float* y) {
  std::vector<float> w((size_t)(p.n * p.k));
  Unpack(p, w.data());
  for (int64_t tok = 0; tok < tokens; ++tok) {
    for (int64_t r = 0; r < p.n; ++r) {
      double acc = 0.0;
      for (int64_t c = 0; c < p.k; ++c) acc += (double)w[(size_t)(r * p.k + c)] * x[tok * p.k + c];
      y[tok * p.n + r] = (float)acc;
    }
  }
}

const std::vector<FormatTraits> kFormats = {
    {Format::kI2S, "i2_s", 2.0, kI2SBlock, kI2SBlockBytes, true, ActType::kInt8PerToken, "i2s",
     "bitnet.cpp I2_S: codes w+1, 128 weights per 32-byte block, f32 per-tensor scale", i2s_pack,
     i2s_unpack, i2s_ref_gemm, i2s_ref_gemm_int},
    {Format::kF32, "f32", 32.0, 1, 4, false, ActType::kF32, "fp",
     "full-precision baseline (f32 weights and activations)", f32_pack, f32_unpack,
     fp_ref_gemm<f32_unpack>, nullptr},
    {Format::kF16, "f16", 16.0, 1, 2, false, ActType::kF32, "fp",
     "half-precision weights, f32 activations and accumulation (llama.cpp F16 baseline)", f16_pack,
     f16_unpack, fp_ref_gemm<f16_unpack>, nullptr},
};

}  // namespace

const std::vector<FormatTraits>& all_formats() {
  return kFormats;
}

const FormatTraits& format_traits(Format f) {
  static_assert((int)Format::kCount == 3, "add the new format's row to kFormats");
  const int i = (int)f;
  if (i < 0 || i >= (int)kFormats.size() || kFormats[(size_t)i].id != f) {
    throw Error("format_traits: format id " + std::to_string(i) + " has no row");
  }
  return kFormats[(size_t)i];
}

const FormatTraits& find_format(const std::string& name) {
  std::string known;
  for (const auto& f : kFormats) {
    if (name == f.name) return f;
    known += (known.empty() ? "" : ", ") + std::string(f.name);
  }
  throw Error("unknown format '" + name + "' (known: " + known + ")");
}

int64_t format_bytes(Format f, int64_t n, int64_t k) {
  const FormatTraits& t = format_traits(f);
  if (k % t.block_size != 0) {
    throw Error(std::string(t.name) + ": K=" + std::to_string(k) + " is not a multiple of " +
                std::to_string(t.block_size));
  }
  int64_t bytes = n * (k / t.block_size) * t.bytes_per_block;
  if (f == Format::kI2S) bytes += kI2STail;
  return bytes;
}

}  // namespace tritune
