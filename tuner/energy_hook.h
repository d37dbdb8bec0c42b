// The tuner's energy source: the best meter the energy probe finds on this machine (RAPL where
// readable, else the per-operation model, labelled estimated), looped per call until the window
// is long enough (energy/measure.h).
#pragma once
#include <string>

#include "tuner/harness.h"

namespace tritune {

// `note` (optional) gets one line saying which meter measures and why.
EnergyFn make_energy_fn(std::string* note = nullptr);

}  // namespace tritune
