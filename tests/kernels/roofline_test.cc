// The roofline probes (kernels/roofline.h): the in-place read of a workload's own spans.
#include "kernels/roofline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
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

}  // namespace
}  // namespace tritune
