#include "tuner/isolate.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

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
  const auto t0 = std::chrono::steady_clock::now();
  const Measurement m = run_isolated(
      []() -> Measurement {
        for (;;) pause();
      },
      0.3);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(m.status, status::kTimeout);
  EXPECT_NE(m.reason.find("killed"), std::string::npos);
  // Killed at the timeout (0.3 s), not whenever the wait happens to end.
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 3.0);
}

TEST(Isolate, ExceptionsBecomeRuntimeFailures) {
  const Measurement m =
      run_isolated([]() -> Measurement { throw Error("Halide error: buffer too small"); }, 30);
  EXPECT_EQ(m.status, status::kRuntime);
  EXPECT_NE(m.reason.find("buffer too small"), std::string::npos);
}

// A tuner killed on its own (SIGKILL to its pid, not its process group) takes the candidate
// it was measuring with it; the candidate used to run on for up to --timeout.
TEST(Isolate, TheCandidateDiesWithTheTuner) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t tuner = fork();
  ASSERT_GE(tuner, 0);
  if (tuner == 0) {
    close(fds[0]);
    run_isolated(
        [&]() -> Measurement {
          const pid_t me = getpid();
          if (write(fds[1], &me, sizeof me) != (ssize_t)sizeof me) _exit(2);
          sleep(60);
          return {};
        },
        120);
    _exit(0);
  }
  close(fds[1]);
  pid_t candidate = 0;
  ASSERT_EQ(read(fds[0], &candidate, sizeof candidate), (ssize_t)sizeof candidate);
  close(fds[0]);
  ASSERT_EQ(kill(tuner, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(waitpid(tuner, &st, 0), tuner);
  // The orphan is reparented and killed; give it a moment, then it must be gone.
  // A killed orphan that nobody reaped yet (a container's init may not) is a zombie: gone too.
  const auto dead = [&] {
    if (kill(candidate, 0) != 0) return true;
    std::ifstream stat("/proc/" + std::to_string(candidate) + "/stat");
    std::string pid, comm, state;
    stat >> pid >> comm >> state;
    return state == "Z" || state == "X";
  };
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = dead();
    if (!gone) usleep(10000);
  }
  if (!gone) kill(candidate, SIGKILL);  // do not leave it behind either way
  EXPECT_TRUE(gone) << "candidate " << candidate << " outlived the tuner";
}

}  // namespace
}  // namespace tritune
