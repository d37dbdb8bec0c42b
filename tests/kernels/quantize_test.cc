#include "kernels/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/error.h"

namespace tritune {
namespace {

TEST(Quantize, RoundsHalfToEvenAndKeepsSum) {
  // max |x| = 127 gives s = 1 exactly, so x * s hits the .5 ties.
  const float x[] = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 1.49f};
  QuantizedActs a = quantize_acts(x, 1, 8, 8);
  const int8_t want[] = {127, 2, 4, -2, -4, 0, 0, 1};
  int32_t sum = 0;
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(a.q[i], want[i]) << "element " << i;
    sum += want[i];
  }
  EXPECT_EQ(a.sum[0], sum);
  EXPECT_FLOAT_EQ(a.scale[0], 1.0f);
}

TEST(Quantize, AllZeroRowUsesEpsilon) {
  const float x[16] = {0};
  QuantizedActs a = quantize_acts(x, 1, 16, 16);
  EXPECT_FLOAT_EQ(a.scale[0], 127.0f / 1e-5f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(a.q[i], 0);
  EXPECT_EQ(a.sum[0], 0);
}

TEST(Quantize, HugeAndTinyValuesStayInRange) {
  const float x[] = {1e30f, -1e30f, 1e-30f, 3e29f};
  QuantizedActs a = quantize_acts(x, 1, 4, 4);
  EXPECT_EQ(a.q[0], 127);
  EXPECT_EQ(a.q[1], -127);
  EXPECT_EQ(a.q[2], 0);
  EXPECT_EQ(a.q[3], 38);  // 0.3 * 127 = 38.1
  const float big = std::numeric_limits<float>::max();
  const float y[] = {big, -big};
  QuantizedActs b = quantize_acts(y, 1, 2, 2);
  EXPECT_EQ(b.q[0], 127);
  EXPECT_EQ(b.q[1], -127);
}

TEST(Quantize, NonFiniteIsAnErrorNamingTokenAndElement) {
  float x[2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8};
  x[6] = std::nanf("");
  try {
    quantize_acts(x, 2, 4, 4);
    FAIL() << "NaN accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  x[6] = INFINITY;
  EXPECT_THROW(quantize_acts(x, 2, 4, 4), Error);
}

TEST(Quantize, AlignedStrideIsZeroPadded) {
  float x[3 * 5];
  for (int i = 0; i < 15; ++i) x[i] = (float)(i - 7);
  QuantizedActs a = quantize_acts(x, 3, 5, 5, 16);
  EXPECT_EQ(a.k_stride, 16);
  for (int t = 0; t < 3; ++t) {
    for (int j = 5; j < 16; ++j) EXPECT_EQ(a.row(t)[j], 0);
  }
  EXPECT_THROW(quantize_acts(x, 3, 5, 4), Error);  // stride < k
}

}  // namespace
}  // namespace tritune
