// The part every hardware backend shares: turning raw, wrapping counters into joules. A backend
// only says which counters it has (unit, wrap modulus) and how to read them (CounterSource);
// CounterMeter does start/stop, the modular deltas, and a background sampler that reads often
// enough that a counter can never wrap twice unseen during a long run.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "energy/meter.h"

namespace tritune {

struct CounterDomain {
  EnergyDomain domain = EnergyDomain::kPackage;
  std::string label;           // "package-0", "energy-pkg", "pkg@cpu0" ...
  double joules_per_tick = 0;  // unit of the raw value
  // The raw value counts modulo `wrap` (2^32 for RAPL MSRs, max_energy_range_uj + 1 for
  // powercap); 0 means a 64-bit counter that is treated as never wrapping (perf).
  uint64_t wrap = 0;
};

class CounterSource {
 public:
  virtual ~CounterSource() = default;
  virtual std::string source() const = 0;  // "rapl-powercap", ...
  virtual std::vector<CounterDomain> domains() const = 0;
  // Current raw value of every domain, in domains() order. Throws Error on failure.
  virtual void read(std::vector<uint64_t>* raw) = 0;
  virtual double resolution_joules() const = 0;
  virtual double update_interval_seconds() const { return 1e-3; }
};

// Forward distance from `before` to `after` on a counter of modulus `wrap` (0: 64-bit).
// Exactly one wrap is assumed when after < before; the sampler guarantees no more happen.
uint64_t counter_delta(uint64_t before, uint64_t after, uint64_t wrap);

struct CounterMeterOptions {
  // Background sampling while a window is open: 0 = off, < 0 = automatic (a quarter of the
  // shortest wrap time at `assumed_max_watts`, clamped to [10 ms, 1 s]), > 0 = this period.
  double sample_period_s = -1;
  double assumed_max_watts = 1000;  // above any single socket's power, so the bound is safe
};

class CounterMeter : public EnergyMeter {
 public:
  explicit CounterMeter(std::unique_ptr<CounterSource> src, CounterMeterOptions o = {});
  ~CounterMeter() override;

  std::string source() const override { return source_name_; }
  bool estimated() const override { return false; }
  double resolution_joules() const override { return resolution_; }
  double update_interval_seconds() const override { return interval_; }
  std::vector<EnergyDomain> domains() const override;
  void start() override;
  void stop() override;
  EnergyReading results() const override;

  // Reads the counters now and folds the deltas in (the sampler calls this; so may a caller
  // that drives its own loop).
  void sample();
  // Period the background sampler uses (0 if off).
  double sample_period() const { return period_; }
  // Number of counter wraps seen in the current window (for tests and diagnostics).
  int64_t wraps_seen() const;

 private:
  void sample_locked();
  void sampler_loop();
  void stop_sampler();

  std::unique_ptr<CounterSource> src_;
  std::string source_name_;
  std::vector<CounterDomain> doms_;
  double resolution_ = 0, interval_ = 1e-3, period_ = 0;

  mutable std::mutex mu_;
  bool running_ = false;
  std::vector<uint64_t> last_;
  std::vector<double> acc_j_;
  int64_t wraps_ = 0;
  double t_start_ = 0, t_stop_ = 0;

  std::thread sampler_;
  std::condition_variable cv_;
  bool quit_ = false;
};

double monotonic_seconds();

}  // namespace tritune
