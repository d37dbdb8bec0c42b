#include "generators/space.h"

#include <gtest/gtest.h>

#include <set>

#include "kernels/cpu_features.h"
#include "kernels/error.h"

namespace tritune {
namespace {

TEST(Space, NamesRoundTripThroughTheOneParser) {
  for (const SearchSpace& s : all_spaces()) {
    std::set<std::string> keys;
    for (const auto& d : s.params) {
      EXPECT_TRUE(keys.insert(d.key).second) << s.generator << " repeats key " << d.key;
    }
    for (int i = 0; i < (int)Isa::kCount; ++i) {
      const auto points = s.enumerate(nullptr, (Isa)i);
      EXPECT_FALSE(points.empty()) << s.generator;
      for (const Params& p : points) {
        const std::string name = variant_name(s, p, (Isa)i);
        const VariantName v = parse_variant_name(name);
        ASSERT_EQ(v.family, s.family);
        ASSERT_EQ(v.op, s.op);
        ASSERT_EQ(v.params, p) << name;
        ASSERT_EQ(v.isa, (Isa)i);
      }
    }
  }
}

TEST(Space, ConstraintsPruneWithReasons) {
  const SearchSpace& s = find_space("i2s", "gemm");
  Params p = s.defaults();
  p["kblock"] = "512";
  Shape ok{2560, 2560, 128}, bad{2560, 1000, 128};
  EXPECT_EQ(s.check(p, &ok, Isa::kAvx512Vnni), "");
  EXPECT_NE(s.check(p, &bad, Isa::kAvx512Vnni).find("K % kblock"), std::string::npos);
  // A K block must be smaller than K: one block of all of K is the unblocked loop again.
  Shape equal{2560, 512, 128}, twice{2560, 1024, 128};
  EXPECT_NE(s.check(p, &equal, Isa::kAvx512Vnni).find("kblock < K"), std::string::npos);
  EXPECT_EQ(s.check(p, &twice, Isa::kAvx512Vnni), "");
  EXPECT_NE(s.check(s.defaults(), nullptr, Isa::kAvx2).find("vbits"), std::string::npos);
  p = s.defaults();
  p["rows"] = "4";
  p["tokens"] = "12";
  EXPECT_NE(s.check(p, nullptr, Isa::kAvx512Vnni).find("registers"), std::string::npos);
  p["rows"] = "7";
  EXPECT_NE(s.check(p, nullptr, Isa::kAvx512Vnni).find("domain"), std::string::npos);
  EXPECT_LT(s.enumerate(&ok, Isa::kAvx512Vnni).size(), s.size());
}

TEST(Space, ParserRejectsMalformedNames) {
  for (const char* bad : {"i2s_gemv", "i2s_gemv_r4__avx512vnni", "zz_gemv_r1__avx2",
                          "i2s_gemv_x4_t1_u1_v512_g4_k0_avnni__avx512vnni",
                          "i2s_gemv_r4_t1_u1_v512_g4_k0_avnni__sse9"}) {
    EXPECT_THROW(parse_variant_name(bad), Error) << bad;
  }
  // Every field must carry its parameter's key, in declaration order, even where the value
  // alone would be legal for that parameter.
  EXPECT_NO_THROW(parse_variant_name("i2s_gemv_r1_t1_u4_v512_g4_k0_avnni_p64_dmask__avx512vnni"));
  for (const char* bad : {"i2s_gemv_x1_t1_u4_v512_g4_k0_avnni_p64_dmask__avx512vnni",
                          "i2s_gemv_t1_r1_u4_v512_g4_k0_avnni_p64_dmask__avx512vnni",
                          "i2s_gemv_r1_t1_u4_v512_g4_k0_avnni_p64_mask__avx512vnni"}) {
    EXPECT_THROW(parse_variant_name(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace tritune
