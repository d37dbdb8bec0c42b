// Fuzz-style robustness of the model-file loaders: small valid models (I2_S and TQ2_0 GGUF, HF
// packed safetensors + config.json) are mutated thousands of times with a fixed seed (byte
// flips, header-targeted flips, extreme integers over header fields, truncations, insertions,
// deletions, duplicated chunks) and every load must either succeed or throw tritune::Error:
// no crash, no other exception, and no single allocation above a bound (hostile counts must be
// checked against the file size before anything is allocated).
//
// The allocation bound is enforced by replacing the global operator new for this test binary:
// it only records the largest request while a fuzz load is running.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

#include "kernels/error.h"
#include "model/ggml_types.h"
#include "model/loader.h"
#include "model/synthetic.h"
#include "tests/model/model_files_util.h"

namespace {
std::atomic<bool> g_track{false};
std::atomic<size_t> g_max_alloc{0};

void* tracked_alloc(size_t n) {
  if (g_track.load(std::memory_order_relaxed)) {
    size_t cur = g_max_alloc.load(std::memory_order_relaxed);
    while (n > cur && !g_max_alloc.compare_exchange_weak(cur, n)) {
    }
  }
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t n) {
  return tracked_alloc(n);
}
void* operator new[](size_t n) {
  return tracked_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}

namespace tritune {
namespace {

// Largest single allocation a load of these ~100-200 KB files may make.
constexpr size_t kMaxAlloc = size_t(32) << 20;

struct Outcome {
  int ok = 0, errors = 0;
};

// Runs one load; any exception that is not tritune::Error fails the test.
template <typename Fn>
void attempt(Fn fn, Outcome& o, const std::string& what) {
  g_max_alloc = 0;
  g_track = true;
  try {
    fn();
    ++o.ok;
  } catch (const Error&) {
    ++o.errors;
  } catch (const std::exception& e) {
    g_track = false;
    ADD_FAILURE() << what << ": exception that is not tritune::Error: " << e.what();
  }
  g_track = false;
  EXPECT_LT(g_max_alloc.load(), kMaxAlloc) << what << ": allocated " << g_max_alloc.load();
}

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}
  size_t pick(size_t n) { return n ? (size_t)(rng_() % n) : 0; }

  // header_end: bytes before the tensor data (where most parsing decisions are made).
  std::vector<uint8_t> mutate(const std::vector<uint8_t>& in, size_t header_end, int& kind) {
    std::vector<uint8_t> b = in;
    kind = (int)pick(8);
    const size_t h = std::max<size_t>(1, std::min(header_end, b.size()));
    switch (kind) {
      case 0: {  // random flips anywhere
        for (size_t i = 0, n = 1 + pick(4); i < n; ++i)
          b[pick(b.size())] ^= (uint8_t)(1 + pick(255));
        break;
      }
      case 1:
      case 2: {  // flips in the header
        for (size_t i = 0, n = 1 + pick(3); i < n; ++i) b[pick(h)] ^= (uint8_t)(1 << pick(8));
        break;
      }
      case 3: {  // an extreme integer over a header field
        static const uint64_t kVals[] = {
            0, 1, ~0ull, 1ull << 62, 1ull << 32, 0x7fffffff, 0xffffffff, 1ull << 40, 31, 37, 65};
        const uint64_t v = kVals[pick(sizeof kVals / sizeof kVals[0])];
        const size_t at = pick(h > 8 ? h - 8 : 1);
        std::memcpy(b.data() + at, &v, pick(2) ? 8 : 4);
        break;
      }
      case 4:  // truncate
        b.resize(pick(b.size()));
        break;
      case 5: {  // insert random bytes (mostly in the header)
        const size_t at = pick(2) ? pick(h) : pick(b.size());
        std::vector<uint8_t> ins(1 + pick(16));
        for (auto& x : ins) x = (uint8_t)rng_();
        b.insert(b.begin() + (long)at, ins.begin(), ins.end());
        break;
      }
      case 6: {  // delete a range
        const size_t at = pick(2) ? pick(h) : pick(b.size());
        const size_t n = std::min(b.size() - at, 1 + pick(32));
        b.erase(b.begin() + (long)at, b.begin() + (long)(at + n));
        break;
      }
      default: {  // duplicate a chunk of the header elsewhere in it
        const size_t from = pick(h), n = std::min(h - from, 1 + pick(24)), to = pick(h);
        std::vector<uint8_t> chunk(b.begin() + (long)from, b.begin() + (long)(from + n));
        b.insert(b.begin() + (long)to, chunk.begin(), chunk.end());
      }
    }
    return b;
  }

