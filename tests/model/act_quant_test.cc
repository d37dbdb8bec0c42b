// The kernel path's vectorized activation quantizer is bit-identical to quantize_row, rounding
// ties included, at every ISA level; non-finite input is refused the same way.
#include "model/act_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/quantize.h"

namespace tritune {
namespace {

template <typename Fn>
void for_each_isa(Fn fn) {
  for (int i = 0; i < (int)Isa::kCount; ++i) {
    if (!cpu_supports((Isa)i)) continue;
    setenv("TRITUNE_ISA", isa_name((Isa)i), 1);
    SCOPED_TRACE(isa_name((Isa)i));
    fn();
  }
  unsetenv("TRITUNE_ISA");
}

void expect_same(const std::vector<float>& x) {
  const int64_t k = (int64_t)x.size();
  std::vector<int8_t> qa((size_t)k), qb((size_t)k);
  int32_t sa = 0, sb = 0;
  const float a = quantize_row(x.data(), k, qa.data(), &sa);
  for_each_isa([&] {
    std::fill(qb.begin(), qb.end(), 99);
    const float b = quantize_row_fast(x.data(), k, qb.data(), &sb);
    ASSERT_EQ(a, b);
    ASSERT_EQ(sa, sb);
    ASSERT_EQ(qa, qb);
  });
}

TEST(ActQuant, BitIdenticalOnRandomRows) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0, 2);
  for (int k : {1, 15, 16, 17, 100, 2560, 6912}) {
    std::vector<float> x((size_t)k);
    for (auto& v : x) v = d(rng);
    expect_same(x);
    for (auto& v : x) v *= 1e-7f;  // below the 1e-5 absmax floor
    expect_same(x);
  }
  expect_same(std::vector<float>(33, 0.0f));
}

TEST(ActQuant, RoundingTiesGoToEven) {
  // absmax 127 makes s = 1 exactly, so x.5 values are exact ties.
  std::vector<float> x = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, -127.0f};
  x.resize(40, 4.5f);
  x[20] = -4.5f;
  expect_same(x);
  std::vector<int8_t> q(x.size());
  int32_t sum;
  EXPECT_EQ(quantize_row_fast(x.data(), (int64_t)x.size(), q.data(), &sum), 1.0f);
  EXPECT_EQ(q[1], 0);
  EXPECT_EQ(q[2], 2);
  EXPECT_EQ(q[3], 2);
  EXPECT_EQ(q[5], -2);
  EXPECT_EQ(q[30], 4);
  EXPECT_EQ(q[20], -4);
}

TEST(ActQuant, NonFiniteIsRefused) {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> x(40, 1.0f);
    x[23] = bad;
    std::vector<int8_t> q(40);
    int32_t sum;
    for_each_isa([&] {
      try {
        quantize_row_fast(x.data(), 40, q.data(), &sum);
        FAIL() << "non-finite accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("element 23"), std::string::npos) << e.what();
      }
    });
  }
}

}  // namespace
}  // namespace tritune
