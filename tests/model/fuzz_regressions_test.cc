// Replays the inputs in tests/fuzz/regressions/ through the coverage-guided fuzzer's targets
// (tests/fuzz/fuzz_targets.h): each one once crashed a parser or tripped a sanitizer under
// scripts/fuzz.sh, or is a hand-made hostile file of the same kind. Each must load or be
// refused with tritune::Error. The scripts/fuzz.sh seed kinds are checked too: every target
// accepts its valid seed (so a replayed input exercises the code it was found in).
// Target 4's seed is a tuning database this test writes with one record; target 5 takes any
// text.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "model/synthetic.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/model/model_files_util.h"

#ifndef TRITUNE_SOURCE_DIR
#error "TRITUNE_SOURCE_DIR must name the source tree (tests/CMakeLists.txt sets it)"
#endif

namespace tritune {
namespace {

// The checkpoint scripts/fuzz.sh pairs targets 1 and 2 with: make-model --shape tiny
// --format safetensors --layers 1 (seed 1).
const std::string& seed_dir() {
  static const std::string dir = [] {
    const std::string d = testing::scratch_dir("fuzz_seed") + "/hf";
    SyntheticOptions o;
    o.shape = find_shape("tiny");
    o.format = "safetensors";
    o.layers = 1;
    write_synthetic_model(o, d);
    return d;
  }();
  return dir;
}

const fuzz::SeedCheckpoint& seed_checkpoint() {
  static const fuzz::SeedCheckpoint seed = fuzz::read_seed(seed_dir());
  return seed;
}

template <typename Bytes>
std::vector<uint8_t> with_target(uint8_t target, const Bytes& file) {
  std::vector<uint8_t> in(file.size() + 1);
  in[0] = target;
  std::copy(file.begin(), file.end(), in.begin() + 1);
  return in;
}

// Runs one input; true if it loaded, false if it was refused with Error.
bool replay(const std::vector<uint8_t>& in) {
  try {
    fuzz::run_one(in.data(), in.size(), seed_checkpoint());
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(FuzzRegressions, ValidSeedsLoadThroughEveryTarget) {
  const fuzz::SeedCheckpoint& seed = seed_checkpoint();
  ASSERT_FALSE(seed.safetensors.empty());
  ASSERT_FALSE(seed.config.empty());
  const std::string dir = testing::scratch_dir("fuzz_seed_gguf");
  SyntheticOptions o;
  o.shape = find_shape("tiny");
  o.layers = 1;
  for (const char* format : {"i2_s", "tq2_0", "tq1_0", "f16"}) {
    o.format = format;
    const std::string path = dir + "/" + format + ".gguf";
    write_synthetic_model(o, path);
    EXPECT_TRUE(replay(with_target(0, testing::read_bytes(path)))) << format;
  }
  EXPECT_TRUE(replay(with_target(1, seed.safetensors)));
  EXPECT_TRUE(replay(with_target(2, seed.config)));
  const std::string tok = testing::read_text(seed_dir() + "/tokenizer.json");
  ASSERT_FALSE(tok.empty());
  EXPECT_TRUE(replay(with_target(3, tok)));
  // A tuning database with one record.
  {
    Fingerprint fp;
    fp.cpu = "FuzzVendor|Fuzz CPU|f1m1";
    fp.halide_version = "21.0.0";
    fp.kernel_hash = "0123456789abcdef";
    const std::string db_dir = testing::scratch_dir("fuzz_seed_db");
    const TuningDb db = TuningDb::open_dir(db_dir, fp);
    Record r;
    r.task = {"i2_s", "i2s", "gemv", 256, 512, 1, 1, "cold"};
    r.variant = "i2s_gemv_r1__avx2";
    r.params = {{"rows", "1"}};
    r.m.time_s = {1e-5, 1.1e-5};
    r.m.baseline_time_s = {2e-5, 2e-5};
    r.value = 1e-5;
    r.baseline_value = 2e-5;
    r.strategy = "grid";
    db.append(r);
    const std::vector<uint8_t> file = testing::read_bytes(db.path());
    EXPECT_TRUE(replay(with_target(4, file)));
    ASSERT_EQ(db.load().records.size(), 1u);
  }
  // Target 5 takes any bytes: text, specials, invalid UTF-8, nothing.
  const std::string text = "Hello, world! 123 caf\xC3\xA9 <|eot_id|> \xFF\xC3";
  EXPECT_TRUE(replay(with_target(5, text)));
  EXPECT_TRUE(replay(with_target(5, std::string())));
  EXPECT_TRUE(replay(with_target(11, text)));  // 11 % 6 == 5
  // And a refusal is a refusal, not a pass: a truncated GGUF throws Error.
  std::vector<uint8_t> cut = with_target(0, testing::read_bytes(dir + "/i2_s.gguf"));
  cut.resize(cut.size() / 2);
  EXPECT_FALSE(replay(cut));
}

TEST(FuzzRegressions, EveryRecordedInputLoadsOrIsRefused) {
  const std::filesystem::path dir =
      std::filesystem::path(TRITUNE_SOURCE_DIR) / "tests" / "fuzz" / "regressions";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no inputs in " << dir;
  int loaded = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    try {
      loaded += replay(testing::read_bytes(f.string())) ? 1 : 0;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "exception that is not tritune::Error: " << e.what();
    }
  }
  std::printf("[ replay   ] %zu recorded inputs: %d loaded, %zu refused with Error\n", files.size(),
              loaded, files.size() - (size_t)loaded);
}

}  // namespace
}  // namespace tritune
