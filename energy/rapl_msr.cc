// Backend 3: RAPL MSRs read through the msr driver (/dev/cpu/N/msr, pread at offset = register).
//   Intel (family 6): MSR_RAPL_POWER_UNIT 0x606, PKG 0x611, PP0 (cores) 0x639, DRAM 0x619
//   AMD (Zen, family >= 0x17): unit 0xC0010299, core 0xC001029A (per core), pkg 0xC001029B
// Energy status counters are 32 bits wide (bits 31:0) and wrap; the unit is 1/2^ESU joules with
// ESU = bits 12:8 of the unit register (Intel server DRAM uses a fixed 15.3 uJ instead).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <iterator>
#include <map>
#include <set>

#include "energy/backend.h"
#include "kernels/error.h"

namespace tritune {
namespace {

struct MsrReader {
  int fd = -1;
  int cpu = 0;
  std::string path;  // system path of the device
};

struct MsrCounter {
  CounterDomain dom;
  size_t reader = 0;  // index into the readers
  uint64_t reg = 0;
};

class MsrSource : public CounterSource {
 public:
  MsrSource(RootedFs fs, std::vector<MsrReader> r, std::vector<MsrCounter> c, double res,
            uint64_t stride)
      : fs_(std::move(fs)), r_(std::move(r)), c_(std::move(c)), res_(res), stride_(stride) {}
  ~MsrSource() override {
    for (auto& r : r_) ::close(r.fd);
  }
  std::string source() const override { return "rapl-msr"; }
  std::vector<CounterDomain> domains() const override {
    std::vector<CounterDomain> d;
    for (const auto& c : c_) d.push_back(c.dom);
    return d;
  }
  double resolution_joules() const override { return res_; }
  void read(std::vector<uint64_t>* raw) override {
    raw->resize(c_.size());
    for (size_t i = 0; i < c_.size(); ++i) {
      const MsrReader& r = r_[c_[i].reader];
      uint64_t v = 0;
      if (int e = fs_.pread_u64(r.fd, r.path, c_[i].reg * stride_, &v)) {
        char reg[32];
        std::snprintf(reg, sizeof reg, "MSR 0x%llx", (unsigned long long)c_[i].reg);
        throw Error("rapl-msr: " + errno_reason(e, std::string(reg) + " on " + fs_.path(r.path)));
      }
      (*raw)[i] = v & 0xffffffffULL;
    }
  }

 private:
  RootedFs fs_;
  std::vector<MsrReader> r_;
  std::vector<MsrCounter> c_;
  double res_;
  uint64_t stride_;
};

struct MsrDom {
  uint64_t reg;
  EnergyDomain d;
  const char* name;
  bool per_core;  // AMD core energy is per core: read one thread of every core
};

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llX", (unsigned long long)v);
  return b;
}

bool intel_server_dram_unit(int model) {
  // Haswell-EP, Broadwell-E/D, Skylake-X, Ice Lake-X/D, Sapphire Rapids, Xeon Phi KNL/KNM: the
  // DRAM domain counts in 15.3 uJ regardless of the unit register (Intel SDM; Linux
  // intel_rapl_common.c and likwid power.c do the same).
  static const std::set<int> kModels = {0x3F, 0x4F, 0x56, 0x55, 0x6A, 0x6C, 0x8F, 0x57, 0x85};
  return kModels.count(model) != 0;
}

int read_topology(const RootedFs& fs, int cpu, const char* what) {
  uint64_t v = 0;
  const std::string p = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/" + what;
  if (fs.read_u64(p, &v) != 0 || v > 1u << 20) return -1;
  return (int)v;
}

}  // namespace

