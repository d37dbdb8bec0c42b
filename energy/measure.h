// Measurement discipline on top of an EnergyMeter. RAPL counters update about once per
// millisecond and carry a few microjoules of quantization, so a kernel call of microseconds
// cannot be measured alone: measure_per_call repeats it until the window is at least ~100 ms and
// divides. Idle power is measured the same way (sleeping through a window) and can be
// subtracted, so the figure is the energy the work added rather than what the machine burns
// anyway.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "energy/meter.h"
#include "kernels/op_counts.h"

namespace tritune {

struct MeasureOptions {
  double min_window_s = 0.1;  // the measured window is at least this long
  double max_window_s = 5.0;  // never loop longer than this (a slow call runs once)
  int64_t max_calls = int64_t(1) << 30;
  // Idle power to subtract (watts x window seconds from the primary domain): < 0 measures it
  // first with measure_idle_watts (only when subtract_idle), >= 0 uses the value given.
  bool subtract_idle = false;
  double idle_watts = -1;
  // The work of one call, reported to the meter (the model meter needs it; counters ignore it).
  OpCounts work_per_call;
};

struct CallEnergy {
  double joules_per_call = 0;  // primary domain, idle subtracted if asked
  double seconds_per_call = 0;
  int64_t calls = 0;  // calls in the measured window
  double window_s = 0;
  double idle_watts = 0;  // what was subtracted (0 if nothing)
  EnergyReading reading;  // the raw window
  std::string source;
  bool estimated = false;
  // Energy-delay product per call (J*s), the tuner's `edp` objective.
  double edp() const { return joules_per_call * seconds_per_call; }
  std::string to_string() const;
};

// Runs fn once to warm up and time it, then enough times in one window to reach min_window_s
// (for a meter that does not sample, i.e. the model, 1 ms is enough and is used instead).
// Throws Error if the meter fails or fn throws.
CallEnergy measure_per_call(EnergyMeter& m, const std::function<void()>& fn,
                            const MeasureOptions& o = {});

// Average power of the primary domain while the process sleeps for window_s (>= 0.1 s
// recommended). 0 for the model (it has no static power term).
double measure_idle_watts(EnergyMeter& m, double window_s = 0.2);

// Throws Error when a hardware counter reported no energy over a window in which it must have
// ticked many times (at least 50 update intervals and 50 ms): the counter is frozen, as some
// virtual machines expose RAPL files that never move, and every figure from it would read
// 0 J. Estimated (model) readings always pass.
void require_counter_advanced(const EnergyReading& r, double update_interval_s);

// Joules per token with its source, as the end-to-end benchmark prints it:
// "0.0281 J/token (rapl-powercap, package)" or "... (model, estimated)".
std::string joules_per_token_line(const EnergyReading& r, int64_t tokens);

}  // namespace tritune
