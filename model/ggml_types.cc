#include "model/ggml_types.h"

// No a*b+c contraction into FMA: the quantizer's ISA clones must round like the baseline build
// (the same model bytes from every machine).
#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/half.h"

namespace tritune::ggml {

namespace {

constexpr int64_t kQK = 256;  // super-block of the K and TQ types

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// ---- dequantizers ----------------------------------------------------------------------------
void deq_f32(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, (size_t)n * 4);
}

void deq_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(load_u16(src + 2 * i));
}

void deq_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(load_u16(src + 2 * i));
}

void deq_q8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = src + b * 34;
    const float d = half_to_float(load_u16(blk));
    for (int j = 0; j < 32; ++j) dst[b * 32 + j] = (float)(int8_t)blk[2 + j] * d;
  }
}

// Q6_K: each half (128 values) of a block uses 64 ql bytes, 32 qh bytes and 8 scales. Value
// e of a half (l = e % 32, g = e / 32) takes its low nibble from ql[l + 32*(g&1)] (low nibble
// for g < 2, high for g >= 2) and its top 2 bits from qh[l] bits 2g..2g+1; scale index e / 16.
void deq_q6_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = src + b * 210;
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = half_to_float(load_u16(blk + 208));
    float* y = dst + b * kQK;
    for (int h = 0; h < 2; ++h) {
      for (int e = 0; e < 128; ++e) {
        const int l = e % 32, g = e / 32;
        const uint8_t lo_byte = ql[h * 64 + l + 32 * (g & 1)];
        const int lo = g < 2 ? (lo_byte & 0xF) : (lo_byte >> 4);
        const int hi = (qh[h * 32 + l] >> (2 * g)) & 3;
        const int q = (lo | (hi << 4)) - 32;
        y[h * 128 + e] = d * (float)sc[h * 8 + e / 16] * (float)q;
      }
    }
  }
}

// TQ1_0 trit n of byte b: the byte is a fixed-point fraction q/243 * 256 (rounded up), so
// multiplying by 3^n (mod 256) shifts trit n to the top and (x * 3) >> 8 extracts it.
inline int tq1_trit(uint8_t byte, int n) {
  static const uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = (uint8_t)(byte * kPow3[n]);
  return ((uint16_t)q * 3) >> 8;
}

// Order of values in a TQ1_0 block: qs[0..31] hold values m + 32n (n = 0..4), qs[32..47] hold
// 160 + m + 16n, qh[0..3] hold 240 + j + 4n (n = 0..3).
template <typename Emit>
void tq1_block(const uint8_t* blk, Emit emit) {
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 32; ++m) emit(m + 32 * n, tq1_trit(blk[m], n));
  }
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 16; ++m) emit(160 + m + 16 * n, tq1_trit(blk[32 + m], n));
  }
  for (int n = 0; n < 4; ++n) {
    for (int j = 0; j < 4; ++j) emit(240 + j + 4 * n, tq1_trit(blk[48 + j], n));
  }
}

void deq_tq1_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = src + b * 54;
    const float d = half_to_float(load_u16(blk + 52));
    float* y = dst + b * kQK;
    tq1_block(blk, [&](int i, int code) { y[i] = (float)(code - 1) * d; });
  }
}

// TQ2_0: in each 128-value chunk, byte m holds values m, m+32, m+64, m+96 in bits 0-1 .. 6-7.
void deq_tq2_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = src + b * 66;
    const float d = half_to_float(load_u16(blk + 64));
    for (int c = 0; c < 2; ++c) {
      for (int g = 0; g < 4; ++g) {
        for (int m = 0; m < 32; ++m) {
          const int code = (blk[c * 32 + m] >> (2 * g)) & 3;
          dst[b * kQK + c * 128 + g * 32 + m] = (float)(code - 1) * d;
        }
      }
    }
  }
}

