// The roofline probes (kernels/roofline.h): the in-place read of a workload's own spans.
#include "kernels/roofline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/stats.h"
#include "kernels/variant.h"

namespace tritune {
namespace {

TEST(Roofline, ReadingSpansInPlaceGivesABandwidth) {
  set_num_threads(2);
  std::vector<uint8_t> a((size_t)(8 << 20) + 77, 1), b((size_t)(3 << 20) + 5, 2);
  // Unaligned starts and odd sizes: each span is read from its first 64-byte boundary.
  const std::vector<ByteSpan> spans = {
      {a.data() + 3, (int64_t)a.size() - 3}, {b.data() + 1, (int64_t)b.size() - 1}, {b.data(), 0}};
  for (int threads : {1, 2}) {
    const double gbs = probe_read_spans(spans, threads);
    EXPECT_TRUE(std::isfinite(gbs)) << threads;
    EXPECT_GT(gbs, 0.1) << threads;
    EXPECT_LT(gbs, 10000.0) << threads;
  }
}

// The probes read their bytes as several streams side by side: every whole 64-bit word of the
// range must be read exactly once, whatever the size and alignment (a part skipped or read
// twice changes the xor of random data).
TEST(Roofline, StreamReadsCoverEveryWordOnce) {
  std::mt19937_64 rng(9);
  std::vector<uint8_t> buf((size_t)(1 << 20) + 4096);
  for (auto& b : buf) b = (uint8_t)rng();
  std::vector<Isa> isas;
  for (const Isa isa : {Isa::kX86_64, Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (cpu_supports(isa)) isas.push_back(isa);
  }
  ASSERT_FALSE(isas.empty());
  const int64_t sizes[] = {
      0, 7, 8, 63, 64, 255, 256, 1023, 1024, 1032, 4 * 256 + 255, (1 << 20) - 8, (1 << 20) + 77};
  for (const Isa isa : isas) {
    for (const int64_t n : sizes) {
      for (const int off : {0, 1, 8, 64}) {
        const uint8_t* p = buf.data() + off;
        uint64_t want = 0;
        for (int64_t i = 0; i + 8 <= n; i += 8) {
          uint64_t v;
          std::memcpy(&v, p + i, 8);
          want ^= v;
        }
        EXPECT_EQ(read_streams(p, n, isa), want)
            << "isa " << (int)isa << " bytes " << n << " offset " << off;
      }
    }
  }
}

TEST(Roofline, NothingToReadIsZero) {
  EXPECT_EQ(probe_read_spans({}, 2), 0.0);
  std::vector<uint8_t> tiny(200);
  // Shorter than one 256-byte read after alignment: nothing is read, and nothing is claimed.
  EXPECT_EQ(probe_read_spans({{tiny.data(), (int64_t)tiny.size()}}, 2), 0.0);
}

// The sample statistics behind every "median (quartiles)" figure the benchmarks print
// (kernels/stats.h): the median averages the middle two of an even count; a quantile is the
// nearest rank, index round(q * (n - 1)) of the sorted sample.
// llama-bench's "mean ± sd": the sample standard deviation. 2, 4, 4, 4, 5, 5, 7, 9 have mean 5
// and squared deviations summing to 32: sd = sqrt(32 / 7), not the population's sqrt(32 / 8) = 2.
TEST(Stats, MeanAndSampleStandardDeviation) {
  const MeanSd s = mean_sd({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.sd, std::sqrt(32.0 / 7.0));
  EXPECT_EQ(mean_sd({3}).sd, 0.0);  // one repetition: no spread
  EXPECT_EQ(mean_sd({3}).mean, 3.0);
  EXPECT_EQ(mean_sd({}).mean, 0.0);
}

// Each measurement is compared with the better (higher) of the bandwidths probed around it.
TEST(Stats, ProbesKeepTheBetterOfBeforeAndAfter) {
  std::vector<double> p;
  keep_better_probe(p, 50, false);
  keep_better_probe(p, 80, true);  // better after
  keep_better_probe(p, 90, false);
  keep_better_probe(p, 60, true);  // better before
  EXPECT_EQ(p, (std::vector<double>{80, 90}));
  // 1.6 GB in 25 ms at 80 GB/s is the bound (20 ms): 1.25x. The worse probe, 50 GB/s, would
  // make it 0.78x, a token faster than memory.
  EXPECT_DOUBLE_EQ(time_over_bound(0.025, 1.6e9, 50, 80), 1.25);
  EXPECT_DOUBLE_EQ(time_over_bound(0.025, 1.6e9, 80, 50), 1.25);
}

TEST(Stats, MedianAndNearestRankQuantiles) {
  EXPECT_EQ(median_or({4, 1, 3, 2}, -1), 2.5);
  EXPECT_EQ(median_or({5, 1, 3}, -1), 3.0);
  EXPECT_EQ(median_or({}, -1), -1.0);
  // n = 4: q = 0.25 -> rank round(0.75) = 1, q = 0.75 -> round(2.25) = 2.
  const std::vector<double> four = {40, 10, 30, 20};
  EXPECT_EQ(quantile_or(four, 0.25, -1), 20.0);
  EXPECT_EQ(quantile_or(four, 0.75, -1), 30.0);
  EXPECT_EQ(quantile_or(four, 0.0, -1), 10.0);
  EXPECT_EQ(quantile_or(four, 1.0, -1), 40.0);
  // n = 6: q = 0.25 -> round(1.25) = 1, q = 0.75 -> round(3.75) = 4.
  const std::vector<double> six = {6, 5, 4, 3, 2, 1};
  EXPECT_EQ(quantile_or(six, 0.25, -1), 2.0);
  EXPECT_EQ(quantile_or(six, 0.75, -1), 5.0);
  EXPECT_EQ(quantile_or({7}, 0.25, -1), 7.0);
  EXPECT_EQ(quantile_or({}, 0.5, -1), -1.0);
}

}  // namespace
}  // namespace tritune
