// Weight storage (kernels/huge_pages.h): every size class returns usable, non-overlapping,
// aligned memory that survives frees of its neighbours in any order, and arenas are reused.
#include "kernels/huge_pages.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace tritune {
namespace {

struct Block {
  uint8_t* p;
  size_t n;
  uint8_t tag;
};

TEST(HugePages, BuffersOfEverySizeAreDisjointAlignedAndKeepTheirBytes) {
  std::mt19937 rng(7);
  // Small (heap), arena-sized (64 KiB .. 16 MiB) and large (own huge allocation).
  const std::vector<size_t> sizes = {
      100,         kArenaMin - 1,   kArenaMin, 409600, 1638400,       4423680,
      (16u << 20), (16u << 20) + 1, 40u << 20, 3,      kArenaMin + 1, 7u << 20};
  std::vector<Block> live;
  for (int round = 0; round < 6; ++round) {
    for (size_t n : sizes) {
      auto* p = static_cast<uint8_t*>(alloc_weights(n));
      ASSERT_NE(p, nullptr) << n;
#if !defined(__SANITIZE_ADDRESS__)
      if (n >= kArenaMin) {
        EXPECT_EQ((uintptr_t)p % 4096, 0u) << n;
      }
      if (n > (16u << 20)) {
        EXPECT_EQ((uintptr_t)p % kHugePageBytes, 0u) << n;
      }
#endif
      const uint8_t tag = (uint8_t)(rng() | 1);
      std::fill(p, p + n, tag);
      live.push_back({p, n, tag});
    }
    // No two live buffers overlap.
    std::vector<Block> sorted = live;
    std::sort(sorted.begin(), sorted.end(),
              [](const Block& a, const Block& b) { return a.p < b.p; });
    for (size_t i = 1; i < sorted.size(); ++i) {
      ASSERT_LE(sorted[i - 1].p + sorted[i - 1].n, sorted[i].p);
    }
    // Free a random half; the rest keep their bytes.
    std::shuffle(live.begin(), live.end(), rng);
    for (size_t i = 0; i < live.size() / 2; ++i) free_weights(live[i].p, live[i].n);
    live.erase(live.begin(), live.begin() + (long)(live.size() / 2));
    for (const Block& b : live) {
      ASSERT_TRUE(std::all_of(b.p, b.p + b.n, [&](uint8_t v) { return v == b.tag; })) << b.n;
    }
  }
  for (const Block& b : live) free_weights(b.p, b.n);
}

// A model load: every layer's storage bytes, then layer by layer its kernel layout (same size)
// while the storage is freed. Freed ranges are reused, so the arenas hold one copy of the
// weights, not a copy plus the holes of the other.
TEST(HugePages, FreedRangesAreReusedWhenAModelIsRepacked) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "every buffer comes from the heap under AddressSanitizer";
#else
  const size_t before = weight_arena_bytes();
  const std::vector<size_t> layer = {1638400, 409600, 409600, 1638400, 4423680, 4423680, 4423680};
  std::vector<Block> storage, kernel;
  size_t total = 0;
  for (int l = 0; l < 14; ++l) {
    for (size_t n : layer) {
      auto* p = static_cast<uint8_t*>(alloc_weights(n));
      ASSERT_NE(p, nullptr);
      std::fill(p, p + n, (uint8_t)(storage.size() + 1));
      storage.push_back({p, n, (uint8_t)(storage.size() + 1)});
      total += n;
    }
  }
  for (const Block& s : storage) {
    auto* p = static_cast<uint8_t*>(alloc_weights(s.n));
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(std::all_of(s.p, s.p + s.n, [&](uint8_t v) { return v == s.tag; }));
    std::fill(p, p + s.n, (uint8_t)(s.tag ^ 0xff));
    kernel.push_back({p, s.n, (uint8_t)(s.tag ^ 0xff)});
    free_weights(s.p, s.n);
  }
  const size_t arena = size_t(64) << 20;
  const size_t needed = (total + arena - 1) / arena * arena;  // 243 MB of buffers: 4 arenas
  EXPECT_LE(weight_arena_bytes() - before, needed)
      << "the repacked weights should fit in as many arenas as they fill";
  for (const Block& b : kernel) {
    ASSERT_TRUE(std::all_of(b.p, b.p + b.n, [&](uint8_t v) { return v == b.tag; })) << b.n;
    free_weights(b.p, b.n);
  }
  EXPECT_EQ(weight_arena_bytes(), before) << "arenas are returned when their last buffer goes";
#endif
}