const TypeInfo kTypes[] = {
    {kF32, "F32", 1, 4, deq_f32},
    {kF16, "F16", 1, 2, deq_f16},
    {kQ4_0, "Q4_0", 32, 18, nullptr},
    {kQ4_1, "Q4_1", 32, 20, nullptr},
    {kQ5_0, "Q5_0", 32, 22, nullptr},
    {kQ5_1, "Q5_1", 32, 24, nullptr},
    {kQ8_0, "Q8_0", 32, 34, deq_q8_0},
    {kQ8_1, "Q8_1", 32, 36, nullptr},
    {kQ2_K, "Q2_K", 256, 84, nullptr},
    {kQ3_K, "Q3_K", 256, 110, nullptr},
    {kQ4_K, "Q4_K", 256, 144, nullptr},
    {kQ5_K, "Q5_K", 256, 176, nullptr},
    {kQ6_K, "Q6_K", 256, 210, deq_q6_k},
    {kQ8_K, "Q8_K", 256, 292, nullptr},
    {kI8, "I8", 1, 1, nullptr},
    {kI16, "I16", 1, 2, nullptr},
    {kI32, "I32", 1, 4, nullptr},
    {kI64, "I64", 1, 8, nullptr},
    {kF64, "F64", 1, 8, nullptr},
    {kBF16, "BF16", 1, 2, deq_bf16},
    {kTQ1_0, "TQ1_0", 256, 54, deq_tq1_0},
    {kTQ2_0, "TQ2_0", 256, 66, deq_tq2_0},
    // I2_S: block 1 / 1 byte is how bitnet.cpp declares it (row strides as if int8); the real
    // size is special-cased in tensor_bytes() and row_bytes().
    {kI2_S, "I2_S", 1, 1, nullptr},
};

}  // namespace

const TypeInfo* find_type(uint32_t id) {
  for (const auto& t : kTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

std::string type_name(uint32_t id) {
  if (const TypeInfo* t = find_type(id)) return t->name;
  switch (id) {
    case 37:
      return "type 37 (bitnet.cpp I8_S, an activation type)";
    case 38:
      return "type 38 (bitnet.cpp TL1; re-convert with -q i2_s)";
    case 39:
      return "type 39 (bitnet.cpp TL2 or upstream MXFP4; re-convert with -q i2_s)";
    default:
      return "type " + std::to_string(id) + " (unknown)";
  }
}

std::string readable_type_names() {
  std::string s;
  for (const auto& t : kTypes) {
    if (t.dequant || t.id == kI2_S) s += (s.empty() ? "" : ", ") + std::string(t.name);
  }
  return s;
}

bool can_dequantize(uint32_t id) {
  const TypeInfo* t = find_type(id);
  return t && (t->dequant || id == kI2_S);
}

int64_t tensor_bytes(uint32_t id, const std::vector<int64_t>& ne, const std::string& what) {
  const TypeInfo* t = find_type(id);
  if (!t) throw Error(what + ": tensor type " + type_name(id) + " is not supported");
  int64_t count = 1;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] < 0) {
      throw Error(what + ": dimension " + std::to_string(i) + " is negative (" +
                  std::to_string(ne[i]) + ")");
    }
    if (__builtin_mul_overflow(count, ne[i], &count)) {
      throw Error(what + ": element count overflows 64 bits");
    }
  }
  const int64_t ne0 = ne.empty() ? 1 : ne[0];
  if (id == kI2_S) {
    if (ne0 % 4 != 0) {
      throw Error(what + ": I2_S row length " + std::to_string(ne0) + " is not a multiple of 4");
    }
    return count / 4 + 32;
  }
  if (ne0 % t->block != 0) {
    throw Error(what + ": row length " + std::to_string(ne0) + " is not a multiple of the " +
                t->name + " block (" + std::to_string(t->block) + ")");
  }
  int64_t bytes;
  if (__builtin_mul_overflow(count / t->block, t->block_bytes, &bytes)) {
    throw Error(what + ": byte size overflows 64 bits");
  }
  return bytes;
}

int64_t row_bytes(uint32_t id, int64_t ne0) {
  if (id == kI2_S) return ne0 / 4;
  const TypeInfo* t = find_type(id);
  if (!t) throw Error("row_bytes: tensor type " + type_name(id) + " is not supported");
  return ne0 / t->block * t->block_bytes;
}

