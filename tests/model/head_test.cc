// Embedding rows and the output head: hand-decoded Q8_0 / Q6_K blocks, the kernel head (every
// ISA level this CPU has) against the reference for every supported type, hostile values.
#include "model/head.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "model/mapped_file.h"
#include "model/parallel.h"
#include "tests/model/tiny_model.h"

namespace tritune {
namespace {

TEST(Head, Q8_0RowHandDecoded) {
  RawMatrix m;
  m.name = "token_embd.weight";
  m.rows = 2;
  m.cols = 32;
  m.ggml_type = kGgmlQ8_0;
  m.owned.assign(68, 0);
  const uint16_t half_0_5 = 0x3800;
  std::memcpy(&m.owned[34], &half_0_5, 2);
  for (int i = 0; i < 32; ++i) m.owned[36 + i] = (uint8_t)(int8_t)(i - 16);
  m.data = m.owned.data();
  m.bytes = 68;
  float row[32];
  embed_row(m, 1, row);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(row[i], 0.5f * (i - 16));
  EXPECT_THROW(embed_row(m, 2, row), Error);
  EXPECT_THROW(embed_row(m, -1, row), Error);
}

// A head in a file mapping (>= 2 MiB) is copied onto huge pages with the mapped pages dropped:
// the logits equal those of the same bytes in memory, and the mapping still reads the same bytes
// afterwards (tied embeddings look rows up in it).
TEST(Head, MappedHeadIsCopiedAndTheMappingStillReads) {
  const int64_t rows = 1100, cols = 2048;  // 1100 * 64 blocks * 34 bytes = 2.39 MB
  const int64_t bytes = rows * cols / 32 * 34;
  std::vector<uint8_t> q8((size_t)bytes);
  std::mt19937 rng(5);
  for (int64_t b = 0; b < bytes / 34; ++b) {
    const uint16_t d = (uint16_t)(0x2000 + rng() % 0x1000);  // small positive halves
    std::memcpy(&q8[(size_t)(b * 34)], &d, 2);
    for (int i = 2; i < 34; ++i) q8[(size_t)(b * 34 + i)] = (uint8_t)(rng() % 255);
  }
  const char* tmp = std::getenv("TRITUNE_TEST_TMP");
  const std::string root = tmp && *tmp ? tmp : "/tmp";
  // The scratch root may not exist yet: ctest's fixture deletes it, and this test can be the
  // first of the run to write there (it failed whenever ctest scheduled it first).
  mkdir(root.c_str(), 0755);
  const std::string path = root + "/mapped_head_" + std::to_string(getpid()) + ".bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    // 100 bytes of header first: the head starts off a page boundary, as in a GGUF file.
    std::vector<uint8_t> pad(100, 7);
    std::fwrite(pad.data(), 1, pad.size(), f);
    std::fwrite(q8.data(), 1, q8.size(), f);
    std::fclose(f);
  }
  auto file = MappedFile::open(path);
  RawMatrix mapped;
  mapped.name = "output.weight";
  mapped.rows = rows;
  mapped.cols = cols;
  mapped.ggml_type = kGgmlQ8_0;
  mapped.data = file->data() + 100;
  mapped.bytes = bytes;
  mapped.file_mapped = true;
  RawMatrix owned = mapped;
  owned.owned = q8;
  owned.data = owned.owned.data();
  owned.file_mapped = false;
  const OutputHead a(mapped), b(owned);
  EXPECT_EQ(a.owned_bytes(), bytes);
  EXPECT_EQ(b.owned_bytes(), 0);
  // From AVX2 on the copy is also the interleaved layout: the same logits as the owned bytes
  // interleaved, and within float rounding of them read as stored.
  const bool il = selected_isa() >= Isa::kAvx2;
  EXPECT_EQ(a.describe().find("interleaved") != std::string::npos, il) << a.describe();
  const OutputHead c(owned, il ? HeadLayout::kInterleaved : HeadLayout::kAsStored);
  EXPECT_EQ(c.owned_bytes(), il ? bytes : 0);
  std::vector<float> x((size_t)(2 * cols));
  for (auto& v : x) v = (float)((int)(rng() % 2001) - 1000) / 250.0f;
  std::vector<float> la((size_t)(2 * rows)), lb(la.size()), lc(la.size());
  ThreadPool pool(2);
  a.forward(x.data(), 2, cols, la.data(), rows, pool);
  b.forward(x.data(), 2, cols, lb.data(), rows, pool);
  c.forward(x.data(), 2, cols, lc.data(), rows, pool);
  EXPECT_EQ(la, lc);
  double scale = 0;
  for (float v : lb) scale = std::max(scale, (double)std::fabs(v));
  for (size_t i = 0; i < la.size(); ++i) ASSERT_NEAR(la[i], lb[i], 2e-6 * scale) << i;
  EXPECT_EQ(std::memcmp(file->data() + 100, q8.data(), q8.size()), 0);
  float row[2048];
  embed_row(mapped, rows - 1, row);
  float want[2048];
  embed_row(owned, rows - 1, want);
  EXPECT_EQ(std::memcmp(row, want, sizeof row), 0);
  std::remove(path.c_str());
}

TEST(Head, Q6_KBlockHandDecoded) {
  // ql = 0x21 (low nibble 1, high 2), qh = 0xE4 (2-bit fields 0,1,2,3), scales j+1, d = 1:
  // weights in each 32-group of a 128-half are (1|0<<4)-32, (1|1<<4)-32, (2|2<<4)-32,
  // (2|3<<4)-32 = -31, -15, 2, 18, and weight i has scale i/16 + 1.
  RawMatrix m;
  m.name = "output.weight";
  m.rows = 1;
  m.cols = 256;
  m.ggml_type = kGgmlQ6_K;
  m.owned.assign(210, 0);
  std::fill(m.owned.begin(), m.owned.begin() + 128, 0x21);
  std::fill(m.owned.begin() + 128, m.owned.begin() + 192, 0xE4);
  for (int j = 0; j < 16; ++j) m.owned[192 + j] = (uint8_t)(j + 1);
  const uint16_t one = 0x3C00;
  std::memcpy(&m.owned[208], &one, 2);
  m.data = m.owned.data();
  m.bytes = 210;
  float row[256];
  embed_row(m, 0, row);
  const int q[4] = {-31, -15, 2, 18};
  for (int i = 0; i < 256; ++i) {
    ASSERT_EQ(row[i], (float)((i / 16 + 1) * q[(i % 128) / 32])) << i;
  }
}

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

class HeadTypes : public ::testing::TestWithParam<uint32_t> {};

TEST_P(HeadTypes, KernelMatchesReference) {
  std::mt19937_64 rng(17);
  // 300 rows: not a multiple of the 64-row chunks; 512 columns: two Q6_K super-blocks.
  RawMatrix m = testing::make_raw(rng, "output.weight", 300, 512, GetParam(), 0.5f);
  if (GetParam() == kGgmlQ8_0) {
    m.owned[2] = 0x80;  // a -128 weight (no quantizer writes it; a hostile file may)
    m.owned[3] = 0x80;
  }
  for (int64_t tokens : {1, 3}) {
    const std::vector<float> x = testing::random_floats(rng, tokens * 512, 1.0f);
    std::vector<float> want((size_t)(tokens * 300)), got(want.size());
    ThreadPool pool(2);
    head_reference(m, x.data(), tokens, 512, want.data(), 300, &pool);
    double scale = 0;
    for (float v : want) scale = std::max(scale, (double)std::fabs(v));
    ASSERT_GT(scale, 0.1);
    for_each_isa([&] {
      OutputHead head(m);
      EXPECT_EQ(head.weight_bytes(), m.bytes);  // every type streams its own bytes
      std::fill(got.begin(), got.end(), NAN);
      head.forward(x.data(), tokens, 512, got.data(), 300, pool);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 2e-6 * scale) << head.describe() << " at " << i;
      }
    });
  }
}

