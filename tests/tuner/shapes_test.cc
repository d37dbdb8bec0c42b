#include "tuner/shapes.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kernels/error.h"
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
}

}  // namespace
}  // namespace tritune