void dequantize_rows(uint32_t id, const uint8_t* tensor, int64_t cols, int64_t nrows, int64_t row0,
                     int64_t count, float* out) {
  if (row0 < 0 || count < 0 || row0 + count > nrows) {
    throw Error("dequantize_rows: rows [" + std::to_string(row0) + ", " +
                std::to_string(row0 + count) + ") outside 0.." + std::to_string(nrows));
  }
  if (id == kI2_S) {
    float scale;
    std::memcpy(&scale, tensor + nrows * cols / 4, 4);
    for (int64_t r = row0; r < row0 + count; ++r) {
      const uint8_t* row = tensor + r * (cols / 4);
      float* y = out + (r - row0) * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t blk = c / 128, g = (c % 128) / 32, p = c % 32;
        const int code = (row[blk * 32 + p] >> (6 - 2 * g)) & 3;
        if (code == 3) {
          throw Error("I2_S: code 3 (unused) at row " + std::to_string(r) + " column " +
                      std::to_string(c) + "; the tensor is corrupt");
        }
        y[c] = (float)(code - 1) * scale;
      }
    }
    return;
  }
  const TypeInfo* t = find_type(id);
  if (!t || !t->dequant) {
    throw Error("cannot read values of tensor type " + type_name(id) +
                " (readable: " + readable_type_names() + ")");
  }
  const int64_t rb = row_bytes(id, cols);
  t->dequant(tensor + row0 * rb, out, count * cols);
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

// ---- quantizers ------------------------------------------------------------------------------
namespace {
// The quantized types have no code for NaN or infinity, and their f16 block scales bound the
// magnitudes they hold (converting a NaN or an overflowed scale's quotient to an integer code is
// undefined behaviour): a damaged source tensor is refused, its first bad value named.
// `limit`: the largest |x| whose block scale stays a finite f16 (65504 x the codes' range).
void require_encodable(const float* x, int64_t n, const char* type, float limit) {
  for (int64_t i = 0; i < n; ++i) {
    if (!(std::fabs(x[i]) <= limit)) {
      const std::string what = std::isnan(x[i])   ? "NaN"
                               : std::isinf(x[i]) ? "infinite"
                                                  : std::to_string(x[i]);
      char lim[32];
      std::snprintf(lim, sizeof lim, "%.3g", (double)limit);
      throw Error("value " + std::to_string(i) + " is " + what + ", which " + type +
                  " cannot encode (|x| <= " + lim + "; the source tensor is damaged)");
    }
  }
}
}  // namespace

void quantize_q8_0(const float* x, uint8_t* dst, int64_t n) {
  require_encodable(x, n, "Q8_0", 65504.0f * 127.0f);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t* blk = dst + b * 34;
    store_u16(blk, float_to_half(d));
    for (int j = 0; j < 32; ++j) blk[2 + j] = (uint8_t)(int8_t)std::lround(v[j] * id);
  }
}

namespace {

// Round to nearest, ties to even, for |v| < 2^22 (the default rounding mode; no -ffast-math
// here): branch-free and vectorizable in baseline x86-64, where nearbyint is a library call.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// The step of one 16-value group of a Q6_K block, codes l in [-32, 31]: a search over steps
// around max / 32 that minimises the error weighted by x^2 (large values, which dominate a
// dot product, are matched best), each candidate's step refitted by least squares for its
// codes. The sign is the max-magnitude value's, negated: that value lands on -32, so the
// group uses the range's longer end. Returns 0 for an all-zero group.
__attribute__((always_inline)) inline float q6k_group_step(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 16; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < 1e-30f) return 0.0f;
  // The candidates in lanes, each summed over the values in order: vectorizes without
  // reassociating anything. Lanes 19..23 repeat the last candidate (a tie keeps the first).
  constexpr int kCands = 24;
  float inv[kCands], lx[kCands], l2[kCands];
  for (int c = 0; c < kCands; ++c) {
    inv[c] = -(32.0f + 0.1f * (float)(std::min(c, 18) - 9)) / max;
    lx[c] = 0.0f;
    l2[c] = 0.0f;
  }
  for (int j = 0; j < 16; ++j) {
    const float xj = x[j], w = xj * xj, wx = w * xj;
    for (int c = 0; c < kCands; ++c) {
      // inv * x lies in [-33, 33]; a NaN or inf makes the sums NaN and the candidate loses.
      const float r = round_even(inv[c] * xj);
      const float l = r < -32.0f ? -32.0f : (r > 31.0f ? 31.0f : r);
      lx[c] += wx * l;
      l2[c] += w * l * l;
    }
  }
  float best_step = 0.0f, best = -1.0f;  // best: sumlx^2 / suml2 (the error it removes)
  for (int c = 0; c < kCands; ++c) {
    if (l2[c] > 0.0f && lx[c] * lx[c] > best * l2[c]) {
      best = lx[c] * lx[c] / l2[c];
      best_step = lx[c] / l2[c];
    }
  }
  return best_step;
}

