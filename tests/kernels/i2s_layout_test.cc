#include <gtest/gtest.h>

#include "kernels/error.h"
#include "kernels/i2s.h"
#include "tests/kernels/test_util.h"

namespace tritune {
namespace {

TEST(I2SLayout, BytesFollowBitnetCppBlockOrder) {
  // One row of 128 weights: w[p] -> bits 7:6 of byte p, w[32+p] -> 5:4, w[64+p] -> 3:2,
  // w[96+p] -> 1:0, code = w + 1.
  std::vector<int8_t> t(128, 0);
  t[0] = 1;         // byte 0 bits 7:6 = 2
  t[32] = -1;       // byte 0 bits 5:4 = 0
  t[64 + 5] = 1;    // byte 5 bits 3:2 = 2
  t[96 + 31] = -1;  // byte 31 bits 1:0 = 0
  const PackedWeights p = i2s_pack_ternary(t.data(), 1, 128, 0.5f);
  ASSERT_EQ(p.data.size(), 32u + 32u);
  EXPECT_EQ(p.data[0], (2 << 6) | (0 << 4) | (1 << 2) | 1);
  EXPECT_EQ(p.data[5], (1 << 6) | (1 << 4) | (2 << 2) | 1);
  EXPECT_EQ(p.data[31], (1 << 6) | (1 << 4) | (1 << 2) | 0);
  EXPECT_EQ(p.data[1], 0x55);
  EXPECT_EQ(i2s_tail_scale(p.data.data(), 1, 128), 0.5f);
}

TEST(I2SLayout, PackUnpackRepackRoundTrip) {
  std::mt19937 rng(5);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 128}, {3, 256}, {17, 384}, {64, 2560}}) {
    const auto t = testing::random_ternary(n * k, rng);
    const PackedWeights p = i2s_pack_ternary(t.data(), n, k, 1.25f);
    EXPECT_EQ(i2s_unpack_ternary(p), t);
    const I2SKernelWeights w = i2s_repack(p);
    EXPECT_EQ(w.scale, 1.25f);
    EXPECT_EQ(i2s_untile(w), t) << n << "x" << k;
    // The direct repack writes exactly the bytes of tiling the ternary values, padding rows
    // (code 1) included.
    const I2SKernelWeights ref = i2s_tile_ternary(t.data(), n, k, 1.25f);
    EXPECT_TRUE(w.tiles == ref.tiles) << n << "x" << k;
  }
}

TEST(I2SLayout, TiledLayoutHandlesAnyShapeAndPadsWithZeroWeights) {
  std::mt19937 rng(9);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {15, 17}, {16, 16}, {33, 100}}) {
    const auto t = testing::random_ternary(n * k, rng);
    const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 1.0f);
    EXPECT_EQ(w.n16, (n + 15) / 16);
    EXPECT_EQ(w.k16, (k + 15) / 16);
    EXPECT_EQ(i2s_untile(w), t);
    // Padding rows decode to weight 0 (code 1) everywhere.
    I2SKernelWeights full = w;
    full.n = w.n_pad();
    full.k = w.k_pad();
    const auto all = i2s_untile(full);
    for (int64_t r = 0; r < full.n; ++r) {
      for (int64_t c = 0; c < full.k; ++c) {
        if (r >= n || c >= k) {
          ASSERT_EQ(all[r * full.k + c], 0) << r << "," << c;
        }
      }
    }
  }
}

TEST(I2SLayout, BadInputIsRefusedWithAClearError) {
  std::vector<int8_t> t(100, 0);
  try {
    i2s_pack_ternary(t.data(), 1, 100, 1.0f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 128"), std::string::npos);
  }
  std::vector<int8_t> bad(128, 0);
  bad[7] = 2;
  EXPECT_THROW(i2s_pack_ternary(bad.data(), 1, 128, 1.0f), Error);
  EXPECT_THROW(i2s_tile_ternary(bad.data(), 1, 128, 1.0f), Error);
  // Code 3 in storage is corrupt data.
  std::vector<int8_t> zeros(128, 0);
  PackedWeights p = i2s_pack_ternary(zeros.data(), 1, 128, 1.0f);
  p.data[3] = 0xff;
  EXPECT_THROW(i2s_unpack_ternary(p), Error);
  for (const uint8_t code3 : {0xc0, 0x30, 0x0c, 0x03}) {  // code 3 in each of the four groups
    PackedWeights q = i2s_pack_ternary(zeros.data(), 1, 128, 1.0f);
    q.data[17] = (uint8_t)(0x55 & ~(code3 & 0x55)) | code3;
    try {
      i2s_repack(q);
      ADD_FAILURE() << "code 3 not refused: " << (int)code3;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("code 3"), std::string::npos) << e.what();
    }
  }
  // Truncated storage.
  p.data.resize(10);
  EXPECT_THROW(i2s_unpack_ternary(p), Error);
  EXPECT_THROW(i2s_repack(p), Error);
}

TEST(I2SLayout, TiledReferenceEqualsPlainIntegerReference) {
  std::mt19937 rng(13);
  const int64_t n = 37, k = 256, T = 5;
  const auto t = testing::random_ternary(n * k, rng);
  const auto x = testing::random_floats(T * k, rng, 3.0f);
  const PackedWeights p = i2s_pack_ternary(t.data(), n, k, 1.0f);
  const QuantizedActs a1 = quantize_acts(x.data(), T, k, k);
  const QuantizedActs a16 = quantize_acts(x.data(), T, k, k, 16);
  std::vector<int32_t> plain(T * n), tiled(T * n);
  format_traits(Format::kI2S).ref_gemm_int(p, a1, plain.data());
  i2s_ref_gemm_tiled(i2s_repack(p), a16, tiled.data(), n);
  EXPECT_EQ(plain, tiled);
  // And against a direct sum over the ternary values.
  for (int64_t tok = 0; tok < T; ++tok) {
    for (int64_t r = 0; r < n; ++r) {
      int32_t s = 0;
      for (int64_t c = 0; c < k; ++c) s += t[r * k + c] * a1.q[tok * k + c];
      ASSERT_EQ(plain[tok * n + r], s);
    }
  }
}

}  // namespace
}  // namespace tritune
