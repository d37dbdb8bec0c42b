// LinearGroup (kernels/linear.h): layers that read one input run as one kernel call over their
// tiles stored back to back. Its outputs must be those of the same layers run one by one, bit
// for bit, and anything it cannot fuse must be refused without touching the weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/formats.h"
#include "kernels/i2s.h"
#include "kernels/linear.h"
#include "kernels/quantize.h"
#include "kernels/variant.h"
#include "tests/kernels/test_util.h"

namespace tritune {
namespace {

PackedWeights random_i2s(int64_t n, int64_t k, float scale, std::mt19937& rng) {
  const auto t = testing::random_ternary(n * k, rng);
  return i2s_pack_ternary(t.data(), n, k, scale);
}

// Rows of a layer's float output for quantized activations, through a Linear of its own.
std::vector<float> alone(const PackedWeights& p, const QuantizedActs& a) {
  std::unique_ptr<Linear> l = Linear::create(p);
  std::vector<float> y((size_t)(a.tokens * p.n), -1.0f);
  l->forward_q(a, y.data(), p.n);
  return y;
}

// The members' tiles are one contiguous buffer: within each part of K (kernels/i2s.h) the
// members' runs follow each other in member order, and the parts follow each other (what a
// decode step streams).
// At this CPU's level and, where it has AVX2, at the AVX2 level too: the default layout has one
// part on AVX-512 and two below, and a group's members must be slices of every part.
class LinearGroupLevels : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      if (!cpu_supports(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
      setenv("TRITUNE_ISA", "avx2", 1);
    }
  }
  void TearDown() override { unsetenv("TRITUNE_ISA"); }
};
INSTANTIATE_TEST_SUITE_P(Isa, LinearGroupLevels, ::testing::Bool());

// At both levels: AVX-512's layout has one part of K, AVX2's two, read side by side.
TEST_P(LinearGroupLevels, OneCallGivesEachMembersOwnResultsBitForBit) {
  std::mt19937 rng(5);
  // q/k/v- and gate/up-like sets, with row counts that are not multiples of 16 (padded rows of
  // one member sit between the next member's rows in the fused buffer) and K with and without
  // a partial chunk of the kernel's 8-tile unroll.
  const std::vector<std::vector<int64_t>> sets = {{48, 16, 16}, {33, 7, 100}, {256, 256}};
  for (const int64_t k : {int64_t{128}, int64_t{384}, int64_t{2560}}) {
    for (const auto& ns : sets) {
      std::vector<PackedWeights> ws, keep;
      for (size_t i = 0; i < ns.size(); ++i) {
        ws.push_back(random_i2s(ns[i], k, 0.25f + 0.5f * (float)i, rng));
      }
      keep = ws;  // the group takes the storage bytes of ws
      std::vector<PackedWeights*> ptrs;
      for (auto& w : ws) ptrs.push_back(&w);
      const auto g = LinearGroup::create(ptrs);
      ASSERT_NE(g, nullptr);
      EXPECT_EQ(g->size(), (int)ns.size());
      EXPECT_EQ(g->k(), k);
      for (const auto& w : ws) EXPECT_TRUE(w.data.empty());
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        for (const int64_t tokens : {int64_t{1}, int64_t{3}, int64_t{17}}) {
          const auto x = testing::random_floats(tokens * k, rng, 2.0f);
          const QuantizedActs a = quantize_acts(x.data(), tokens, k, k, 16);
          std::vector<std::vector<float>> ys;
          std::vector<float*> outs;
          for (int64_t n : ns) ys.emplace_back((size_t)(tokens * n), -7.0f);
          for (auto& y : ys) outs.push_back(y.data());
          g->forward_q(a, outs);
          for (size_t i = 0; i < ns.size(); ++i) {
            const std::vector<float> want = alone(keep[i], a);
            ASSERT_EQ(std::memcmp(ys[i].data(), want.data(), want.size() * sizeof(float)), 0)
                << "member " << i << " of " << ns.size() << ", K=" << k << ", " << tokens
                << " tokens, " << threads << " threads";
            // The member as a Linear of its own: the same floats, and the exact integer sums.
            const std::unique_ptr<Linear> m = g->member((int)i);
            std::vector<float> y((size_t)(tokens * ns[i]), -7.0f);
            m->forward_q(a, y.data(), ns[i]);
            ASSERT_EQ(std::memcmp(y.data(), want.data(), want.size() * sizeof(float)), 0);
            const I2SKernelWeights ref = i2s_repack(keep[i]);
            // K = 128 is 8 tiles, 384 is 24, 2560 is 160: all split in two below AVX-512.
            ASSERT_EQ(ref.parts, GetParam() ? 2 : i2s_default_parts(ref.k16)) << "K=" << k;
            std::vector<int32_t> raw((size_t)(tokens * m->raw_width())), rref(raw.size());
            m->forward_raw(a, raw.data(), m->raw_width());
            i2s_ref_gemm_tiled(ref, a, rref.data(), m->raw_width());
            for (int64_t t = 0; t < tokens; ++t) {
              for (int64_t j = 0; j < ns[i]; ++j) {
                const size_t at = (size_t)(t * m->raw_width() + j);
                ASSERT_EQ(raw[at], rref[at]) << "member " << i << " row " << j;
              }
            }
          }
        }
      }
      set_num_threads(2);
    }
  }
}