// The 16 group steps of a block, vectorized per ISA level (identical results).
__attribute__((always_inline)) inline void q6k_block_steps_body(const float* v, float* step) {
  for (int s = 0; s < 16; ++s) step[s] = q6k_group_step(v + s * 16);
}
TRITUNE_ISA_CLONES(void, q6k_block_steps, (const float* v, float* step), (v, step),
                   q6k_block_steps_body)

}  // namespace

void quantize_q6_k(const float* x, uint8_t* dst, int64_t n) {
  quantize_q6_k(x, dst, n, selected_isa());
}

void quantize_q6_k(const float* x, uint8_t* dst, int64_t n, Isa isa) {
  // A group's step is about max / 32, the block scale the largest step / 128.
  require_encodable(x, n, "Q6_K", 65504.0f * 128.0f * 30.0f);
  const auto block_steps = q6k_block_steps_for(isa);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* v = x + b * kQK;
    uint8_t* blk = dst + b * 210;
    std::memset(blk, 0, 210);
    // Each group's step, then the block's: d * sc[s] with sc in [-128, 127], the largest step
    // (by magnitude) on -128.
    float step[16];
    float max_step = 0.0f;
    block_steps(v, step);
    for (int s = 0; s < 16; ++s) {
      if (std::fabs(step[s]) > std::fabs(max_step)) max_step = step[s];
    }
    const uint16_t d_half = float_to_half(max_step / -128.0f);
    const float d = half_to_float(d_half);
    store_u16(blk + 208, d_half);
    int8_t* sc = reinterpret_cast<int8_t*>(blk + 192);
    for (int s = 0; s < 16; ++s) {
      const float r = d != 0.0f ? round_even(step[s] / d) : 0.0f;
      sc[s] = (int8_t)(r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r));
    }
    for (int e = 0; e < kQK; ++e) {
      const float st = d * (float)sc[e / 16];
      float r = st != 0.0f ? v[e] / st : 0.0f;
      r = r < -32.0f ? -32.0f : (r > 31.0f ? 31.0f : r);  // clamp first: round_even's range
      const int u = (int)round_even(r) + 32;
      const int h = e / 128, l = (e % 128) % 32, g = (e % 128) / 32;
      uint8_t& lo = blk[h * 64 + l + 32 * (g & 1)];
      lo |= (uint8_t)(g < 2 ? (u & 0xF) : ((u & 0xF) << 4));
      blk[128 + h * 32 + l] |= (uint8_t)((u >> 4) << (2 * g));
    }
  }
}

namespace {

// Encodes trits (codes 0..2, first most significant) as llama.cpp does: q = sum code * 3^k,
// stored as ceil(q * 256 / 243) so that the decoder's multiply-and-shift recovers each trit.
uint8_t tq1_encode(const int* codes, int count) {
  int q = 0;
  for (int i = 0; i < count; ++i) q = q * 3 + codes[i];
  for (int i = count; i < 5; ++i) q *= 3;  // qh bytes hold 4 trits, shifted to the top
  return (uint8_t)((q * 256 + 242) / 243);
}

template <typename CodeAt>
void tq1_block_encode(CodeAt code_at, uint8_t* blk) {
  int c[5];
  for (int m = 0; m < 32; ++m) {
    for (int n = 0; n < 5; ++n) c[n] = code_at(m + 32 * n);
    blk[m] = tq1_encode(c, 5);
  }
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 5; ++n) c[n] = code_at(160 + m + 16 * n);
    blk[32 + m] = tq1_encode(c, 5);
  }
  for (int j = 0; j < 4; ++j) {
    for (int n = 0; n < 4; ++n) c[n] = code_at(240 + j + 4 * n);
    blk[48 + j] = tq1_encode(c, 4);
  }
}

