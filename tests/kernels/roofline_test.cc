// The roofline probes (kernels/roofline.h): the in-place read of a workload's own spans.
#include "kernels/roofline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

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

TEST(Roofline, NothingToReadIsZero) {
  EXPECT_EQ(probe_read_spans({}, 2), 0.0);
  std::vector<uint8_t> tiny(200);
  // Shorter than one 256-byte read after alignment: nothing is read, and nothing is claimed.
  EXPECT_EQ(probe_read_spans({{tiny.data(), (int64_t)tiny.size()}}, 2), 0.0);
}

}  // namespace
}  // namespace tritune