INSTANTIATE_TEST_SUITE_P(Types, HeadTypes,
                         ::testing::Values(kGgmlF32, kGgmlF16, kGgmlBF16, kGgmlQ8_0, kGgmlQ6_K),
                         [](const auto& info) { return head_type_name(info.param); });

// The Q6_K kernels on arbitrary bytes (every ql/qh/scale byte is a valid code; only d is kept
// finite): extreme codes 0 and 63, scale -128 and full-range activations stay exact in the
// int16/int32 steps, against the reference's independent dequantizer.
// A Q6_K matrix of random bytes (every ql/qh/scale byte is a valid code; d kept finite and
// normal, 2^-7 .. 2^-1), with every `period`-th super-block (offset 0) all codes 63 and every scale
// s63, and every `period`-th (offset 1) all codes 0 and every scale s0.
RawMatrix arbitrary_q6_k(std::mt19937_64& rng, int64_t rows, int64_t cols, int64_t period,
                         uint8_t s63, uint8_t s0) {
  RawMatrix m;
  m.name = "output.weight";
  m.ggml_type = kGgmlQ6_K;
  m.rows = rows;
  m.cols = cols;
  m.owned.resize((size_t)(rows * cols / 256 * 210));
  for (auto& b : m.owned) b = (uint8_t)rng();
  for (int64_t blk = 0; blk < rows * cols / 256; ++blk) {
    uint8_t* p = m.owned.data() + blk * 210;
    const uint16_t d = (uint16_t)(0x2000 + rng() % 0x1800);
    std::memcpy(p + 208, &d, 2);
    if (blk % period == 0) {
      std::memset(p, 0xFF, 192);
      std::memset(p + 192, s63, 16);
    } else if (blk % period == 1) {
      std::memset(p, 0x00, 192);
      std::memset(p + 192, s0, 16);
    }
  }
  m.data = m.owned.data();
  m.bytes = (int64_t)m.owned.size();
  return m;
}