template <typename CodeAt>
void tq2_block_encode(CodeAt code_at, uint8_t* blk) {
  for (int c = 0; c < 2; ++c) {
    for (int m = 0; m < 32; ++m) {
      uint8_t q = 0;
      for (int g = 0; g < 4; ++g) q |= (uint8_t)(code_at(c * 128 + g * 32 + m) << (2 * g));
      blk[c * 32 + m] = q;
    }
  }
}

int code_of(float v, float id) {
  long q = std::lround(v * id);
  q = q < -1 ? -1 : (q > 1 ? 1 : q);
  return (int)q + 1;
}

void check_trit(int8_t v, int64_t i) {
  if (v < -1 || v > 1) {
    throw Error("TQ packer: value " + std::to_string(i) + " is " + std::to_string((int)v) +
                ", not in {-1, 0, +1}");
  }
}

}  // namespace

void quantize_tq1_0(const float* x, uint8_t* dst, int64_t n) {
  require_encodable(x, n, "TQ1_0", 65504.0f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* v = x + b * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    uint8_t* blk = dst + b * 54;
    tq1_block_encode([&](int i) { return code_of(v[i], id); }, blk);
    store_u16(blk + 52, float_to_half(amax));
  }
}

void quantize_tq2_0(const float* x, uint8_t* dst, int64_t n) {
  require_encodable(x, n, "TQ2_0", 65504.0f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* v = x + b * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    uint8_t* blk = dst + b * 66;
    tq2_block_encode([&](int i) { return code_of(v[i], id); }, blk);
    store_u16(blk + 64, float_to_half(amax));
  }
}

namespace {
uint16_t block_d(const int8_t* t, int64_t base, float scale) {
  bool any = false;
  for (int j = 0; j < kQK; ++j) {
    check_trit(t[j], base + j);
    any = any || t[j] != 0;
  }
  return any ? float_to_half(scale) : 0;
}
}  // namespace

void pack_tq1_0(const int8_t* t, float scale, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const int8_t* v = t + b * kQK;
    uint8_t* blk = dst + b * 54;
    const uint16_t d = block_d(v, b * kQK, scale);
    tq1_block_encode([&](int i) { return (int)v[i] + 1; }, blk);
    store_u16(blk + 52, d);
  }
}

void pack_tq2_0(const int8_t* t, float scale, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const int8_t* v = t + b * kQK;
    uint8_t* blk = dst + b * 66;
    const uint16_t d = block_d(v, b * kQK, scale);
    tq2_block_encode([&](int i) { return (int)v[i] + 1; }, blk);
    store_u16(blk + 64, d);
  }
}

void unpack_tq1_0(const uint8_t* src, int64_t n, int8_t* t, uint16_t* d) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = src + b * 54;
    int8_t* y = t + b * kQK;
    tq1_block(blk, [&](int i, int code) { y[i] = (int8_t)(code - 1); });
    d[b] = load_u16(blk + 52);
  }
}

void unpack_tq2_0(const uint8_t* src, int64_t n, int8_t* t, uint16_t* d) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* blk = src + b * 66;
    for (int c = 0; c < 2; ++c) {
      for (int g = 0; g < 4; ++g) {
        for (int m = 0; m < 32; ++m) {
          const int code = (blk[c * 32 + m] >> (2 * g)) & 3;
          const int64_t i = b * kQK + c * 128 + g * 32 + m;
          if (code == 3) {
            throw Error("TQ2_0: code 3 (not ternary) at value " + std::to_string(i));
          }
          t[i] = (int8_t)(code - 1);
        }
      }
    }
    d[b] = load_u16(blk + 64);
  }
}

}  // namespace tritune::ggml
