#include "tuner/energy_hook.h"

#include <memory>

#include "energy/measure.h"
#include "energy/probe.h"

namespace tritune {

EnergyFn make_energy_fn(std::string* note) {
  ProbeOutcome probe;
  std::shared_ptr<EnergyMeter> meter = make_best_meter(probe_options_from_env(), &probe);
  // A counter that does not move would fail every candidate, and each failure would be
  // recorded and resumed as such: find out once, before any candidate.
  if (!meter->estimated()) measure_idle_watts(*meter, 0.1);
  if (note) {
    *note = probe.summary + (meter->estimated()
                                 ? " Energy figures are model estimates: equal work gives equal "
                                   "joules, so the energy objective cannot separate variants "
                                   "that do the same operations; edp then ranks by time."
                                 : "");
  }
  return [meter](const std::function<void()>& call, const OpCounts& work) {
    MeasureOptions o;
    o.work_per_call = work;
    const CallEnergy e = measure_per_call(*meter, call, o);
    return EnergySample{e.joules_per_call, e.source, e.estimated};
  };
}

}  // namespace tritune
