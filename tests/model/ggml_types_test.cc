// The ggml type table: sizes, dequantizers checked against sequential-order oracles written the
// way ggml-quants.c walks its blocks, and quantizer round trips.
#include "model/ggml_types.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/i2s.h"

namespace tritune {
namespace {

using namespace ggml;

TEST(GgmlTypes, BlockSizesMatchGgml) {
  EXPECT_EQ(find_type(kQ8_0)->block, 32);
  EXPECT_EQ(find_type(kQ8_0)->block_bytes, 34);
  EXPECT_EQ(find_type(kQ6_K)->block_bytes, 210);
  EXPECT_EQ(find_type(kTQ1_0)->block_bytes, 54);
  EXPECT_EQ(find_type(kTQ2_0)->block_bytes, 66);
  EXPECT_EQ(find_type(kBF16)->block_bytes, 2);
  EXPECT_EQ(find_type(99), nullptr);
  EXPECT_NE(type_name(38).find("TL1"), std::string::npos);
}

TEST(GgmlTypes, TensorBytes) {
  EXPECT_EQ(tensor_bytes(kF32, {3, 5}, "t"), 60);
  EXPECT_EQ(tensor_bytes(kQ8_0, {64, 3}, "t"), 2 * 34 * 3);
  EXPECT_EQ(tensor_bytes(kTQ2_0, {512, 2}, "t"), 4 * 66);
  EXPECT_EQ(tensor_bytes(kI2_S, {256, 4}, "t"), 256 * 4 / 4 + 32);  // bitnet.cpp: n/4 + 32
  EXPECT_THROW(tensor_bytes(kQ8_0, {33, 1}, "t"), Error);
  EXPECT_THROW(tensor_bytes(kF32, {-1}, "t"), Error);
  EXPECT_THROW(tensor_bytes(kF32, {int64_t(1) << 40, int64_t(1) << 40}, "t"), Error);
  EXPECT_THROW(tensor_bytes(77, {4}, "t"), Error);
  try {
    tensor_bytes(kQ6_K, {100}, "tensor 'x'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'x'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos);
  }
}

// ---- oracles: ggml's loops, values emitted in storage order (y++) ---------------------------
std::vector<float> oracle_tq2_0(const uint8_t* x, int64_t n) {
  std::vector<float> y;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* blk = x + b * 66;
    uint16_t dh;
    std::memcpy(&dh, blk + 64, 2);
    const float d = half_to_float(dh);
    for (int j = 0; j < 64; j += 32) {
      for (int l = 0; l < 4; ++l) {
        for (int m = 0; m < 32; ++m) y.push_back((float)(((blk[j + m] >> (l * 2)) & 3) - 1) * d);
      }
    }
  }
  return y;
}

std::vector<float> oracle_tq1_0(const uint8_t* x, int64_t n) {
  static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
  std::vector<float> y;
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* blk = x + b * 54;
    uint16_t dh;
    std::memcpy(&dh, blk + 52, 2);
    const float d = half_to_float(dh);
    auto trit = [](uint8_t byte, int k) {
      const uint8_t q = (uint8_t)(byte * pow3[k]);
      return (int)(((uint16_t)q * 3) >> 8);
    };
    for (int j = 0; j < 32; j += 32) {
      for (int k = 0; k < 5; ++k) {
        for (int m = 0; m < 32; ++m) y.push_back((float)(trit(blk[j + m], k) - 1) * d);
      }
    }
    for (int j = 32; j < 48; j += 16) {
      for (int k = 0; k < 5; ++k) {
        for (int m = 0; m < 16; ++m) y.push_back((float)(trit(blk[j + m], k) - 1) * d);
      }
    }
    for (int k = 0; k < 4; ++k) {
      for (int j = 0; j < 4; ++j) y.push_back((float)(trit(blk[48 + j], k) - 1) * d);
    }
  }
  return y;
}

std::vector<float> oracle_q6_k(const uint8_t* x, int64_t n) {
  std::vector<float> out((size_t)n);
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t* ql = x + b * 210;
    const uint8_t* qh = ql + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(ql + 192);
    uint16_t dh;
    std::memcpy(&dh, ql + 208, 2);
    const float d = half_to_float(dh);
    float* y = out.data() + b * 256;
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
  return out;
}

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = (uint8_t)rng();
  return b;
}

void set_half(uint8_t* p, float v) {
  const uint16_t h = float_to_half(v);
  std::memcpy(p, &h, 2);
}