 private:
  std::mt19937_64 rng_;
};

std::string write_micro(const std::string& dir, const ModelShape& s, const std::string& format) {
  SyntheticOptions o;
  o.shape = s;
  o.format = format;
  o.seed = 5;
  const std::string path = dir + "/micro_" + format + (format == "safetensors" ? "" : ".gguf");
  write_synthetic_model(o, path);
  return path;
}

// Loads a mutated GGUF and touches what the model exposes (rows of the embedding, every
// layer's storage) so that a pointer the validation let through past the end would be read.
void load_and_touch(std::vector<uint8_t> bytes) {
  const auto f = gguf::File::parse(MappedFile::from_bytes(std::move(bytes), "fuzz.gguf"));
  const ModelWeights m = load_gguf(f);
  std::vector<float> row((size_t)m.tok_embd.cols);
  ggml::dequantize_rows(m.tok_embd.ggml_type, m.tok_embd.data, m.tok_embd.cols, m.tok_embd.rows,
                        m.tok_embd.rows - 1, 1, row.data());
  for (const auto& L : m.layers) {
    if (L.w_down.format == Format::kI2S) (void)ternary_of(L.w_down);
  }
}

void fuzz_gguf(const std::string& path, int iterations, uint64_t seed) {
  const std::vector<uint8_t> valid = testing::read_bytes(path);
  const size_t header_end = gguf::File::open(path)->data_offset();
  Outcome o;
  attempt([&] { load_and_touch(valid); }, o, "valid file");
  ASSERT_EQ(o.ok, 1) << "the unmutated file must load";
  Mutator mut(seed);
  int kinds_seen[8] = {};
  for (int i = 0; i < iterations; ++i) {
    int kind;
    std::vector<uint8_t> b = mut.mutate(valid, header_end, kind);
    ++kinds_seen[kind];
    attempt([&] { load_and_touch(std::move(b)); }, o,
            path + " mutation " + std::to_string(i) + " (kind " + std::to_string(kind) + ")");
    if (::testing::Test::HasFailure()) return;  // one report is enough
  }
  for (int k = 0; k < 8; ++k) EXPECT_GT(kinds_seen[k], 0) << "mutation kind " << k;
  // Both outcomes occur: the mutations are neither all harmless nor all fatal.
  EXPECT_GT(o.ok, iterations / 20) << path;
  EXPECT_GT(o.errors, iterations / 4) << path;
  std::printf("[ fuzz     ] %s: %d iterations, %d loaded, %d refused with Error\n", path.c_str(),
              iterations, o.ok - 1, o.errors);
}

TEST(FuzzLoaders, MutatedI2sGguf) {
  const std::string dir = testing::scratch_dir("fuzz_i2s");
  fuzz_gguf(write_micro(dir, testing::test_shape(128, 256, 1, 2, 1, 266), "i2_s"), 5000, 1);
}

TEST(FuzzLoaders, MutatedTq2Gguf) {
  const std::string dir = testing::scratch_dir("fuzz_tq2");
  fuzz_gguf(write_micro(dir, testing::test_shape(256, 256, 1, 4, 2, 266), "tq2_0"), 2500, 2);
}

TEST(FuzzLoaders, MutatedHfCheckpoint) {
  const std::string dir = testing::scratch_dir("fuzz_hf");
  const std::string hf =
      write_micro(dir, testing::test_shape(128, 256, 1, 2, 1, 266), "safetensors");
  const std::vector<uint8_t> valid = testing::read_bytes(hf + "/model.safetensors");
  const std::string config = testing::read_text(hf + "/config.json");
  uint64_t header_len;
  std::memcpy(&header_len, valid.data(), 8);
  auto load = [&](std::vector<uint8_t> b, const std::string& cfg) {
    const auto f = safetensors::File::parse(MappedFile::from_bytes(std::move(b), "fuzz.st"));
    const ModelWeights m = load_hf_parts({f}, cfg, "config.json");
    (void)ternary_of(m.layers[0].w_down);
  };
  Outcome o;
  attempt([&] { load(valid, config); }, o, "valid checkpoint");
  ASSERT_EQ(o.ok, 1);
  Mutator mut(3);
  std::mt19937_64 rng(4);
  for (int i = 0; i < 2500; ++i) {
    int kind;
    std::vector<uint8_t> b = mut.mutate(valid, (size_t)header_len + 8, kind);
    attempt([&] { load(std::move(b), config); }, o, "safetensors mutation " + std::to_string(i));
    // config.json: flip a character.
    std::string cfg = config;
    cfg[rng() % cfg.size()] = "0123456789{}[]\",:x -"[rng() % 20];
    attempt([&] { load(valid, cfg); }, o, "config mutation " + std::to_string(i));
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(o.ok, 100);
  EXPECT_GT(o.errors, 500);
}

}  // namespace
}  // namespace tritune