TEST(Head, Q6_KKernelOnArbitraryBlockBytes) {
  std::mt19937_64 rng(29);
  const int64_t rows = 70, cols = 768;  // three super-blocks per row
  // Every third block all codes 63 with scales -128, every third all codes 0 with scales 127.
  const RawMatrix m = arbitrary_q6_k(rng, rows, cols, 3, 0x80, 0x7F);
  for (int64_t tokens : {1, 2}) {
    std::vector<float> x((size_t)(tokens * cols));
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = i % 5 == 0 ? (i % 2 ? 8.0f : -8.0f) : 0.01f * (float)(rng() % 200) - 1.0f;
    std::vector<float> want((size_t)(tokens * rows)), got(want.size());
    ThreadPool pool(2);
    head_reference(m, x.data(), tokens, cols, want.data(), rows, &pool);
    double scale = 0;
    for (float v : want) scale = std::max(scale, (double)std::fabs(v));
    ASSERT_GT(scale, 1.0);
    for_each_isa([&] {
      OutputHead head(m);
      std::fill(got.begin(), got.end(), NAN);
      head.forward(x.data(), tokens, cols, got.data(), rows, pool);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 2e-6 * scale) << head.describe() << " at " << i;
      }
    });
  }
}

TEST(Head, Q8_0OddBlockCountsAndFewRows) {
  // 1, 3 and 5 blocks per row (the 512-bit kernel's pair loop, its tail and the 4-block
  // unroll), 1..3 rows.
  std::mt19937_64 rng(23);
  for (int64_t cols : {32, 96, 160, 2560}) {
    for (int64_t rows : {1, 3}) {
      RawMatrix m = testing::make_raw(rng, "output.weight", rows, cols, kGgmlQ8_0, 0.5f);
      const std::vector<float> x = testing::random_floats(rng, 2 * cols, 1.0f);
      std::vector<float> want((size_t)(2 * rows)), got(want.size());
      ThreadPool pool(2);
      head_reference(m, x.data(), 2, cols, want.data(), rows, &pool);
      for_each_isa([&] {
        OutputHead(m).forward(x.data(), 2, cols, got.data(), rows, pool);
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i])))
              << "cols " << cols << " rows " << rows << " at " << i;
        }
      });
    }
  }
}