TEST_P(LinearGroupLevels, MembersAreConsecutiveSlicesOfOneBuffer) {
  std::mt19937 rng(6);
  std::vector<PackedWeights> ws = {random_i2s(40, 256, 1, rng), random_i2s(16, 256, 1, rng),
                                   random_i2s(16, 256, 1, rng)};
  std::vector<PackedWeights*> ptrs = {&ws[0], &ws[1], &ws[2]};
  const auto g = LinearGroup::create(ptrs);
  ASSERT_NE(g, nullptr);
  int64_t total = 0;
  const auto m0 = g->member(0);
  const int64_t parts = m0->weight_runs();
  EXPECT_EQ(parts, i2s_default_parts(256 / 16));
  EXPECT_EQ(parts, selected_isa() >= Isa::kAvx512Vnni ? 1 : 2);
  EXPECT_EQ(m0->weight_run_stride(), g->n() * 256 / 4 / parts);
  const uint8_t* next = m0->weight_data();
  for (int64_t s = 0; s < parts; ++s) {
    for (int i = 0; i < 3; ++i) {
      const auto m = g->member(i);
      EXPECT_EQ(m->weight_runs(), parts);
      EXPECT_EQ(m->weight_data() + s * m->weight_run_stride(), next) << "member " << i;
      EXPECT_EQ(m->weight_bytes(), (m->n() + 15) / 16 * 16 * 256 / 4);
      next += m->weight_bytes() / parts;
      if (s == 0) total += m->weight_bytes();
    }
  }
  EXPECT_EQ(next, m0->weight_data() + g->n() * 256 / 4);
  EXPECT_EQ(g->n(), 48 + 16 + 16);
  EXPECT_EQ(total, g->n() * 256 / 4);
  EXPECT_THROW(g->member(3), Error);
  const QuantizedActs a = quantize_acts(testing::random_floats(256, rng).data(), 1, 256, 256, 16);
  std::vector<float> y0(40), y1(16);
  EXPECT_THROW(g->forward_q(a, {y0.data(), y1.data()}), Error);  // one output per member
}

// The float outputs are the integer sums through i2s_dequant (raw / act_scale * w_scale),
// bit for bit, at every ISA level the CPU has (the dequantization is vectorized per level),
// including hostile scales: huge, tiny, subnormal products, and token counts that split the
// conversion across the pool.
TEST(LinearGroup, FloatOutputsAreTheScalarDequantizationAtEveryLevel) {
  std::mt19937 rng(9);
  const int64_t n = 37, k = 384;
  for (const float w_scale : {0.37f, 3.0e38f, 1.0e-30f}) {
    const PackedWeights p = random_i2s(n, k, w_scale, rng);
    const I2SKernelWeights ref = i2s_repack(p);
    for (const int64_t tokens : {int64_t{1}, int64_t{5}, int64_t{70}}) {
      auto x = testing::random_floats(tokens * k, rng, 2.0f);
      x[0] = 1.0e30f;  // token 0: a tiny activation scale, other entries quantize to 0
      const QuantizedActs a = quantize_acts(x.data(), tokens, k, k, 16);
      const int64_t ldr = (n + 15) / 16 * 16;
      std::vector<int32_t> raw((size_t)(tokens * ldr));
      i2s_ref_gemm_tiled(ref, a, raw.data(), ldr);
      for (const char* level : {"", "avx2", "x86_64"}) {
        if (*level != 0) {
          if (std::string(level) == "avx2" && !cpu_supports(Isa::kAvx2)) continue;
          setenv("TRITUNE_ISA", level, 1);
        }
        std::vector<float> y((size_t)(tokens * n), -1.0f);
        Linear::create(p)->forward_q(a, y.data(), n);
        unsetenv("TRITUNE_ISA");
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t j = 0; j < n; ++j) {
            const float want = i2s_dequant(raw[(size_t)(t * ldr + j)], a.scale[(size_t)t], p.scale);
            const float got = y[(size_t)(t * n + j)];
            ASSERT_EQ(std::memcmp(&got, &want, 4), 0)
                << "level '" << level << "' token " << t << " row " << j << ": " << got << " vs "
                << want << ", w_scale " << w_scale;
          }
        }
      }
    }
  }
}