// A hole exactly the size of the next buffer (whole 4 KiB pages) is reused: first fit takes a
// range of equal size, not only a larger one.
TEST(HugePages, AHoleOfExactlyTheRequestedSizeIsReused) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "every buffer comes from the heap under AddressSanitizer";
#else
  const size_t n = (size_t(1) << 20) + 3 * 4096;  // whole pages: the hole is exactly n bytes
  auto* a = static_cast<uint8_t*>(alloc_weights(n));
  auto* b = static_cast<uint8_t*>(alloc_weights(n));  // after a: a's range becomes a hole
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b, a + n) << "consecutive buffers of whole pages are adjacent in one arena";
  free_weights(a, n);
  auto* c = static_cast<uint8_t*>(alloc_weights(n));
  EXPECT_EQ(c, a) << "the freed range of the same size was not reused";
  free_weights(c, n);
  free_weights(b, n);
#endif
}

// A freed range does not stay resident: the whole huge pages inside it go back to the kernel
// (a fused q/k/v or gate/up buffer is larger than the storages freed before it, so holes are
// not always refilled at once). Its neighbour keeps the arena alive.
TEST(HugePages, FreedRangesAreNotResident) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "every buffer comes from the heap under AddressSanitizer";
#else
  const size_t n = size_t(6) << 20;
  auto* a = static_cast<uint8_t*>(alloc_weights(n));
  auto* keep = static_cast<uint8_t*>(alloc_weights(size_t(1) << 20));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(keep, nullptr);
  std::fill(a, a + n, (uint8_t)0xab);
  keep[0] = 1;
  // The 2 MiB pages wholly inside a's range.
  const uintptr_t lo = ((uintptr_t)a + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t hi = ((uintptr_t)a + n) / kHugePageBytes * kHugePageBytes;
  ASSERT_GT(hi, lo);
  std::vector<unsigned char> in((hi - lo) / 4096);
  ASSERT_EQ(mincore(reinterpret_cast<void*>(lo), hi - lo, in.data()), 0);
  EXPECT_TRUE(std::all_of(in.begin(), in.end(), [](unsigned char c) { return c & 1; }));
  free_weights(a, n);
  if (mincore(reinterpret_cast<void*>(lo), hi - lo, in.data()) == 0) {  // arena still mapped
    EXPECT_TRUE(std::none_of(in.begin(), in.end(), [](unsigned char c) { return c & 1; }))
        << "a freed 6 MiB range kept its pages";
  }
  free_weights(keep, size_t(1) << 20);
#endif
}

TEST(HugePages, WeightBytesBehavesLikeAVector) {
  WeightBytes a(5u << 20, 0x5a);
  WeightBytes b = a;  // copy: its own buffer
  ASSERT_NE(a.data(), b.data());
  b[123] = 1;
  EXPECT_EQ(a[123], 0x5a);
  WeightBytes c = std::move(a);
  EXPECT_EQ(c.size(), (size_t)(5u << 20));
  EXPECT_EQ(c[0], 0x5a);
  c.assign(200000, 3);
  c.resize(300000, 4);
  EXPECT_EQ(c[199999], 3);
  EXPECT_EQ(c[299999], 4);
  std::vector<WeightBytes> copies(4, b);  // the benchmarks' cold rotation
  for (const auto& w : copies) EXPECT_EQ(w[123], 1);
}

}  // namespace
}  // namespace tritune
