// The energy observer: one interface over every way tritune gets joules (RAPL through powercap,
// perf or MSRs, likwid, or the per-operation model). A caller brackets work with start()/stop()
// and reads per-domain joules plus where they came from; nothing in the tuner or the benchmarks
// knows which backend answered. Every figure carries its source ("rapl-powercap", "rapl-perf",
// "rapl-msr", "likwid", "model") and the model's are flagged `estimated`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/op_counts.h"

namespace tritune {

// RAPL-style domains. Package is the whole socket (cores + uncore, on AMD the SoC package);
// Cores is PP0; Dram the memory controller + DIMMs where the CPU reports it; Uncore PP1 (client
// GPU); Psys the platform; Model is the analytic estimate (arithmetic + memory traffic).
enum class EnergyDomain : int { kPackage = 0, kCores, kDram, kUncore, kPsys, kModel, kCount };
const char* energy_domain_name(EnergyDomain d);  // "package", "cores", "dram", ...

struct DomainEnergy {
  EnergyDomain domain = EnergyDomain::kPackage;
  std::string label;  // the backend's own name, e.g. "package-0", "energy-pkg", "core"
  double joules = 0;
};

struct EnergyReading {
  std::string source;       // "rapl-powercap", "rapl-perf", "rapl-msr", "likwid", "model"
  bool estimated = false;   // true only for the model
  double resolution_j = 0;  // smallest energy step the source can report
  double seconds = 0;       // wall time between start() and stop()
  std::vector<DomainEnergy> domains;
  std::string note;  // e.g. the model's table, or "idle power subtracted"

  bool has(EnergyDomain d) const;
  double joules(
      EnergyDomain d) const;  // sum over entries of that domain (all packages); 0 if absent
  // The figure to report and optimise: package energy where measured (summed over sockets),
  // else psys, else cores + dram, else the model's total.
  double primary_joules() const;
  std::string primary_domain() const;  // name of the domain primary_joules() used
  std::string to_string() const;       // one line: "12.3 mJ package (rapl-powercap) ..."
};

class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;
  virtual std::string source() const = 0;  // see EnergyReading::source
  virtual bool estimated() const = 0;
  virtual double resolution_joules() const = 0;
  virtual std::vector<EnergyDomain> domains() const = 0;
  // Counter meters tick about once per millisecond: a window shorter than ~100 ms is noise
  // (measure_per_call in energy/measure.h loops short work until it is long enough).
  virtual double update_interval_seconds() const = 0;

  // start() resets and begins a window; stop() ends it; results() describes the last window
  // (between start() and stop(), or up to now while running). A counter read failure throws
  // Error naming the file or register.
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual EnergyReading results() const = 0;

  // The work done in the current window, as the kernels count it. Hardware meters ignore it
  // (they measure); the model meter turns it into joules. Callers always report it, so the
  // same code runs whichever meter the probe selected.
  virtual void add_work(const OpCounts& work) {}
};

}  // namespace tritune
