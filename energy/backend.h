// Internal: the contract between probe.cc and the backend files. Each backend is one file with
// one function that inspects the machine (through ProbeOptions' root, hooks and APIs) and
// returns its status and, when usable, a ready meter.
#pragma once
#include <memory>

#include "energy/counter_meter.h"
#include "energy/probe.h"

namespace tritune {

struct BackendProbe {
  BackendStatus status;
  std::unique_ptr<EnergyMeter> meter;  // set iff status.usable
};

BackendProbe probe_powercap(const ProbeOptions& o);
BackendProbe probe_perf(const ProbeOptions& o);
BackendProbe probe_msr(const ProbeOptions& o);
BackendProbe probe_likwid(const ProbeOptions& o);
BackendProbe probe_model(const ProbeOptions& o);

// Helpers shared by the backends.
CpuIdentity probe_cpu(const ProbeOptions& o);
// " This is a virtual machine: ..." when the hypervisor flag is set, else "".
std::string vm_hint(const ProbeOptions& o);
// Wraps a usable counter source into a meter and fills the status fields it knows.
BackendProbe usable_counter(BackendStatus st, std::unique_ptr<CounterSource> src,
                            const ProbeOptions& o);

}  // namespace tritune

namespace tritune {
// Whether likwid 5.2's power module knows this CPU; if not, *why says so.
bool likwid_supports_cpu(const CpuIdentity& c, std::string* why);
}  // namespace tritune