// Calls of at least 2^16 outputs convert their raw sums across the pool in chunks of tokens;
// with more than 64 tokens (not a multiple of 64) a chunk holds several tokens and the last
// one is short. Every float of every token, of a layer alone and of each member of a group
// (the second with its own scale, rows not a multiple of 16), is bitnet.cpp's epilogue
// (float)raw / act_scale * w_scale, written out here (not through i2s_dequant), applied to the
// scalar reference's integer sums.
TEST(LinearGroup, LongBatchesDequantizeEveryTokenInBitnetCppOrder) {
  std::mt19937 rng(21);
  const int64_t k = 128, tokens = 101;
  const std::vector<int64_t> ns = {656, 37};  // 101 x 656 >= 2^16: the pool's chunks
  const std::vector<float> scales = {0.37f, 1.7f};
  std::vector<PackedWeights> ws, keep;
  for (size_t i = 0; i < ns.size(); ++i) ws.push_back(random_i2s(ns[i], k, scales[i], rng));
  keep = ws;
  std::vector<PackedWeights*> ptrs;
  for (auto& w : ws) ptrs.push_back(&w);
  const auto g = LinearGroup::create(ptrs);
  ASSERT_NE(g, nullptr);
  const auto x = testing::random_floats(tokens * k, rng, 2.0f);
  const QuantizedActs a = quantize_acts(x.data(), tokens, k, k, 16);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<std::vector<float>> ys;
    std::vector<float*> outs;
    for (int64_t n : ns) ys.emplace_back((size_t)(tokens * n), NAN);
    for (auto& y : ys) outs.push_back(y.data());
    g->forward_q(a, outs);
    for (size_t i = 0; i < ns.size(); ++i) {
      const int64_t n = ns[i], ldr = (n + 15) / 16 * 16;
      std::vector<int32_t> raw((size_t)(tokens * ldr));
      i2s_ref_gemm_tiled(i2s_repack(keep[i]), a, raw.data(), ldr);
      std::vector<float> alone_y((size_t)(tokens * n), NAN);
      Linear::create(keep[i])->forward_q(a, alone_y.data(), n);
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t j = 0; j < n; ++j) {
          const float want = (float)raw[(size_t)(t * ldr + j)] / a.scale[(size_t)t] * scales[i];
          const float got = ys[i][(size_t)(t * n + j)], got1 = alone_y[(size_t)(t * n + j)];
          ASSERT_EQ(std::memcmp(&got, &want, 4), 0)
              << "group member " << i << " token " << t << " row " << j << ": " << got << " vs "
              << want << ", " << threads << " threads";
          ASSERT_EQ(std::memcmp(&got1, &want, 4), 0)
              << "layer " << i << " alone, token " << t << " row " << j << ": " << got1 << " vs "
              << want << ", " << threads << " threads";
        }
      }
    }
  }
  set_num_threads(2);
}

TEST(LinearGroup, RefusesWhatItCannotFuseAndLeavesTheWeights) {
  std::mt19937 rng(7);
  auto check_refused = [](std::vector<PackedWeights> ws, const char* why) {
    std::vector<size_t> sizes;
    for (const auto& w : ws) sizes.push_back(w.data.size());
    std::vector<PackedWeights*> ptrs;
    for (auto& w : ws) ptrs.push_back(&w);
    EXPECT_EQ(LinearGroup::create(ptrs), nullptr) << why;
    for (size_t i = 0; i < ws.size(); ++i) EXPECT_EQ(ws[i].data.size(), sizes[i]) << why;
  };
  check_refused({random_i2s(16, 256, 1, rng)}, "one member");
  check_refused({random_i2s(16, 256, 1, rng), random_i2s(16, 384, 1, rng)}, "K differs");
  std::vector<float> dense(16 * 256, 0.5f);
  check_refused(
      {random_i2s(16, 256, 1, rng), format_traits(Format::kF16).pack(dense.data(), 16, 256)},
      "an f16 member");
  PackedWeights cut = random_i2s(16, 256, 1, rng);
  cut.data.resize(cut.data.size() / 2);
  check_refused({random_i2s(16, 256, 1, rng), cut}, "truncated storage");
  PackedWeights bad_k = random_i2s(16, 256, 1, rng);
  bad_k.k = 200;  // not a whole number of 128-weight blocks
  check_refused({bad_k, bad_k}, "K not blocked");
}

}  // namespace
}  // namespace tritune