// HeadLayout::kInterleaved against the reference for `tokens` rows of x: interleaved at every
// ISA level from AVX2 on (as stored below), on 1 and 2 threads; tol(want, scale) is the allowed
// difference, scale the largest |logit| (which must exceed 0.1).
template <class Tol>
void check_interleaved_head(const RawMatrix& m, const std::vector<float>& x, int64_t tokens,
                            Tol tol) {
  const int64_t rows = m.rows, cols = m.cols;
  std::vector<float> want((size_t)(tokens * rows)), got(want.size());
  ThreadPool pool2(2);
  head_reference(m, x.data(), tokens, cols, want.data(), rows, &pool2);
  double scale = 0;
  for (float v : want) scale = std::max(scale, (double)std::fabs(v));
  ASSERT_GT(scale, 0.1);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for_each_isa([&] {
      const OutputHead head(m, HeadLayout::kInterleaved);
      // Groups of 8 rows (AVX2 kernels) or 16 (AVX-512); fewer rows than a group stay as
      // stored.
      const int64_t group = selected_isa() >= Isa::kAvx512Vnni ? 16 : 8;
      const bool il = selected_isa() >= Isa::kAvx2 && rows >= group;
      if (il) {
        EXPECT_NE(head.describe().find(std::to_string(group) + "-row"), std::string::npos)
            << head.describe();
      }
      ASSERT_EQ(head.describe().find("interleaved") != std::string::npos, il) << head.describe();
      EXPECT_EQ(head.weight_bytes(), m.bytes);
      EXPECT_EQ(head.owned_bytes(), il ? m.bytes : 0);
      std::fill(got.begin(), got.end(), NAN);
      head.forward(x.data(), tokens, cols, got.data(), rows, pool);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], tol(want[i], scale))
            << head.describe() << " rows " << rows << " cols " << cols << " tokens " << tokens
            << " at " << i;
      }
    });
  }
}

// The interleaved Q8_0 layout (HeadLayout::kInterleaved) against the reference: row counts
// around the groups of 8 and the passes of 4 groups (the rest stays as stored), 1 to 80 blocks per
// row, several tokens, -128 and 127 weights next to full-range activations, 1 and 2 threads.
TEST(Head, Q8_0InterleavedMatchesReference) {
  std::mt19937_64 rng(31);
  for (int64_t cols : {32, 96, 2560}) {
    for (int64_t rows : {8, 16, 17, 31, 40, 48, 100, 300, 1000}) {
      RawMatrix m = testing::make_raw(rng, "output.weight", rows, cols, kGgmlQ8_0, 0.5f);
      for (int64_t b = 0; b < rows * cols / 32; b += 7) {  // extreme weights in every 7th block
        m.owned[(size_t)(b * 34 + 2)] = 0x80;
        m.owned[(size_t)(b * 34 + 3)] = 0x7F;
        m.owned[(size_t)(b * 34 + 33)] = 0x80;
      }
      for (int64_t tokens : {1, 3}) {
        std::vector<float> x = testing::random_floats(rng, tokens * cols, 1.0f);
        x[0] = 4.0f;  // a block whose quantized values reach +-127
        x[(size_t)(cols - 1)] = -4.0f;
        check_interleaved_head(m, x, tokens,
                               [](float want, double) { return 1e-5 * (1 + std::fabs(want)); });
      }
    }
  }
}