TEST(GgmlTypes, Tq2DequantMatchesGgmlOrder) {
  std::mt19937_64 rng(1);
  const int64_t n = 3 * 256;
  std::vector<uint8_t> b = random_bytes(rng, 3 * 66);
  for (int k = 0; k < 3; ++k) set_half(&b[k * 66 + 64], 0.25f * (k + 1));
  std::vector<float> y((size_t)n);
  dequantize_rows(kTQ2_0, b.data(), n, 1, 0, 1, y.data());
  EXPECT_EQ(y, oracle_tq2_0(b.data(), n));
}

TEST(GgmlTypes, Tq1DequantMatchesGgmlOrder) {
  std::mt19937_64 rng(2);
  const int64_t n = 2 * 256;
  std::vector<uint8_t> b = random_bytes(rng, 2 * 54);
  set_half(&b[52], 0.5f);
  set_half(&b[54 + 52], 0.125f);
  std::vector<float> y((size_t)n);
  dequantize_rows(kTQ1_0, b.data(), n, 1, 0, 1, y.data());
  EXPECT_EQ(y, oracle_tq1_0(b.data(), n));
}

TEST(GgmlTypes, Q6kDequantMatchesGgmlOrder) {
  std::mt19937_64 rng(3);
  const int64_t n = 2 * 256;
  std::vector<uint8_t> b = random_bytes(rng, 2 * 210);
  set_half(&b[208], 0.01f);
  set_half(&b[210 + 208], -0.02f);
  std::vector<float> y((size_t)n);
  dequantize_rows(kQ6_K, b.data(), n, 1, 0, 1, y.data());
  EXPECT_EQ(y, oracle_q6_k(b.data(), n));
}

TEST(GgmlTypes, TernaryPackersRoundTrip) {
  std::mt19937_64 rng(4);
  const int64_t n = 4 * 256;
  std::vector<int8_t> t((size_t)n);
  for (auto& v : t) v = (int8_t)((int)(rng() % 3) - 1);
  for (int j = 256; j < 512; ++j) t[(size_t)j] = 0;  // an all-zero block gets d = 0
  const float scale = 0.0371f;
  for (uint32_t type : {(uint32_t)kTQ1_0, (uint32_t)kTQ2_0}) {
    std::vector<uint8_t> packed((size_t)row_bytes(type, n));
    std::vector<uint8_t> quant(packed.size());
    std::vector<float> f((size_t)n);
    for (int64_t i = 0; i < n; ++i) f[(size_t)i] = t[(size_t)i] * scale;
    if (type == kTQ1_0) {
      pack_tq1_0(t.data(), scale, packed.data(), n);
      quantize_tq1_0(f.data(), quant.data(), n);
    } else {
      pack_tq2_0(t.data(), scale, packed.data(), n);
      quantize_tq2_0(f.data(), quant.data(), n);
    }
    // Packing trits and llama.cpp's float quantizer agree byte for byte.
    EXPECT_EQ(packed, quant) << type_name(type);
    std::vector<int8_t> back((size_t)n);
    std::vector<uint16_t> d((size_t)(n / 256));
    if (type == kTQ1_0) {
      unpack_tq1_0(packed.data(), n, back.data(), d.data());
    } else {
      unpack_tq2_0(packed.data(), n, back.data(), d.data());
    }
    EXPECT_EQ(back, t) << type_name(type);
    EXPECT_EQ(d[1], 0) << "all-zero block";
    EXPECT_EQ(d[0], float_to_half(scale));
    std::vector<float> y((size_t)n);
    dequantize_rows(type, packed.data(), n, 1, 0, 1, y.data());
    const float s16 = half_to_float(float_to_half(scale));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[(size_t)i], t[(size_t)i] * s16) << i;
  }
}

TEST(GgmlTypes, Tq2Code3IsRefused) {
  std::vector<uint8_t> b(66, 0x55);
  b[10] = 0xFF;
  std::vector<int8_t> t(256);
  uint16_t d;
  EXPECT_THROW(unpack_tq2_0(b.data(), 256, t.data(), &d), Error);
}

TEST(GgmlTypes, Q8RoundTripWithinHalfStep) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n = 32 * 40;
  std::vector<float> x((size_t)n);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q((size_t)row_bytes(kQ8_0, n));
  quantize_q8_0(x.data(), q.data(), n);
  std::vector<float> y((size_t)n);
  dequantize_rows(kQ8_0, q.data(), n, 1, 0, 1, y.data());
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[(size_t)(b * 32 + j)]));
    for (int j = 0; j < 32; ++j) {
      const size_t i = (size_t)(b * 32 + j);
      ASSERT_NEAR(y[i], x[i], amax / 127.0f * 0.51f + amax * 1e-3f) << i;
    }
  }
}

