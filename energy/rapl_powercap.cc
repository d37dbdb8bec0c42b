// Backend 1: RAPL through the powercap sysfs class (/sys/class/powercap/intel-rapl:*), which the
// intel_rapl driver provides on Intel and, on recent kernels, on AMD Zen. Each zone has `name`
// (package-N, core, uncore, dram, psys), `energy_uj` (microjoules, wrapping) and
// `max_energy_range_uj` (the value after which energy_uj wraps to 0).
#include <algorithm>
#include <cerrno>

#include "energy/backend.h"
#include "kernels/error.h"

namespace tritune {
namespace {

constexpr const char* kPowercap = "/sys/class/powercap";

bool zone_domain(const std::string& name, EnergyDomain* d) {
  if (name.rfind("package", 0) == 0)
    *d = EnergyDomain::kPackage;
  else if (name == "core")
    *d = EnergyDomain::kCores;
  else if (name == "uncore")
    *d = EnergyDomain::kUncore;
  else if (name == "dram")
    *d = EnergyDomain::kDram;
  else if (name == "psys")
    *d = EnergyDomain::kPsys;
  else
    return false;
  return true;
}

struct Zone {
  std::string dir;  // system path of the zone directory
  CounterDomain dom;
};

class PowercapSource : public CounterSource {
 public:
  PowercapSource(RootedFs fs, std::vector<Zone> zones)
      : fs_(std::move(fs)), zones_(std::move(zones)) {}
  std::string source() const override { return "rapl-powercap"; }
  std::vector<CounterDomain> domains() const override {
    std::vector<CounterDomain> r;
    for (const auto& z : zones_) r.push_back(z.dom);
    return r;
  }
  double resolution_joules() const override { return 1e-6; }
  void read(std::vector<uint64_t>* raw) override {
    raw->resize(zones_.size());
    for (size_t i = 0; i < zones_.size(); ++i) {
      const std::string f = zones_[i].dir + "/energy_uj";
      std::string bad;
      if (int e = fs_.read_u64(f, &(*raw)[i], &bad)) {
        throw Error("rapl-powercap: " + errno_reason(e, fs_.path(f)) +
                    (bad.empty() ? "" : " ('" + bad + "')"));
      }
    }
  }

 private:
  RootedFs fs_;
  std::vector<Zone> zones_;
};

// Reads one zone; returns "" or the reason it cannot be used.
std::string read_zone(const RootedFs& fs, const std::string& dir, Zone* z) {
  std::string name;
  if (int e = fs.read_text(dir + "/name", &name)) return errno_reason(e, fs.path(dir + "/name"));
  if (!zone_domain(name, &z->dom.domain)) return "unknown zone name '" + name + "'";
  uint64_t v = 0, max = 0;
  std::string bad;
  const std::string euj = dir + "/energy_uj", mx = dir + "/max_energy_range_uj";
  if (int e = fs.read_u64(euj, &v, &bad)) {
    std::string r = errno_reason(e, fs.path(euj));
    if (e == EACCES || e == EPERM) {
      r += ": since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694, "
           "\"Platypus\"); run as root or grant read access (chmod o+r " +
           fs.path("/sys/class/powercap/intel-rapl:*/energy_uj") + ")";
    }
    if (e == EINVAL) r += " ('" + bad + "')";
    return r;
  }
  if (int e = fs.read_u64(mx, &max, &bad)) {
    return errno_reason(e, fs.path(mx)) + (e == EINVAL ? " ('" + bad + "')" : "") +
           " (needed to undo wraparound)";
  }
  if (max == 0) return fs.path(mx) + " is 0 (needed to undo wraparound)";
  if (v > max) {
    return fs.path(euj) + " = " + std::to_string(v) +
           " exceeds max_energy_range_uj = " + std::to_string(max);
  }
  z->dir = dir;
  z->dom.label = name;
  z->dom.joules_per_tick = 1e-6;
  z->dom.wrap = max == UINT64_MAX ? 0 : max + 1;
  return "";
}

}  // namespace

BackendProbe probe_powercap(const ProbeOptions& o) {
  BackendStatus st;
  st.backend = "powercap";
  st.source = "rapl-powercap";
  RootedFs fs(o.root, o.fs_hook);
  if (!fs.is_dir(kPowercap)) {
    st.reason = fs.path(kPowercap) +
                " does not exist: this kernel exposes no powercap interface "
                "(CONFIG_POWERCAP and the intel_rapl driver)." +
                vm_hint(o);
    return {st, nullptr};
  }
  std::vector<std::string> zone_dirs;
  for (const auto& n : fs.list_dir(kPowercap)) {
    // intel-rapl:N (package) and intel-rapl:N:M (its subzones); the "intel-rapl" control-type
    // directory and the intel-rapl-mmio duplicates of the package are not counters to add.
    if (n.rfind("intel-rapl:", 0) == 0) zone_dirs.push_back(std::string(kPowercap) + "/" + n);
  }
  if (zone_dirs.empty()) {
    st.reason = fs.path(kPowercap) +
                " has no intel-rapl:* zones: the RAPL powercap driver (intel_rapl_msr; also "
                "used for AMD Zen on recent kernels) is not loaded or the CPU has no RAPL." +
                vm_hint(o);
    return {st, nullptr};
  }
  std::vector<Zone> zones;
  std::string skipped;
  for (const auto& d : zone_dirs) {
    Zone z;
    const std::string why = read_zone(fs, d, &z);
    if (why.empty()) {
      zones.push_back(z);
      continue;
    }
    const bool is_package = std::count(d.begin(), d.end(), ':') == 1;
    if (is_package) {
      st.reason = "package zone " + fs.path(d) + ": " + why + ".";
      return {st, nullptr};
    }
    skipped += " Skipped " + fs.path(d) + ": " + why + ".";
  }
  st.reason = "reads energy_uj of " + std::to_string(zones.size()) + " zone(s) under " +
              fs.path(kPowercap) + " (microjoules, wraparound at max_energy_range_uj)." + skipped;
  return usable_counter(st, std::make_unique<PowercapSource>(fs, zones), o);
}

}  // namespace tritune
