// CounterMeter: modular deltas, the automatic sampling period, and the background sampler
// keeping a fast-wrapping counter exact over a long window.
#include "energy/counter_meter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "kernels/error.h"

namespace tritune {
namespace {

TEST(CounterDelta, ModularArithmetic) {
  EXPECT_EQ(counter_delta(10, 25, 0), 15u);
  EXPECT_EQ(counter_delta(UINT64_MAX - 4, 5, 0), 10u);  // 64-bit wrap
  EXPECT_EQ(counter_delta(0xFFFFFF00u, 0x100u, 1ULL << 32), 0x200u);
  EXPECT_EQ(counter_delta(900, 100, 1001), 201u);
  EXPECT_EQ(counter_delta(7, 7, 1ULL << 32), 0u);
}

// A counter that advances with wall time: `rate` ticks per second, modulo `wrap`.
class TimeSource : public CounterSource {
 public:
  TimeSource(double rate, uint64_t wrap) : rate_(rate), wrap_(wrap), t0_(monotonic_seconds()) {}
  std::string source() const override { return "fake"; }
  std::vector<CounterDomain> domains() const override {
    return {{EnergyDomain::kPackage, "pkg", 1e-3, wrap_}};
  }
  double resolution_joules() const override { return 1e-3; }
  void read(std::vector<uint64_t>* raw) override {
    const double ticks = (monotonic_seconds() - t0_) * rate_;
    raw->assign(1, (uint64_t)ticks % wrap_);
    ++reads;
  }
  int reads = 0;

 private:
  double rate_;
  uint64_t wrap_;
  double t0_;
};

TEST(CounterMeter, AutomaticPeriodFromWrapTime) {
  // 2^32 ticks of 2^-16 J (an AMD RAPL MSR) = 65536 J: 65 s at 1 kW -> capped at 1 s.
  struct Msr : TimeSource {
    Msr() : TimeSource(1, 1ULL << 32) {}
    std::vector<CounterDomain> domains() const override {
      return {{EnergyDomain::kPackage, "pkg", 1.0 / 65536, 1ULL << 32}};
    }
  };
  CounterMeter slow(std::make_unique<Msr>());
  EXPECT_DOUBLE_EQ(slow.sample_period(), 1.0);
  // 1000 ticks of 1 mJ = 1 J: 1 ms at 1 kW -> the 10 ms floor.
  CounterMeter fast(std::make_unique<TimeSource>(1, 1000));
  EXPECT_DOUBLE_EQ(fast.sample_period(), 0.01);
  CounterMeter off(std::make_unique<TimeSource>(1, 1000), CounterMeterOptions{0, 1000});
  EXPECT_DOUBLE_EQ(off.sample_period(), 0.0);
}

TEST(CounterMeter, BackgroundSamplerNeverMissesAWrap) {
  // 10000 ticks/s of 1 mJ = 10 W, wrapping every 2000 ticks = every 200 ms. An 800 ms window
  // sees 4 wraps; sampling every 5 ms catches all of them (a loaded machine may delay the sampler
  // by up to 200 ms without harm), so the energy matches 10 W x window.
  auto src = std::make_unique<TimeSource>(10000, 2000);
  TimeSource* raw = src.get();
  CounterMeter m(std::move(src), CounterMeterOptions{0.005, 1000});
  m.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  m.stop();
  const EnergyReading r = m.results();
  EXPECT_GT(raw->reads, 10);
  EXPECT_GE(m.wraps_seen(), 3);
  EXPECT_NEAR(r.primary_joules(), 10.0 * r.seconds, 0.05 * 10.0 * r.seconds) << r.to_string();

  // Without the sampler the same window loses whole wraps: the reading is below one wrap (2 J).
  CounterMeter blind(std::make_unique<TimeSource>(10000, 2000), CounterMeterOptions{0, 1000});
  blind.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  blind.stop();
  EXPECT_LT(blind.results().primary_joules(), 2.0);
}

TEST(CounterMeter, ResultsBeforeStartAndWhileRunning) {
  CounterMeter m(std::make_unique<TimeSource>(1000, 1ULL << 32), CounterMeterOptions{0, 1000});
  EXPECT_EQ(m.results().seconds, 0.0);
  EXPECT_EQ(m.results().source, "fake");
  m.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  m.sample();
  EXPECT_GT(m.results().primary_joules(), 0.0);  // readable mid-window
  m.stop();
  EXPECT_GT(m.results().seconds, 0.015);
}

class BadSource : public CounterSource {
 public:
  std::string source() const override { return "bad"; }
  std::vector<CounterDomain> domains() const override {
    return {{EnergyDomain::kPackage, "a", 1, 0}, {EnergyDomain::kDram, "b", 1, 0}};
  }
  double resolution_joules() const override { return 1; }
  void read(std::vector<uint64_t>* raw) override { raw->assign(1, 0); }  // one value too few
};

TEST(CounterMeter, SourceReturningWrongCountIsAnError) {
  CounterMeter m(std::make_unique<BadSource>(), CounterMeterOptions{0, 1000});
  EXPECT_THROW(m.start(), Error);
  EXPECT_THROW(CounterMeter(nullptr), Error);
}

}  // namespace
}  // namespace tritune
