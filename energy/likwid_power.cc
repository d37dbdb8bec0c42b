// Backend 4: likwid's power API (power_init / power_start), where the installed likwid knows the
// CPU. Debian ships likwid 5.2.2, whose power module predates Zen 4 and Zen 5, and which reads
// the MSRs itself (direct mode needs /dev/cpu/*/msr); so this backend first decides from the CPU
// identity whether the library can work at all and only then calls it. Without likwid at
// configure time it reports "not built with likwid".
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>

#include "energy/backend.h"
#include "kernels/error.h"

#ifdef TRITUNE_HAVE_LIKWID
#include <likwid.h>
#endif

namespace tritune {

bool likwid_supports_cpu(const CpuIdentity& c, std::string* why) {
  // RAPL models of likwid 5.2's power_init() (src/power.c: the P6_FAMILY model list, ZEN_FAMILY
  // and ZEN3_FAMILY Zen 3 models); model numbers as in its topology headers.
  static const std::set<int> kIntel = {
      0x2A, 0x2D, 0x3A, 0x3E, 0x3C, 0x3F, 0x45, 0x46, 0x3D, 0x47, 0x4F, 0x56,    // SNB .. BDW
      0x4E, 0x5E, 0x55, 0x8E, 0x9E, 0x66, 0xA5, 0xA6,                            // SKL .. CML
      0x7D, 0x7E, 0x6A, 0x6C, 0x8C, 0x8D, 0xA7, 0x8F,                            // ICL .. SPR
      0x57, 0x85, 0x37, 0x4A, 0x4D, 0x4C, 0x5A, 0x5D, 0x5C};                     // Phi, Atom
  static const std::set<int> kZen = {0x01, 0x08, 0x11, 0x18, 0x31, 0x60, 0x71};  // family 0x17
  static const std::set<int> kZen3 = {0x01, 0x21, 0x50};                         // family 0x19
  bool ok = false;
  if (c.vendor == "GenuineIntel" && c.family == 6) ok = kIntel.count(c.model) != 0;
  if (c.vendor == "AuthenticAMD" && c.family == 0x17) ok = kZen.count(c.model) != 0;
  if (c.vendor == "AuthenticAMD" && c.family == 0x19) ok = kZen3.count(c.model) != 0;
  if (!ok && why) {
    char b[256];
    std::snprintf(b, sizeof b,
                  "likwid 5.2's power module does not know %s family 0x%x model 0x%x (it knows "
                  "Intel RAPL models up to Sapphire Rapids and AMD Zen 1-3; Zen 4 and Zen 5 came "
                  "later)",
                  c.vendor.c_str(), c.family, c.model);
    *why = b;
  }
  return ok;
}

#ifdef TRITUNE_HAVE_LIKWID
namespace {

bool likwid_domain(const char* name, EnergyDomain* d) {
  const std::string n = name ? name : "";
  if (n == "PKG")
    *d = EnergyDomain::kPackage;
  else if (n == "PP0" || n == "CORE")
    *d = EnergyDomain::kCores;
  else if (n == "DRAM")
    *d = EnergyDomain::kDram;
  else if (n == "PP1")
    *d = EnergyDomain::kUncore;
  else if (n == "PLATFORM")
    *d = EnergyDomain::kPsys;
  else
    return false;
  return true;
}

class LikwidSource : public CounterSource {
 public:
  LikwidSource(int cpu, std::vector<int> types, std::vector<CounterDomain> d, double res)
      : cpu_(cpu), types_(std::move(types)), d_(std::move(d)), res_(res) {}
  std::string source() const override { return "likwid"; }
  std::vector<CounterDomain> domains() const override { return d_; }
  double resolution_joules() const override { return res_; }
  void read(std::vector<uint64_t>* raw) override {
    raw->resize(types_.size());
    for (size_t i = 0; i < types_.size(); ++i) {
      PowerData pd{};
      if (int e = power_start(&pd, cpu_, (PowerType)types_[i])) {
        throw Error("likwid: power_start(" + d_[i].label + ") failed with " + std::to_string(e));
      }
      (*raw)[i] = pd.before;
    }
  }

 private:
  int cpu_;
  std::vector<int> types_;
  std::vector<CounterDomain> d_;
  double res_;
};

}  // namespace
#endif

BackendProbe probe_likwid(const ProbeOptions& o) {
  BackendStatus st;
  st.backend = "likwid";
  st.source = "likwid";
#ifndef TRITUNE_HAVE_LIKWID
  st.reason =
      "not built with likwid: likwid.h and liblikwid were not found when tritune was "
      "configured (install the Debian package likwid and re-run cmake).";
  return {st, nullptr};
#else
  const CpuIdentity cpu = probe_cpu(o);
  std::string why;
  if (!likwid_supports_cpu(cpu, &why)) {
    st.reason = why + "." + vm_hint(o);
    return {st, nullptr};
  }
  if (!o.try_likwid || o.root != "/") {
    st.reason = "not tried: likwid reads the real /dev/cpu, and this probe runs against " +
                (o.root != "/" ? "the fake root " + o.root : std::string("a test setup")) + ".";
    return {st, nullptr};
  }
  RootedFs fs(o.root, o.fs_hook);
  const int fd = fs.open_ro("/dev/cpu/0/msr");
  if (fd < 0) {
    st.reason =
        "likwid (direct access mode) needs /dev/cpu/0/msr: " + errno_reason(-fd, "/dev/cpu/0/msr") +
        "." + vm_hint(o);
    return {st, nullptr};
  }
  ::close(fd);
  HPMmode(ACCESSMODE_DIRECT);
  topology_init();
  const int rc = power_init(0);
  PowerInfo_t info = get_powerInfo();
  if (rc < 0 || !info || !info->hasRAPL) {
    st.reason = "likwid power_init(0) returned " + std::to_string(rc) + " (no RAPL access).";
    return {st, nullptr};
  }
  std::vector<int> types;
  std::vector<CounterDomain> doms;
  double res = 0;
  for (int i = 0; i < NUM_POWER_DOMAINS; ++i) {
    if (!(info->domains[i].supportFlags & POWER_DOMAIN_SUPPORT_STATUS)) continue;
    CounterDomain d;
    if (!likwid_domain(power_names[i], &d.domain)) continue;
    d.label = power_names[i];
    d.joules_per_tick = info->domains[i].energyUnit;
    d.wrap = 1ULL << 32;
    if (d.joules_per_tick <= 0) continue;
    types.push_back(i);
    doms.push_back(d);
    res = res == 0 ? d.joules_per_tick : std::min(res, d.joules_per_tick);
  }
  if (doms.empty()) {
    st.reason = "likwid found RAPL but no readable energy domain.";
    return {st, nullptr};
  }
  st.reason =
      "likwid " + std::to_string(doms.size()) +
      " RAPL domain(s) of the package of cpu 0 (direct MSR access; other sockets are not read).";
  return usable_counter(st, std::make_unique<LikwidSource>(0, types, doms, res), o);
#endif
}

}  // namespace tritune