// The interleaved Q6_K layout against the reference, on arbitrary block bytes: row counts
// around the groups of 8 and the passes of 4 groups (the rest stays as stored), 1 to 10
// super-blocks per row, 1 and 2 threads, and the int16 extremes of the kernel's group sums:
// blocks of all codes 0 or all 63 with scales -128 / 127 against activations that all quantize
// to +127 or -127 (the sum of (q - 32) * x over a 16-column group and pair reaches -32512).
TEST(Head, Q6_KInterleavedMatchesReference) {
  std::mt19937_64 rng(37);
  for (int64_t cols : {256, 512, 2560}) {
    for (int64_t rows : {8, 17, 31, 40, 48, 64, 100, 129, 300}) {
      // Every fifth block all codes 63 with scales 127, every fifth all codes 0 with -128.
      const RawMatrix m = arbitrary_q6_k(rng, rows, cols, 5, 0x7F, 0x80);
      const int64_t tokens = 3;
      std::vector<float> x((size_t)(tokens * cols));
      for (int64_t i = 0; i < cols; ++i) {
        x[(size_t)i] = 0.01f * (float)(rng() % 200) - 1.0f;
        x[(size_t)(cols + i)] = 1.0f;
        x[(size_t)(2 * cols + i)] = -1.0f;
      }
      check_interleaved_head(m, x, tokens, [](float, double scale) { return 2e-6 * scale; });
    }
  }
}

TEST(Head, Int8HeadQuantizesActivationsInBlocksOf32) {
  // One Q8_0 row of ones (d = 1): the logit is sum_b (sum_i x_q[i]) / s_b, not sum x.
  RawMatrix m;
  m.name = "output.weight";
  m.rows = 1;
  m.cols = 64;
  m.ggml_type = kGgmlQ8_0;
  m.owned.assign(68, 1);
  const uint16_t one = 0x3C00;
  std::memcpy(&m.owned[0], &one, 2);
  std::memcpy(&m.owned[34], &one, 2);
  m.data = m.owned.data();
  m.bytes = 68;
  std::vector<float> x(64, 0.0f);
  x[0] = 1.0f;
  x[1] = 0.3f;    // 0.3 * 127 = 38.1 -> 38
  x[32] = 0.01f;  // alone in block 1: exactly 127 / s
  float want = (127 + 38) / 127.0f + 0.01f, got = 0, ref = 0;
  ThreadPool pool(1);
  head_reference(m, x.data(), 1, 64, &ref, 1, &pool);
  OutputHead(m).forward(x.data(), 1, 64, &got, 1, pool);
  EXPECT_NEAR(ref, want, 1e-6);
  EXPECT_NEAR(got, want, 1e-6);
  EXPECT_NE(ref, 1.31f);  // the float dot would give 1.31
}

TEST(Head, RejectsUnsupportedAndTruncated) {
  std::mt19937_64 rng(1);
  RawMatrix m = testing::make_raw(rng, "output.weight", 4, 256, kGgmlQ8_0, 1.0f);
  EXPECT_NO_THROW(check_raw_matrix(m, 4, 256));
  try {
    check_raw_matrix(m, 5, 256);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output.weight"), std::string::npos);
  }
  RawMatrix t = m;
  t.data = t.owned.data();
  t.bytes -= 34;
  EXPECT_THROW(OutputHead h(t), Error);
  t.bytes = m.bytes;
  t.ggml_type = 2;  // Q4_0
  EXPECT_THROW(OutputHead h(t), Error);
  t.ggml_type = kGgmlQ6_K;
  t.cols = 100;  // not a multiple of 256
  EXPECT_THROW(check_raw_matrix(t, 4, 100), Error);
  t.data = nullptr;
  t.cols = 256;
  EXPECT_THROW(check_raw_matrix(t, 4, 256), Error);
}

}  // namespace
}  // namespace tritune
