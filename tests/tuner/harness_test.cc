// The real harness on real (AOT) kernels: small shapes, no timing assertions (the machine is
// shared), only that the protocol produces what it promises.
#include "tuner/harness.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/variant.h"

namespace tritune {
namespace {

HarnessOptions quick() {
  HarnessOptions o;
  o.reps = 3;
  o.warmup = 1;
  o.min_sample_s = 1e-4;
  o.llc_bytes = 1 << 20;  // cold mode without allocating hundreds of MB
  o.timeout_s = 120;
  return o;
}

TEST(Harness, MeasuresTheDefaultAgainstItselfInAChild) {
  for (int64_t tokens : {1, 5}) {
    const SearchSpace& s = space_for("i2_s", tokens);
    const std::string def = baseline_variant(s, selected_isa());
    KernelHarness h(quick());
    const TaskKey t{"i2_s", s.family, s.op, 100, 384, tokens, 1, "cold"};
    const Measurement m = h.measure(t, def);
    ASSERT_TRUE(m.ok()) << m.status << ": " << m.reason;
    EXPECT_EQ(m.time_s.size(), 3u);
    EXPECT_EQ(m.baseline_time_s.size(), 3u);
    EXPECT_EQ(m.baseline_variant, def);
    for (double x : m.time_s) EXPECT_TRUE(std::isfinite(x) && x > 0);
  }
}

TEST(Harness, FloatFormatsAreCheckedAndTimedToo) {
  const SearchSpace& s = space_for("f16", 1);
  KernelHarness h(quick());
  const TaskKey t{"f16", s.family, s.op, 40, 96, 1, 1, "warm"};
  const Measurement m = h.measure(t, baseline_variant(s, selected_isa()));
  EXPECT_TRUE(m.ok()) << m.status << ": " << m.reason;
}

TEST(Harness, AnIllegalVariantIsACompileFailureNotACrash) {
  const SearchSpace& s = space_for("i2_s", 1);
  for (bool isolate : {true, false}) {
    HarnessOptions o = quick();
    o.isolate = isolate;
    KernelHarness h(o);
    const TaskKey t{"i2_s", s.family, s.op, 64, 256, 1, 1, "warm"};
    const Measurement m = h.measure(t, "i2s_gemv_r999_t1_u1_v512_g4_k0_avnni__avx512vnni");
    EXPECT_EQ(m.status, status::kCompile) << m.reason;
    EXPECT_FALSE(m.reason.empty());
  }
}

TEST(Harness, ImpossibleSettingsAreRefusedBeforeAnyMeasurement) {
  // Each would have recorded every candidate as failed (or as a success with no samples).
  const auto refused = [](HarnessOptions o, const std::string& what) {
    try {
      KernelHarness h(o);
      ADD_FAILURE() << what << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  HarnessOptions o;
  o.reps = 0;
  refused(o, "timing samples (--reps) 0: must be in 1..100000");
  o = HarnessOptions();
  o.min_sample_s = -1e-3;
  refused(o, "sample length (--min-sample-ms) -1");
  o.min_sample_s = NAN;
  refused(o, "sample length (--min-sample-ms) nan");
  o = HarnessOptions();
  o.timeout_s = 0;
  refused(o, "per-candidate limit (--timeout) 0");
  o = HarnessOptions();
  o.energy_reps = 0;
  refused(o, "energy samples 0");
  KernelHarness ok{HarnessOptions()};
  const TaskKey t{"i2_s", "i2s", "gemv", 64, 256, 1, 1, "warm"};
  EXPECT_THROW(ok.measure(t, "anything", 0), Error);
}

TEST(Harness, SpaceForNamesTheFormatAndOp) {
  EXPECT_EQ(space_for("i2_s", 1).op, "gemv");
  EXPECT_EQ(space_for("i2_s", 128).op, "gemm");
  EXPECT_EQ(space_for("f32", 2).family, "f32");
  EXPECT_ANY_THROW(space_for("q4_0", 1));
}

}  // namespace
}  // namespace tritune
