// Environment variables that steer a run: valid values are taken, invalid ones fall back with
// one warning naming the variable, the value and what it accepts.
#include "kernels/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

namespace tritune {
namespace {

TEST(Env, IntegersInRangeAreTakenAnythingElseFallsBackWithOneWarning) {
  unsetenv("TRITUNE_TEST_INT");
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 7);
  setenv("TRITUNE_TEST_INT", "", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 7);  // empty: unset
  setenv("TRITUNE_TEST_INT", "42", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 42);
  setenv("TRITUNE_TEST_INT", "0", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 0);
  setenv("TRITUNE_TEST_INT", "100", 1);  // both ends of the range are in it
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 100);
  setenv("TRITUNE_TEST_INT", "-5", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, -5, 5), -5);

  ::testing::internal::CaptureStderr();
  setenv("TRITUNE_TEST_INT", "12abc", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 7);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "warning: TRITUNE_TEST_INT=12abc is not an integer in 0..100; using 7\n");
  // Out of range, and far out of range: the fallback again, and no second warning.
  ::testing::internal::CaptureStderr();
  setenv("TRITUNE_TEST_INT", "101", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 7);
  setenv("TRITUNE_TEST_INT", "99999999999999999999999", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 7);
  setenv("TRITUNE_TEST_INT", "-1", 1);
  EXPECT_EQ(env_int("TRITUNE_TEST_INT", 7, 0, 100), 7);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  unsetenv("TRITUNE_TEST_INT");
}

TEST(Env, ChoicesAreTakenExactlyAnythingElseFallsBackWithOneWarning) {
  setenv("TRITUNE_TEST_CHOICE", "interleaved", 1);
  EXPECT_EQ(env_choice("TRITUNE_TEST_CHOICE", {"stored", "interleaved"}, "auto"), "interleaved");
  ::testing::internal::CaptureStderr();
  setenv("TRITUNE_TEST_CHOICE", "Stored", 1);
  EXPECT_EQ(env_choice("TRITUNE_TEST_CHOICE", {"stored", "interleaved"}, "auto"), "auto");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "warning: TRITUNE_TEST_CHOICE=Stored is not one of stored, interleaved; using auto\n");
  unsetenv("TRITUNE_TEST_CHOICE");
  EXPECT_EQ(env_choice("TRITUNE_TEST_CHOICE", {"stored", "interleaved"}, "auto"), "auto");
}

}  // namespace
}  // namespace tritune