BackendProbe probe_msr(const ProbeOptions& o) {
  BackendStatus st;
  st.backend = "msr";
  st.source = "rapl-msr";
  RootedFs fs(o.root, o.fs_hook);
  const CpuIdentity cpu = probe_cpu(o);
  const bool intel = cpu.vendor == "GenuineIntel" && cpu.family == 6;
  const bool amd =
      (cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine") && cpu.family >= 0x17;
  if (!intel && !amd) {
    char b[160];
    std::snprintf(b, sizeof b,
                  "%s family 0x%x has no RAPL MSRs this backend knows "
                  "(Intel family 6, AMD family 0x17 and later).",
                  cpu.vendor.c_str(), cpu.family);
    st.reason = b;
    return {st, nullptr};
  }
  // CPUs with an msr device, and one per package (and, on AMD, one per core).
  std::vector<int> cpus;
  for (const auto& n : fs.list_dir("/dev/cpu")) {
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 6)
      continue;
    if (fs.exists("/dev/cpu/" + n + "/msr")) cpus.push_back(std::stoi(n));
  }
  std::sort(cpus.begin(), cpus.end());
  if (cpus.empty()) {
    if (!fs.is_dir("/dev/cpu")) {
      st.reason = fs.path("/dev/cpu") + " does not exist: no msr (or cpuid) driver." + vm_hint(o);
    } else {
      st.reason = fs.path("/dev/cpu/0/msr") +
                  " does not exist: the msr driver is not loaded "
                  "(`modprobe msr`, as root) or the kernel lacks CONFIG_X86_MSR." +
                  vm_hint(o);
    }
    return {st, nullptr};
  }
  std::map<int, int> pkg_cpu;                   // package -> first cpu
  std::map<std::pair<int, int>, int> core_cpu;  // (package, core) -> first cpu
  for (int c : cpus) {
    int pkg = read_topology(fs, c, "physical_package_id");
    int core = read_topology(fs, c, "core_id");
    if (pkg < 0) pkg = 0;
    if (core < 0) core = c;
    pkg_cpu.emplace(pkg, c);
    core_cpu.emplace(std::make_pair(pkg, core), c);
  }
  const uint64_t unit_reg = intel ? 0x606 : 0xC0010299ULL;
  const uint64_t stride = o.msr_stride == 0 ? 1 : o.msr_stride;
  std::vector<MsrReader> readers;
  std::map<int, size_t> reader_of;  // cpu -> reader index
  auto reader = [&](int c, std::string* why) -> long {
    auto it = reader_of.find(c);
    if (it != reader_of.end()) return (long)it->second;
    MsrReader r;
    r.cpu = c;
    r.path = "/dev/cpu/" + std::to_string(c) + "/msr";
    r.fd = fs.open_ro(r.path);
    if (r.fd < 0) {
      *why = errno_reason(-r.fd, fs.path(r.path));
      if (-r.fd == EACCES || -r.fd == EPERM) {
        *why +=
            ": reading MSRs needs root (CAP_SYS_RAWIO) and, under kernel lockdown or "
            "Secure Boot, may be refused even then";
      }
      return -1;
    }
    readers.push_back(r);
    reader_of[c] = readers.size() - 1;
    return (long)readers.size() - 1;
  };
  auto fail = [&](const std::string& why) {
    for (auto& r : readers) ::close(r.fd);
    st.reason = why + ".";
    return BackendProbe{st, nullptr};
  };
  std::vector<MsrCounter> counters;
  std::string skipped;
  double res = 0;
  for (const auto& [pkg, c] : pkg_cpu) {
    std::string why;
    const long ri = reader(c, &why);
    if (ri < 0) return fail(why);
    const MsrReader& r = readers[(size_t)ri];
    uint64_t unit = 0;
    if (int e = fs.pread_u64(r.fd, r.path, unit_reg * stride, &unit)) {
      return fail(
          errno_reason(e, "MSR " + hex(unit_reg) + " (RAPL power unit) on " + fs.path(r.path)) +
          vm_hint(o));
    }
    if ((unit & 0xffffffffULL) == 0) {
      return fail("MSR " + hex(unit_reg) + " (RAPL power unit) on " + fs.path(r.path) +
                  " reads 0: RAPL is not implemented here" + vm_hint(o));
    }
    const double ju = 1.0 / (double)(1ULL << ((unit >> 8) & 0x1f));
    static constexpr MsrDom kIntelDoms[] = {{0x611, EnergyDomain::kPackage, "pkg", false},
                                            {0x639, EnergyDomain::kCores, "pp0", false},
                                            {0x619, EnergyDomain::kDram, "dram", false}};
    static constexpr MsrDom kAmdDoms[] = {{0xC001029BULL, EnergyDomain::kPackage, "pkg", false},
                                          {0xC001029AULL, EnergyDomain::kCores, "core", true}};
    const MsrDom* doms_begin = intel ? std::begin(kIntelDoms) : std::begin(kAmdDoms);
    const MsrDom* doms_end = intel ? std::end(kIntelDoms) : std::end(kAmdDoms);
    for (const MsrDom* dp = doms_begin; dp != doms_end; ++dp) {
      const MsrDom& d = *dp;
      std::vector<int> on;
      if (d.per_core) {
        for (const auto& [pc, cc] : core_cpu) {
          if (pc.first == pkg) on.push_back(cc);
        }
      } else {
        on.push_back(c);
      }
      for (int oc : on) {
        std::string why2;
        const long ri2 = reader(oc, &why2);
        if (ri2 < 0) {
          if (d.d == EnergyDomain::kPackage) return fail(why2);
          skipped += " " + why2 + ".";
          continue;
        }
        const MsrReader& r2 = readers[(size_t)ri2];
        uint64_t v = 0;
        if (int e = fs.pread_u64(r2.fd, r2.path, d.reg * stride, &v)) {
          const std::string why3 =
              errno_reason(e, "MSR " + hex(d.reg) + " (" + d.name + ") on " + fs.path(r2.path));
          if (d.d == EnergyDomain::kPackage) return fail(why3 + vm_hint(o));
          skipped += " " + why3 + ".";
          continue;
        }
        MsrCounter mc;
        mc.reader = (size_t)ri2;
        mc.reg = d.reg;
        mc.dom.domain = d.d;
        mc.dom.label = std::string(d.name) + "@cpu" + std::to_string(oc);
        mc.dom.joules_per_tick =
            intel && d.d == EnergyDomain::kDram && intel_server_dram_unit(cpu.model) ? 15.3e-6 : ju;
        mc.dom.wrap = 1ULL << 32;
        counters.push_back(mc);
        res = res == 0 ? mc.dom.joules_per_tick : std::min(res, mc.dom.joules_per_tick);
      }
    }
  }
  st.reason = std::string("reads ") + (intel ? "Intel" : "AMD") + " RAPL MSRs through " +
              std::to_string(readers.size()) + " /dev/cpu/*/msr device(s) (32-bit counters, " +
              "energy unit from " + hex(unit_reg) + ")." + skipped;
  return usable_counter(
      st, std::make_unique<MsrSource>(fs, std::move(readers), std::move(counters), res, stride), o);
}

}  // namespace tritune
