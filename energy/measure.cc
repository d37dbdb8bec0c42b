#include "energy/measure.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "energy/counter_meter.h"
#include "kernels/error.h"

namespace tritune {

std::string CallEnergy::to_string() const {
  char b[256];
  std::snprintf(b, sizeof b, "%.6g J/call, %.6g s/call over %lld calls in %.3g s (%s%s%s)",
                joules_per_call, seconds_per_call, (long long)calls, window_s, source.c_str(),
                estimated ? ", estimated" : "", idle_watts > 0 ? ", idle subtracted" : "");
  return b;
}

void require_counter_advanced(const EnergyReading& r, double update_interval_s) {
  if (r.estimated || update_interval_s <= 0) return;
  if (r.seconds < std::max(0.05, 50 * update_interval_s) || r.primary_joules() > 0) return;
  char b[400];
  std::snprintf(b, sizeof b,
                "energy counter frozen: %s reported no %s energy over %.3g s although it updates "
                "every %.3g ms (a virtual machine can expose RAPL counters that never move); "
                "measure on the host, or use the model's estimates (TRITUNE_ENERGY_BACKEND=model)",
                r.source.c_str(), r.primary_domain().c_str(), r.seconds,
                update_interval_s * 1e3);
  throw Error(b);
}

double measure_idle_watts(EnergyMeter& m, double window_s) {
  if (!(window_s > 0) || window_s > 60) {
    char w[32];
    std::snprintf(w, sizeof w, "%g", window_s);
    throw Error(std::string("idle window ") + w + " s: the window must be in (0, 60] seconds");
  }
  if (m.estimated()) return 0.0;
  m.start();
  std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
  m.stop();
  const EnergyReading r = m.results();
  require_counter_advanced(r, m.update_interval_seconds());
  return r.seconds > 0 ? r.primary_joules() / r.seconds : 0.0;
}

CallEnergy measure_per_call(EnergyMeter& m, const std::function<void()>& fn,
                            const MeasureOptions& o) {
  if (!(o.min_window_s > 0) || o.max_window_s < o.min_window_s || o.max_calls < 1) {
    throw Error("measure_per_call: need 0 < min_window_s <= max_window_s and max_calls >= 1");
  }
  CallEnergy ce;
  if (o.subtract_idle) {
    ce.idle_watts = o.idle_watts >= 0 ? o.idle_watts : measure_idle_watts(m, o.min_window_s);
  }
  // Warm-up call, timed: it sizes the window.
  double t0 = monotonic_seconds();
  fn();
  const double one = std::max(monotonic_seconds() - t0, 1e-9);
  // A meter that does not sample (the model: update interval 0) needs no long window; 1 ms is
  // enough for a meaningful seconds_per_call and saves the tuner 100 ms per candidate on
  // machines without counters.
  const double window =
      m.update_interval_seconds() > 0 ? o.min_window_s : std::min(o.min_window_s, 1e-3);
  int64_t calls = (int64_t)std::ceil(window / one);
  calls = std::clamp<int64_t>(calls, 1, o.max_calls);
  for (int attempt = 0;; ++attempt) {
    m.start();
    t0 = monotonic_seconds();
    int64_t done = 0;
    while (done < calls) {
      fn();
      ++done;
      if (monotonic_seconds() - t0 > o.max_window_s) break;
    }
    const double elapsed = monotonic_seconds() - t0;
    m.add_work(o.work_per_call * (double)done);
    m.stop();
    ce.reading = m.results();
    require_counter_advanced(ce.reading, m.update_interval_seconds());
    ce.calls = done;
    ce.window_s = elapsed;
    // The warm-up may have been slow (cold caches, JIT) and the window short: repeat with a
    // rescaled count, at most twice.
    if (elapsed >= window * 0.9 || done < calls || done >= o.max_calls || attempt >= 2) {
      break;
    }
    const double per = std::max(elapsed / (double)done, 1e-9);
    calls = std::clamp<int64_t>((int64_t)std::ceil(window * 1.1 / per), done + 1, o.max_calls);
  }
  ce.source = ce.reading.source;
  ce.estimated = ce.reading.estimated;
  double j = ce.reading.primary_joules();
  if (ce.idle_watts > 0) j = std::max(0.0, j - ce.idle_watts * ce.reading.seconds);
  ce.joules_per_call = j / (double)ce.calls;
  ce.seconds_per_call = ce.window_s / (double)ce.calls;
  return ce;
}

std::string joules_per_token_line(const EnergyReading& r, int64_t tokens) {
  if (tokens <= 0) throw Error("joules_per_token_line: tokens must be positive");
  char b[200];
  std::snprintf(b, sizeof b, "%.4g J/token (%s, %s%s)", r.primary_joules() / (double)tokens,
                r.source.c_str(), r.primary_domain().c_str(), r.estimated ? ", estimated" : "");
  return b;
}

}  // namespace tritune