TEST(GgmlTypes, Q6kRoundTripWithinAStep) {
  std::mt19937_64 rng(6);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  const int64_t n = 256 * 8;
  std::vector<float> x((size_t)n);
  for (auto& v : x) v = nd(rng);
  for (int j = 0; j < 256; ++j) x[(size_t)j] = 0.0f;    // an all-zero block stays zero
  for (int j = 256; j < 272; ++j) x[(size_t)j] = 0.0f;  // so does an all-zero group
  std::vector<uint8_t> q((size_t)row_bytes(kQ6_K, n));
  quantize_q6_k(x.data(), q.data(), n);
  std::vector<float> y((size_t)n);
  dequantize_rows(kQ6_K, q.data(), n, 1, 0, 1, y.data());
  for (int64_t s = 0; s < n / 16; ++s) {
    float amax = 0;
    for (int j = 0; j < 16; ++j) amax = std::fmax(amax, std::fabs(x[(size_t)(s * 16 + j)]));
    for (int j = 0; j < 16; ++j) {
      const size_t i = (size_t)(s * 16 + j);
      // The step lies within 0.3% of amax/32 before the int8 scale and f16 rounding: the error
      // stays within one step of amax/31 (a clipped value included).
      ASSERT_NEAR(y[i], x[i], amax / 31.0f * 1.05f + 1e-7f) << i;
    }
  }
}

// Squared error of x after a Q6_K round trip, and of the plain per-16 absmax quantizer
// (step amax/31, exact float steps: no int8 scale or f16 rounding, so it is favoured).
std::pair<double, double> q6k_errors(const std::vector<float>& x) {
  const int64_t n = (int64_t)x.size();
  std::vector<uint8_t> q((size_t)row_bytes(kQ6_K, n));
  quantize_q6_k(x.data(), q.data(), n);
  std::vector<float> y((size_t)n);
  dequantize_rows(kQ6_K, q.data(), n, 1, 0, 1, y.data());
  double e_q6k = 0, e_plain = 0;
  for (int64_t s = 0; s < n / 16; ++s) {
    float amax = 0;
    for (int j = 0; j < 16; ++j) amax = std::fmax(amax, std::fabs(x[(size_t)(s * 16 + j)]));
    const float step = amax / 31.0f;
    for (int j = 0; j < 16; ++j) {
      const size_t i = (size_t)(s * 16 + j);
      const float p = step > 0 ? step * std::nearbyint(x[i] / step) : 0.0f;
      e_plain += (double)(p - x[i]) * (p - x[i]);
      e_q6k += (double)(y[i] - x[i]) * (y[i] - x[i]);
    }
  }
  return {e_q6k, e_plain};
}

TEST(GgmlTypes, Q6kSearchBeatsPlainAbsmax) {
  // The step search must cut the squared error below the plain absmax quantizer's (0.81-0.89x
  // here; the earlier absmax-only quantizer gave 1.00-1.01x) on
  // Gaussian, heavy-tailed (Laplace) and uniform values, embedding-like magnitudes.
  std::mt19937_64 rng(61);
  const int64_t n = 256 * 64;
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::exponential_distribution<float> ed(40.0f);
  std::uniform_real_distribution<float> ud(-0.1f, 0.1f);
  std::bernoulli_distribution sign(0.5);
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<float> x((size_t)n);
    for (auto& v : x) {
      v = kind == 0 ? nd(rng) : kind == 1 ? (sign(rng) ? 1.0f : -1.0f) * ed(rng) : ud(rng);
    }
    const auto [e_q6k, e_plain] = q6k_errors(x);
    EXPECT_LT(e_q6k, 0.93 * e_plain) << "distribution " << kind;
  }
}

