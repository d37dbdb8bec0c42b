#include "tuner/isolate.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "kernels/error.h"

namespace tritune {
namespace {

TEST(Isolate, ReturnsTheChildsMeasurement) {
  const Measurement m = run_isolated(
      [] {
        Measurement r;
        r.time_s = {1e-4, 2e-4};
        r.baseline_time_s = {3e-4};
        r.baseline_variant = "base";
        r.compile_s = 0.5;
        return r;
      },
      30);
  EXPECT_TRUE(m.ok()) << m.reason;
  EXPECT_EQ(m.time_s, (std::vector<double>{1e-4, 2e-4}));
  EXPECT_EQ(m.baseline_variant, "base");
}

TEST(Isolate, ACrashingCandidateScoresCrashWithTheSignal) {
  const Measurement m = run_isolated(
      []() -> Measurement {
        raise(SIGSEGV);
        return {};
      },
      30);
  EXPECT_EQ(m.status, status::kCrash);
  EXPECT_NE(m.reason.find("signal 11"), std::string::npos) << m.reason;
  const Measurement a = run_isolated([]() -> Measurement { std::abort(); }, 30);
  EXPECT_EQ(a.status, status::kCrash);
  const Measurement e = run_isolated([]() -> Measurement { _exit(3); }, 30);
  EXPECT_EQ(e.status, status::kCrash);
  EXPECT_NE(e.reason.find("code 3"), std::string::npos) << e.reason;
}

TEST(Isolate, AHangingCandidateIsKilledAtTheTimeout) {
  const Measurement m = run_isolated(
      []() -> Measurement {
        for (;;) pause();
      },
      0.3);
  EXPECT_EQ(m.status, status::kTimeout);
  EXPECT_NE(m.reason.find("killed"), std::string::npos);
}

TEST(Isolate, ExceptionsBecomeRuntimeFailures) {
  const Measurement m =
      run_isolated([]() -> Measurement { throw Error("Halide error: buffer too small"); }, 30);
  EXPECT_EQ(m.status, status::kRuntime);
  EXPECT_NE(m.reason.find("buffer too small"), std::string::npos);
}

}  // namespace
}  // namespace tritune
