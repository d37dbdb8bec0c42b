// The memory check that turns impossible requests (shapes, contexts) into errors before they
// allocate: MemAvailable read from fake /proc/meminfo files, the threshold, the message, and the
// byte estimate of a benchmark's weight set.
#include "kernels/memory_budget.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kernels/error.h"
#include "test_util.h"

namespace tritune {
namespace {

std::string meminfo(const std::string& name, const std::string& text) {
  const std::string path = testing::scratch_dir("meminfo") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(MemoryBudget, ReadsMemAvailableAndRefusesWhatItCannotRead) {
  EXPECT_EQ(available_memory_bytes(meminfo(
                "ok", "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:   2048 kB\n")),
            2048 * 1024);
  EXPECT_EQ(available_memory_bytes(meminfo("missing", "MemTotal: 24000000 kB\n")), -1);
  EXPECT_EQ(available_memory_bytes(meminfo("word", "MemAvailable: lots kB\n")), -1);
  EXPECT_EQ(available_memory_bytes(meminfo("negative", "MemAvailable: -5 kB\n")), -1);
  EXPECT_EQ(available_memory_bytes(meminfo("unit", "MemAvailable: 5 MB\n")), -1);
  EXPECT_EQ(available_memory_bytes(meminfo("huge", "MemAvailable: 99999999999999999999 kB\n")), -1);
  EXPECT_EQ(available_memory_bytes(meminfo("empty", "")), -1);
  EXPECT_EQ(available_memory_bytes("/nonexistent/meminfo"), -1);
  // The real file on Linux has the line.
  EXPECT_GT(available_memory_bytes(), 0);
}

TEST(MemoryBudget, RefusesAboveWhatIsAvailableNamingTheRequestAndTheFix) {
  const int64_t gib = int64_t(1) << 30;
  EXPECT_NO_THROW(require_memory(double(gib), "x", "fix", gib));  // exactly fits
  EXPECT_NO_THROW(require_memory(1e18, "x", "fix", -1));          // unknown: no check
  try {
    require_memory(3.0 * (double)gib, "KV cache of 9 positions", "lower the context", 2 * gib);
    FAIL() << "3 GiB fitted in 2";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "KV cache of 9 positions would need 3.00 GiB, more than the 2.00 GiB available "
                 "(MemAvailable); lower the context");
  }
  EXPECT_THROW(require_memory(double(gib) + 1, "x", "fix", gib), Error);
  EXPECT_EQ(human_bytes(512.0 * (1 << 20)), "512.00 MiB");
  EXPECT_EQ(human_bytes(1.5 * (double)gib), "1.50 GiB");
  EXPECT_EQ(human_bytes(1000), "1000 B");
  EXPECT_EQ(human_bytes(3.0 * double(int64_t(1) << 50)), "3.00 PiB");
}

TEST(MemoryBudget, WeightSetBytesCountsTheSourceThePackAndItsCopies) {
  const int64_t n = 256, k = 512;
  const double w = double(n * k);
  // Ternary formats start from int8 codes, float formats from floats; 2 copies + the pack.
  EXPECT_DOUBLE_EQ(weight_set_bytes(Format::kI2S, n, k, 2),
                   w + 3 * w * format_traits(Format::kI2S).bits_per_weight / 8);
  EXPECT_DOUBLE_EQ(weight_set_bytes(Format::kF16, n, k, 2), 4 * w + 3 * 2 * w);
  EXPECT_DOUBLE_EQ(weight_set_bytes(Format::kF32, n, k, 1), 4 * w + 2 * 4 * w);
}

}  // namespace
}  // namespace tritune