TEST(GgmlTypes, Q6kEveryIsaLevelWritesTheSameBytes) {
  // The step search runs as per-ISA clones; model files must not depend on the machine that
  // wrote them. Random values of several scales, a constant block, ties (x.5 steps), the
  // largest value Q6_K takes and subnormal values (NaN, infinities and larger values are refused:
  // QuantizersRefuseWhatTheyCannotEncode).
  std::mt19937_64 rng(62);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n = 256 * 2000;
  std::vector<float> x((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    x[(size_t)i] = nd(rng) * std::ldexp(1.0f, (int)(i / 256 % 40) - 20);
  }
  for (int j = 0; j < 256; ++j) x[(size_t)(256 * 3 + j)] = 0.75f;             // constant
  for (int j = 0; j < 256; ++j) x[(size_t)(256 * 4 + j)] = 0.5f * (j - 128);  // ties
  x[256 * 5 + 3] = 2.5e8f;
  x[256 * 6 + 7] = 1e-40f;
  x[256 * 7 + 9] = -2.5e8f;
  std::vector<uint8_t> want((size_t)row_bytes(kQ6_K, n));
  quantize_q6_k(x.data(), want.data(), n, Isa::kX86_64);
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (!cpu_supports(isa)) continue;
    std::vector<uint8_t> got(want.size());
    quantize_q6_k(x.data(), got.data(), n, isa);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << isa_name(isa) << " byte " << i << " (block " << i / 210 << ")";
    }
  }
  // The constant, tie and finite blocks whose scale f16 holds as a normal number (values of
  // 2^-4..2^19; below that the block's f16 scale turns subnormal, then 0, as in ggml) decode
  // within a step.
  std::vector<float> y((size_t)n);
  dequantize_rows(kQ6_K, want.data(), n, 1, 0, 1, y.data());
  for (int64_t b = 3; b < n / 256; ++b) {
    if (b >= 5 && b % 40 < 16) continue;  // hostile values, and scales f16 holds coarsely
    for (int64_t g = b * 16; g < b * 16 + 16; ++g) {
      float amax = 0;
      for (int j = 0; j < 16; ++j) amax = std::fmax(amax, std::fabs(x[(size_t)(g * 16 + j)]));
      for (int64_t i = g * 16; i < g * 16 + 16; ++i) {
        ASSERT_NEAR(y[(size_t)i], x[(size_t)i], amax / 31.0f * 1.05f) << "block " << b;
      }
    }
  }
}

TEST(GgmlTypes, QuantizersRefuseWhatTheyCannotEncode) {
  // NaN, infinities and magnitudes whose f16 block scale would overflow have no code: each
  // quantizer throws naming the first bad value; the largest magnitude it takes round-trips.
  struct Q {
    uint32_t type;
    void (*quantize)(const float*, uint8_t*, int64_t);
    float limit;
  };
  const Q qs[] = {
      {kQ8_0, quantize_q8_0, 8.3e6f},
      {kQ6_K, [](const float* x, uint8_t* d, int64_t n) { quantize_q6_k(x, d, n); }, 2.5e8f},
      {kTQ1_0, quantize_tq1_0, 65504.0f},
      {kTQ2_0, quantize_tq2_0, 65504.0f}};
  const int64_t n = 512;
  for (const Q& q : qs) {
    std::vector<uint8_t> out((size_t)row_bytes(q.type, n));
    for (float bad : {NAN, INFINITY, -INFINITY, q.limit * 1.02f, -3e38f}) {
      std::vector<float> x((size_t)n, 0.25f);
      x[300] = bad;
      try {
        q.quantize(x.data(), out.data(), n);
        ADD_FAILURE() << type_name(q.type) << " took " << bad;
      } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("value 300 is"), std::string::npos) << m;
        EXPECT_NE(m.find(type_name(q.type)), std::string::npos) << m;
      }
    }
    std::vector<float> x((size_t)n, 0.25f), y((size_t)n);
    x[300] = -q.limit;
    x[301] = q.limit * 0.5f;
    q.quantize(x.data(), out.data(), n);
    dequantize_rows(q.type, out.data(), n, 1, 0, 1, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(y[(size_t)i])) << i;
    EXPECT_NEAR(y[300], x[300], q.limit * 0.02f) << type_name(q.type);
  }
}

TEST(GgmlTypes, Bf16Conversion) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-3.5f)), -3.5f);
  EXPECT_EQ(float_to_bf16(1.00390625f), 0x3f80);  // tie rounds to even
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST(GgmlTypes, I2sRowsUseTheTailScale) {
  std::mt19937_64 rng(7);
  const int64_t n = 5, k = 256;
  std::vector<int8_t> t((size_t)(n * k));
  for (auto& v : t) v = (int8_t)((int)(rng() % 3) - 1);
  const PackedWeights p = i2s_pack_ternary(t.data(), n, k, 0.75f);
  std::vector<float> y((size_t)(2 * k));
  dequantize_rows(kI2_S, p.data.data(), k, n, 2, 2, y.data());
  for (int64_t i = 0; i < 2 * k; ++i) ASSERT_EQ(y[(size_t)i], t[(size_t)(2 * k + i)] * 0.75f);
  EXPECT_THROW(dequantize_rows(kI2_S, p.data.data(), k, n, 4, 2, y.data()), Error);
  EXPECT_THROW(dequantize_rows(kQ4_K, p.data.data(), 256, 1, 0, 1, y.data()), Error);
}

}  // namespace
}  // namespace tritune
