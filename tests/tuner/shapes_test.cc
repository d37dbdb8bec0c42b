#include "tuner/shapes.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kernels/error.h"
#include "kernels/memory_budget.h"
#include "synthetic.h"

namespace tritune {
namespace {

TEST(Shapes, NamedSetsHoldTheModelShapes) {
  const auto& s = find_model_shapes("2b4t").shapes;
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[0].n, 2560);
  EXPECT_EQ(s[1].n, 640);  // 5 KV heads x 128
  EXPECT_EQ(s[3].k, 6912);
  EXPECT_EQ(s[4].n, 2560 + 640 + 640);  // the fused q+k+v GEMV the kernel path runs
  EXPECT_EQ(s[5].n, 2 * 6912);          // fused gate+up
  EXPECT_NO_THROW(find_model_shapes("700m"));
  EXPECT_NO_THROW(find_model_shapes("3b"));
  EXPECT_THROW(find_model_shapes("7b"), Error);
}

TEST(Shapes, ParsesListsJsonAndFiles) {
  using V = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(parse_shapes("2560x2560,640x2560"), (V{{2560, 2560}, {640, 2560}}));
  EXPECT_EQ(parse_shapes("[[2560,6912],{\"n\":16,\"k\":32}]"), (V{{2560, 6912}, {16, 32}}));
  const std::string f = testing::scratch_dir("shapes") + "/s.json";
  std::ofstream(f) << "[[1, 2]]";
  EXPECT_EQ(parse_shapes(f), (V{{1, 2}}));
  for (const char* bad : {"2560", "2560x", "x2560", "0x5", "5x-1", "[[1]]", "[1,2]", "99999999x2",
                          "2560x2560,", "nope.json"}) {
    EXPECT_THROW(parse_shapes(bad), Error) << bad;
  }
  // N and K go up to 2^20 = 1048576 inclusive, in every notation.
  EXPECT_EQ(parse_shapes("1048576x1"), (V{{1048576, 1}}));
  EXPECT_EQ(parse_shapes("[[1, 1048576]]"), (V{{1, 1048576}}));
  EXPECT_THROW(parse_shapes("1048577x1"), Error);
  EXPECT_THROW(parse_shapes("[{\"n\": 1, \"k\": 1048577}]"), Error);
}

TEST(Shapes, ShapesTheKernelsOrTheMachineCannotHoldAreRefusedUpFront) {
  EXPECT_NO_THROW(require_shape_fits(2560, 6912, {"f16", "i2_s"}, 2));
  // One matrix beyond what a Halide buffer addresses (2^31 - 1 bytes), named with its format.
  auto message = [](int64_t n, int64_t k, std::vector<std::string> formats, int64_t copies) {
    try {
      require_shape_fits(n, k, formats, copies);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string m = message(100000, 100000, {"i2_s"}, 2);  // 2.5e9 bytes in I2_S
  EXPECT_NE(m.find("shape 100000x100000 in i2_s is 2.33 GiB"), std::string::npos) << m;
  EXPECT_NE(m.find("Halide buffer"), std::string::npos) << m;
  m = message(30000, 30000, {"f16", "f32"}, 2);  // f16 1.8 GB fits, f32 3.6 GB does not
  EXPECT_NE(m.find("in f32"), std::string::npos) << m;
  EXPECT_NO_THROW(require_shape_fits(30000, 30000, {"i2_s"}, 2));
  // Within the buffer limit but not within any machine's memory: a million copies of 225 MB.
  if (available_memory_bytes() >= 0) {
    m = message(30000, 30000, {"i2_s"}, 1000000);
    EXPECT_NE(m.find("shape 30000x30000 (i2_s, 1000000 weight copies each) would need"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("available (MemAvailable)"), std::string::npos) << m;
  }
  EXPECT_THROW(require_shape_fits(16, 16, {"q4_k"}, 2), Error);  // unknown format, named
}

}  // namespace
}  // namespace tritune
