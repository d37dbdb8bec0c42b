// The registry drives these tests: every row is packed, unpacked and checked against its own
// reference, so a new format is tested by adding its row.
#include "kernels/formats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/error.h"
#include "kernels/half.h"
#include "tests/kernels/test_util.h"

namespace tritune {
namespace {

TEST(Formats, TableIsCompleteAndNamed) {
  ASSERT_EQ(all_formats().size(), (size_t)Format::kCount);
  for (int i = 0; i < (int)Format::kCount; ++i) {
    const FormatTraits& f = format_traits((Format)i);
    EXPECT_EQ((int)f.id, i);
    EXPECT_EQ(&find_format(f.name), &f);
    EXPECT_GT(f.bits_per_weight, 0.0);
    EXPECT_NE(f.pack, nullptr);
    EXPECT_NE(f.unpack, nullptr);
    EXPECT_NE(f.ref_gemm, nullptr);
    EXPECT_EQ(f.ternary, f.ref_gemm_int != nullptr) << f.name;
  }
  try {
    find_format("q4_k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("i2_s"), std::string::npos);
  }
}

TEST(Formats, PackUnpackRoundTripsEveryFormat) {
  std::mt19937 rng(7);
  for (const FormatTraits& f : all_formats()) {
    const int64_t n = 5, k = 256;
    std::vector<float> w;
    if (f.ternary) {
      const auto t = testing::random_ternary(n * k, rng);
      for (int8_t v : t) w.push_back(0.75f * v);
    } else {
      w = testing::random_floats(n * k, rng);
    }
    const PackedWeights p = f.pack(w.data(), n, k);
    EXPECT_EQ((int64_t)p.data.size(), format_bytes(f.id, n, k)) << f.name;
    std::vector<float> back((size_t)(n * k));
    f.unpack(p, back.data());
    for (int64_t i = 0; i < n * k; ++i) {
      const float want = f.id == Format::kF16 ? half_to_float(float_to_half(w[i])) : w[i];
      ASSERT_EQ(back[i], want) << f.name << " element " << i;
    }
  }
}

TEST(Formats, TernarizeAbsmean) {
  const float w[] = {0.1f, -0.9f, 0.5f, 0.0f, 2.0f, -0.3f};
  int8_t t[6];
  const float s = ternarize_absmean(w, 6, t);
  EXPECT_NEAR(s, (0.1f + 0.9f + 0.5f + 2.0f + 0.3f) / 6.0f, 1e-6f);
  const int8_t want[] = {0, -1, 1, 0, 1, 0};  // round(w / 0.6333)
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t[i], want[i]) << i;
  // Already-ternary weights keep their scale exactly.
  const float u[] = {0.25f, -0.25f, 0.0f, 0.25f};
  EXPECT_EQ(ternarize_absmean(u, 4, t), 0.25f);
  EXPECT_EQ(t[1], -1);
}

TEST(Formats, RefGemmOfFloatFormatsMatchesNaiveSum) {
  std::mt19937 rng(3);
  const int64_t n = 7, k = 33, T = 3;
  const auto w = testing::random_floats(n * k, rng);
  const auto x = testing::random_floats(T * k, rng);
  for (Format fid : {Format::kF32, Format::kF16}) {
    const FormatTraits& f = format_traits(fid);
    const PackedWeights p = f.pack(w.data(), n, k);
    std::vector<float> wd((size_t)(n * k)), y((size_t)(T * n));
    f.unpack(p, wd.data());
    f.ref_gemm(p, x.data(), T, y.data());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t c = 0; c < k; ++c) s += (double)wd[r * k + c] * x[t * k + c];
        EXPECT_NEAR(y[t * n + r], s, 1e-5 * (1 + std::fabs(s)));
      }
    }
  }
}

TEST(Formats, ImpossibleShapesAreRefused) {
  const float w[4] = {1, 2, 3, 4};
  for (const FormatTraits& f : all_formats()) {
    EXPECT_THROW(f.pack(w, 0, 4), Error) << f.name;
    EXPECT_THROW(f.pack(w, 2, -2), Error) << f.name;
  }
  EXPECT_THROW(format_bytes(Format::kI2S, 4, 100), Error);
}

TEST(Half, MatchesHardwareConversionOnManyValues) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits(rng);
    float f;
    std::memcpy(&f, &b, 4);
    if (std::isnan(f)) continue;
    const uint16_t h = float_to_half(f);
    // Reference: round via double arithmetic on the representable half grid.
    const float back = half_to_float(h);
    if (std::isinf(back)) {
      EXPECT_GE(std::fabs(f), 65520.0f) << f;
      continue;
    }
    // The nearest half: no other half value is strictly closer.
    const float up = half_to_float((uint16_t)(h + 1)), down = half_to_float((uint16_t)(h - 1));
    const double e = std::fabs((double)back - f);
    if (!std::isinf(up) && !std::isnan(up) && (h & 0x7fff) != 0x7bff) {
      EXPECT_LE(e, std::fabs((double)up - f)) << f;
    }
    if ((h & 0x7fff) != 0 && !std::isnan(down)) {
      EXPECT_LE(e, std::fabs((double)down - f)) << f;
    }
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);
  EXPECT_EQ(float_to_half(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(half_to_float(0x0001), 5.960464477539063e-08f);
}

}  // namespace
}  // namespace tritune
