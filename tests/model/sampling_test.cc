// Sampling: greedy, determinism per seed, the filters' support, and the empirical
// distribution against the softmax (chi-square-style bound).
#include "model/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "kernels/error.h"

namespace tritune {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.0f, 3.0f, -1.0f};

TEST(Sampler, GreedyIsArgmaxLowestIdOnTies) {
  Sampler s({0.0f, 0, 1.0f, 42});
  EXPECT_EQ(s.sample(kLogits.data(), 6), 1);  // 3.0 at ids 1 and 4
  EXPECT_EQ(s.distribution(kLogits.data(), 6).size(), 1u);
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  std::vector<int32_t> a, b, c;
  Sampler sa({1.0f, 0, 1.0f, 7}), sb({1.0f, 0, 1.0f, 7}), sc({1.0f, 0, 1.0f, 8});
  for (int i = 0; i < 200; ++i) {
    a.push_back(sa.sample(kLogits.data(), 6));
    b.push_back(sb.sample(kLogits.data(), 6));
    c.push_back(sc.sample(kLogits.data(), 6));
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Sampler, FirstDrawsOfSeedZeroArePinned) {
  // xoshiro256** seeded by splitmix64(0): fixed forever, so seeds reproduce across builds.
  Sampler s({1.0f, 0, 1.0f, 0});
  const double u0 = s.uniform(), u1 = s.uniform();
  EXPECT_GE(u0, 0.0);
  EXPECT_LT(u0, 1.0);
  EXPECT_NE(u0, u1);
  Sampler again({1.0f, 0, 1.0f, 0});
  EXPECT_EQ(again.uniform(), u0);
}

TEST(Sampler, TopKAndTopPSupport) {
  Sampler k2({1.0f, 2, 1.0f, 1});
  auto d = k2.distribution(kLogits.data(), 6);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].first, 1);
  EXPECT_EQ(d[1].first, 4);
  EXPECT_NEAR(d[0].second, 0.5, 1e-12);
  for (int i = 0; i < 100; ++i) {
    const int32_t t = k2.sample(kLogits.data(), 6);
    EXPECT_TRUE(t == 1 || t == 4);
  }
  // softmax of kLogits: ids 1 and 4 hold 2 * e^3 / Z ~ 0.80; top-p 0.7 keeps exactly them.
  Sampler p({1.0f, 0, 0.7f, 1});
  d = p.distribution(kLogits.data(), 6);
  ASSERT_EQ(d.size(), 2u);
  // top-p 0.85 must also keep id 2 (next largest).
  Sampler p2({1.0f, 0, 0.85f, 1});
  d = p2.distribution(kLogits.data(), 6);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[2].first, 2);
  double sum = 0;
  for (auto& x : d) sum += x.second;
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixWhoseMassReachesP) {
  // Four equal logits: each probability is exactly 1/4, so the running sums 0.25, 0.5, 0.75
  // are exact. Nucleus sampling keeps the smallest prefix whose mass is >= p: a prefix that
  // reaches p exactly is enough.
  const std::vector<float> flat = {2.0f, 2.0f, 2.0f, 2.0f};
  Sampler half({1.0f, 0, 0.5f, 1});
  auto d = half.distribution(flat.data(), 4);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].first, 0);  // ties keep the lowest ids first
  EXPECT_EQ(d[1].first, 1);
  EXPECT_EQ(d[0].second, 0.5);
  EXPECT_EQ(d[1].second, 0.5);
  Sampler three({1.0f, 0, 0.75f, 1});
  EXPECT_EQ(three.distribution(flat.data(), 4).size(), 3u);
  Sampler quarter({1.0f, 0, 0.25f, 1});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(quarter.sample(flat.data(), 4), 0);
}

TEST(Sampler, InfiniteLogitsAreLimitsNotNaN) {
  // +inf is above every finite logit: the +inf tokens share all the probability (the limit of
  // the softmax). exp(inf - inf) used to turn every probability into NaN, and sample() then
  // returned the token with the lowest logit every time.
  const std::vector<float> up = {INFINITY, 0.0f, -1.0f, INFINITY};
  Sampler s({1.0f, 0, 1.0f, 42});
  auto d = s.distribution(up.data(), 4);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], std::make_pair(0, 0.5));
  EXPECT_EQ(d[1], std::make_pair(3, 0.5));
  int hits[4] = {0, 0, 0, 0};
  for (int i = 0; i < 400; ++i) ++hits[s.sample(up.data(), 4)];
  EXPECT_EQ(hits[1] + hits[2], 0);
  EXPECT_GT(hits[0], 100);
  EXPECT_GT(hits[3], 100);
  // -inf masks a token: it is never in the distribution, even through the rounding fall-back.
  const std::vector<float> masked = {-INFINITY, 1.0f, -INFINITY};
  d = s.distribution(masked.data(), 3);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], std::make_pair(1, 1.0));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(masked.data(), 3), 1);
  // Nothing left to sample: an error, greedy or not.
  const std::vector<float> none = {-INFINITY, -INFINITY};
  EXPECT_THROW(s.sample(none.data(), 2), Error);
  Sampler greedy({0.0f, 0, 1.0f, 1});
  EXPECT_THROW(greedy.sample(none.data(), 2), Error);
  EXPECT_EQ(greedy.sample(up.data(), 4), 0);
}

TEST(Sampler, EmpiricalFrequenciesMatchSoftmaxWithTemperature) {
  const float temp = 1.7f;
  Sampler s({temp, 0, 1.0f, 123});
  double z = 0;
  std::vector<double> p(kLogits.size());
  for (size_t i = 0; i < p.size(); ++i) z += p[i] = std::exp(kLogits[i] / temp);
  const int n = 60000;
  std::vector<int> count(kLogits.size(), 0);
  for (int i = 0; i < n; ++i) count[(size_t)s.sample(kLogits.data(), 6)]++;
  for (size_t i = 0; i < p.size(); ++i) {
    const double expect = n * p[i] / z;
    // 5 standard deviations of a binomial count.
    EXPECT_NEAR(count[i], expect, 5 * std::sqrt(expect) + 1) << "token " << i;
  }
}

TEST(Sampler, RejectsBadOptionsAndNaN) {
  EXPECT_THROW(Sampler({-1.0f, 0, 1.0f, 0}), Error);
  EXPECT_THROW(Sampler({NAN, 0, 1.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, -3, 1.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 0.0f, 0}), Error);
  EXPECT_THROW(Sampler({1.0f, 0, 1.5f, 0}), Error);
  Sampler s({1.0f, 0, 1.0f, 0});
  std::vector<float> bad = kLogits;
  bad[3] = NAN;
  EXPECT_THROW(s.sample(bad.data(), 6), Error);
  EXPECT_THROW(s.sample(bad.data(), 0), Error);
}

}  // namespace
}  // namespace tritune
