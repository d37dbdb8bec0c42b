// Which energy backend to use: each one is probed in a fixed order (powercap, perf, msr, likwid,
// model) and says whether it is usable and why not (missing file, permission, unsupported CPU,
// virtual machine). The first usable one measures; the model is always usable and always
// labelled estimated. Everything a probe touches is injectable so tests run against fake trees.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "energy/fs.h"
#include "energy/meter.h"

namespace tritune {

// The CPU identity the backends decide on (register set, likwid support, VM hint).
struct CpuIdentity {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD"
  int family = 0, model = 0;
  bool hypervisor = false;
};
CpuIdentity host_cpu_identity();  // from kernels/cpu_features.h

// perf_event_open cannot be faked through files, so the perf backend reaches the kernel only
// through this interface; tests pass their own.
class PerfApi {
 public:
  virtual ~PerfApi() = default;
  // Opens a system-wide counter (pid -1) of PMU `type` / `config` on `cpu`. Returns fd >= 0 or
  // -errno.
  virtual int open(uint32_t type, uint64_t config, int cpu) = 0;
  // Reads the 64-bit count. Returns 0 or errno.
  virtual int read(int fd, uint64_t* value) = 0;
  virtual void close(int fd) = 0;
};
std::shared_ptr<PerfApi> real_perf_api();  // the perf_event_open syscall

struct ProbeOptions {
  std::string root = "/";           // where /sys, /proc and /dev are looked up
  FsHook fs_hook;                   // errno injection for tests (see fs.h)
  std::optional<CpuIdentity> cpu;   // default: host_cpu_identity()
  std::shared_ptr<PerfApi> perf;    // default: real_perf_api()
  bool try_likwid = true;           // likwid touches the real /dev/cpu: off under a fake root
  std::string model_table = "7nm";  // energy table of the model backend
  double sample_period_s = -1;      // CounterMeterOptions::sample_period_s
  // File offset of MSR r is r * msr_stride. The msr driver takes the register number as the
  // offset (1); a fake file in a test spaces registers 8 bytes apart so that consecutive
  // registers (AMD's 0xC0010299..0xC001029B) do not overlap.
  uint64_t msr_stride = 1;
  // Backend to use instead of the first usable one ("" = best). make_best_meter throws an Error
  // with the probe's reason if it is not usable.
  std::string force;
};

struct BackendStatus {
  std::string backend;  // "powercap", "perf", "msr", "likwid", "model"
  std::string source;   // the source name its figures carry: "rapl-powercap", ...
  bool usable = false;
  std::string reason;                // why (not) usable, one or two plain sentences
  std::vector<std::string> domains;  // "package", "cores", "dram" ... when usable
  double resolution_j = 0;
};

struct ProbeOutcome {
  std::vector<BackendStatus> backends;  // all five, in probe order
  std::string selected;                 // backend name of the meter made
  bool virtual_machine = false;
  std::string summary;  // one plain sentence: what measures, or why nothing can
};

// Probes every backend, in order.
std::vector<BackendStatus> probe_backends(const ProbeOptions& o);
// The meter of the first usable backend (or of o.force), and optionally what the probe saw.
std::unique_ptr<EnergyMeter> make_best_meter(const ProbeOptions& o, ProbeOutcome* out = nullptr);
// The options the commands (tune, bench e2e, energy) probe with: the defaults, with `force` from
// TRITUNE_ENERGY_BACKEND ("" when unset: the first usable backend), e.g. `model` where a counter
// exists but is frozen.
ProbeOptions probe_options_from_env();
// The backend names in probe order.
const std::vector<std::string>& energy_backend_names();

// Human and JSON renderings of a probe (the `tritune energy --probe` output).
std::string probe_text(const ProbeOutcome& p);
std::string probe_json(const ProbeOutcome& p);

}  // namespace tritune
