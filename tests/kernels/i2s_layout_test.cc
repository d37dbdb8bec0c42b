#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cpu_features.h"
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
    for (const int64_t parts : {0, 1, 2, 4}) {  // 0: the default (1 part on AVX-512, else 2)
      const I2SKernelWeights w = i2s_repack(p, parts);
      EXPECT_EQ(w.parts, parts != 0 ? parts : selected_isa() >= Isa::kAvx512Vnni ? 1 : kI2SParts);
      EXPECT_EQ(w.scale, 1.25f);
      EXPECT_EQ(i2s_untile(w), t) << n << "x" << k << " parts " << parts;
      // The direct repack writes exactly the bytes of tiling the ternary values, padding rows
      // (code 1) included.
      const I2SKernelWeights ref = i2s_tile_ternary(t.data(), n, k, 1.25f, parts);
      EXPECT_TRUE(w.tiles == ref.tiles) << n << "x" << k << " parts " << parts;
    }
  }
}

// Part s of K holds tiles [s * kq, (s + 1) * kq) of every row tile, row tile after row tile.
TEST(I2SLayout, PartsAreRunsOfTilesOfEveryRowTile) {
  const int64_t n = 32, k = 256;  // 2 x 16 tiles; 2 parts of 8
  std::vector<int8_t> t((size_t)(n * k), 0);
  t[(16 + 3) * k + 16 * 9 + 4 * 2 + 1] = 1;  // row tile 1, lane 3; tile 9 (part 1), g 2, r 1
  const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 1.0f, 2);
  ASSERT_EQ(w.parts, 2);
  EXPECT_EQ(w.kq(), 8);
  EXPECT_EQ(w.part_bytes(), 2 * 8 * 64);
  const int64_t at = 2 * 8 * 64 + (1 * 8 + 1) * 64 + 4 * 3 + 1;
  EXPECT_EQ(w.tile_offset(1, 9) + 4 * 3 + 1, at);
  for (int64_t i = 0; i < (int64_t)w.tiles.size(); ++i) {
    ASSERT_EQ(w.tiles[(size_t)i], i == at ? (0x55 & ~(3 << 4)) | (2 << 4) : 0x55) << "byte " << i;
  }
  // A store's member slice: every part's run of its row tiles.
  const I2STiles m = tile_rows(w, 1, 16);
  EXPECT_EQ(m.data, w.tiles.data() + 8 * 64);
  EXPECT_EQ(m.parts, 2);
  EXPECT_EQ(m.part_stride, w.part_bytes());
  EXPECT_EQ(m.part_bytes(), 8 * 64);
  // Parts must divide the tile count.
  EXPECT_THROW(i2s_tile_ternary(t.data(), n, k, 1.0f, 3), Error);
  EXPECT_THROW(i2s_tile_ternary(t.data(), n, k, 1.0f, -1), Error);
  EXPECT_EQ(i2s_tile_ternary(t.data(), n, 16 * 3, 1.0f).parts, 1);  // odd tile count: 1 part
}

// The default split of K (kernels/i2s.h): below AVX-512, 2 parts when the tile count is even and
// 1 when it is odd (2 parts could not split it); on AVX-512 always 1. An odd tile count is then
// laid out (and round-trips) at the AVX2 level too, where the default would otherwise be 2.
TEST(I2SLayout, DefaultPartsSplitOnlyAnEvenTileCount) {
  if (std::getenv("TRITUNE_I2S_PARTS") != nullptr) GTEST_SKIP() << "TRITUNE_I2S_PARTS is set";
  for (const int64_t k16 : {1, 3, 5, 19, 161}) {
    EXPECT_EQ(i2s_default_parts(k16, Isa::kAvx2), 1) << k16 << " tiles";
    EXPECT_EQ(i2s_default_parts(k16, Isa::kX86_64), 1) << k16 << " tiles";
    EXPECT_EQ(i2s_default_parts(k16, Isa::kAvx512Vnni), 1) << k16 << " tiles";
  }
  for (const int64_t k16 : {2, 8, 160}) {
    EXPECT_EQ(i2s_default_parts(k16, Isa::kAvx2), 2) << k16 << " tiles";
    EXPECT_EQ(i2s_default_parts(k16, Isa::kAvx512Vnni), 1) << k16 << " tiles";
  }
  if (!cpu_supports(Isa::kAvx2)) return;
  setenv("TRITUNE_ISA", "avx2", 1);
  std::mt19937 rng(4);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{17, 48}, {3, 300}, {16, 16}}) {
    const auto t = testing::random_ternary(n * k, rng);
    try {
      const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 1.0f);
      EXPECT_EQ(w.parts, 1) << n << "x" << k;
      EXPECT_EQ(i2s_untile(w), t) << n << "x" << k;
    } catch (const Error& e) {
      ADD_FAILURE() << n << "x" << k << " at the AVX2 level: " << e.what();
    }
  }
  unsetenv("TRITUNE_ISA");
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
  // Codes alone (n * k / 4 bytes, no scale tail) are enough to decode: 2 x 256 -> 128 bytes.
  {
    std::mt19937 rng(3);
    const auto t2 = testing::random_ternary(2 * 256, rng);
    PackedWeights codes_only = i2s_pack_ternary(t2.data(), 2, 256, 1.0f);
    codes_only.data.resize(128);
    EXPECT_EQ(i2s_unpack_ternary(codes_only), t2);
    EXPECT_EQ(i2s_untile(i2s_repack(codes_only)), t2);
    codes_only.data.resize(127);  // one byte short
    EXPECT_THROW(i2s_unpack_ternary(codes_only), Error);
    EXPECT_THROW(i2s_repack(codes_only), Error);
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
