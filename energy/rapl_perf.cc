// Backend 2: RAPL through perf_event's `power` PMU (arch/x86/events/rapl.c). sysfs describes it:
//   /sys/bus/event_source/devices/power/type             PMU type for perf_event_attr.type
//   .../power/cpumask                                    one CPU per package to open on
//   .../power/events/energy-{pkg,cores,ram,gpu,psys}     "event=0x02"
//   .../power/events/energy-*.scale, energy-*.unit       joules per count ("Joules")
// The counters are system-wide (pid -1, one cpu), so /proc/sys/kernel/perf_event_paranoid > 0
// denies them without CAP_PERFMON; the probe says so with the value it read. The syscall is
// behind PerfApi so tests inject a fake counter source.
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "energy/backend.h"
#include "kernels/error.h"

namespace tritune {
namespace {

constexpr const char* kPmu = "/sys/bus/event_source/devices/power";

class SyscallPerfApi : public PerfApi {
 public:
  int open(uint32_t type, uint64_t config, int cpu) override {
    perf_event_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = type;
    attr.config = config;
    const long fd = ::syscall(SYS_perf_event_open, &attr, -1 /*pid: all*/, cpu, -1, 0UL);
    return fd < 0 ? -errno : (int)fd;
  }
  int read(int fd, uint64_t* value) override {
    const ssize_t r = ::read(fd, value, sizeof *value);
    if (r < 0) return errno;
    return r == (ssize_t)sizeof *value ? 0 : EIO;
  }
  void close(int fd) override { ::close(fd); }
};

struct EventDef {
  const char* name;
  EnergyDomain domain;
};
constexpr EventDef kEvents[] = {{"energy-pkg", EnergyDomain::kPackage},
                                {"energy-cores", EnergyDomain::kCores},
                                {"energy-ram", EnergyDomain::kDram},
                                {"energy-gpu", EnergyDomain::kUncore},
                                {"energy-psys", EnergyDomain::kPsys}};

// "event=0x02" or "event=0x02,umask=0x01" -> config. Returns "" or what is wrong.
std::string parse_event(const std::string& s, uint64_t* config) {
  *config = 0;
  bool have_event = false;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string term = s.substr(i, j - i);
    while (!term.empty() && std::isspace((unsigned char)term.back())) term.pop_back();
    while (!term.empty() && std::isspace((unsigned char)term.front())) term.erase(0, 1);
    const size_t eq = term.find('=');
    if (eq == std::string::npos) return "term '" + term + "' is not key=value";
    const std::string key = term.substr(0, eq), val = term.substr(eq + 1);
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(val.c_str(), &end, 0);
    if (val.empty() || *end != '\0' || errno != 0) return "value '" + val + "' is not a number";
    if (key == "event") {
      if (v > 0xff) return "event " + val + " does not fit config:0-7";
      *config |= v;
      have_event = true;
    } else if (key == "umask") {
      if (v > 0xff) return "umask " + val + " does not fit config:8-15";
      *config |= v << 8;
    } else {
      return "unsupported term '" + key + "'";
    }
    i = j + 1;
  }
  return have_event ? "" : "no event= term";
}

struct Counter {
  CounterDomain dom;
  int fd = -1;
};

class PerfSource : public CounterSource {
 public:
  PerfSource(std::shared_ptr<PerfApi> api, std::vector<Counter> c, double res)
      : api_(std::move(api)), c_(std::move(c)), res_(res) {}
  ~PerfSource() override {
    for (auto& c : c_) api_->close(c.fd);
  }
  std::string source() const override { return "rapl-perf"; }
  std::vector<CounterDomain> domains() const override {
    std::vector<CounterDomain> r;
    for (const auto& c : c_) r.push_back(c.dom);
    return r;
  }
  double resolution_joules() const override { return res_; }
  void read(std::vector<uint64_t>* raw) override {
    raw->resize(c_.size());
    for (size_t i = 0; i < c_.size(); ++i) {
      if (int e = api_->read(c_[i].fd, &(*raw)[i])) {
        throw Error("rapl-perf: reading perf counter " + c_[i].dom.label +
                    " failed: " + std::strerror(e));
      }
    }
  }

 private:
  std::shared_ptr<PerfApi> api_;
  std::vector<Counter> c_;
  double res_;
};

std::string paranoid_text(const RootedFs& fs, long* value) {
  std::string s;
  const std::string p = "/proc/sys/kernel/perf_event_paranoid";
  *value = 99;
  if (int e = fs.read_text(p, &s)) return errno_reason(e, fs.path(p));
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') return fs.path(p) + " has unparseable contents '" + s + "'";
  *value = v;
  return "kernel.perf_event_paranoid = " + std::to_string(v);
}

std::string open_failure(const RootedFs& fs, const std::string& ev, int cpu, int err) {
  std::string r = "perf_event_open(power/" + ev + ", cpu " + std::to_string(cpu) +
                  ") failed: " + std::strerror(err);
  if (err == EACCES || err == EPERM) {
    long par = 99;
    const std::string pt = paranoid_text(fs, &par);
    r += "; " + pt;
    if (par > 0) {
      r += " (system-wide counters need a value <= 0, or CAP_PERFMON / root); fix: run as "
           "root, or `sudo sysctl kernel.perf_event_paranoid=0`";
    } else {
      r += " (allows system-wide counters, so a security module or container policy denies "
           "perf_event_open)";
    }
  } else if (err == ENOENT || err == EOPNOTSUPP || err == ENODEV || err == EINVAL) {
    r += " (the kernel does not count this event on this CPU)";
  } else if (err == ENOSYS) {
    r += " (perf_event_open is not available in this kernel or sandbox)";
  }
  return r;
}

}  // namespace

std::shared_ptr<PerfApi> real_perf_api() {
  static std::shared_ptr<PerfApi> api = std::make_shared<SyscallPerfApi>();
  return api;
}

BackendProbe probe_perf(const ProbeOptions& o) {
  BackendStatus st;
  st.backend = "perf";
  st.source = "rapl-perf";
  RootedFs fs(o.root, o.fs_hook);
  const std::string pmu = kPmu;
  if (!fs.is_dir(pmu)) {
    st.reason = fs.path("/sys/bus/event_source/devices") +
                " has no 'power' PMU: the kernel's "
                "RAPL perf driver does not support this CPU or is not built in." +
                vm_hint(o);
    return {st, nullptr};
  }
  uint64_t type = 0;
  std::string bad;
  if (int e = fs.read_u64(pmu + "/type", &type, &bad)) {
    st.reason =
        errno_reason(e, fs.path(pmu + "/type")) + (e == EINVAL ? " ('" + bad + "')" : "") + ".";
    return {st, nullptr};
  }
  if (type > 0xffffffffULL) {
    st.reason = fs.path(pmu + "/type") + " = " + std::to_string(type) + " is not a PMU type.";
    return {st, nullptr};
  }
  std::vector<int> cpus;
  std::string cpumask, note;
  if (int e = fs.read_text(pmu + "/cpumask", &cpumask)) {
    st.reason = errno_reason(e, fs.path(pmu + "/cpumask")) +
                " (it names the CPU of each package to count on).";
    return {st, nullptr};
  }
  if (!parse_cpu_list(cpumask, &cpus)) {
    st.reason = fs.path(pmu + "/cpumask") + " has unparseable contents '" + cpumask + "'.";
    return {st, nullptr};
  }
  std::shared_ptr<PerfApi> api = o.perf ? o.perf : real_perf_api();
  std::vector<Counter> counters;
  double res = 0;
  std::string skipped;
  bool any_event = false;
  for (const auto& ev : kEvents) {
    const std::string base = pmu + "/events/" + ev.name;
    std::string evs, scale_s, unit;
    if (int e = fs.read_text(base, &evs)) {
      if (e != ENOENT) skipped += " " + errno_reason(e, fs.path(base)) + ".";
      continue;
    }
    any_event = true;
    uint64_t config = 0;
    const std::string perr = parse_event(evs, &config);
    if (!perr.empty()) {
      skipped += " " + fs.path(base) + " = '" + evs + "': " + perr + ".";
      continue;
    }
    if (int e = fs.read_text(base + ".scale", &scale_s)) {
      skipped += " " + errno_reason(e, fs.path(base + ".scale")) + ".";
      continue;
    }
    char* end = nullptr;
    const double scale = std::strtod(scale_s.c_str(), &end);
    if (scale_s.empty() || *end != '\0' || !std::isfinite(scale) || scale <= 0 || scale > 1) {
      skipped += " " + fs.path(base + ".scale") + " has unparseable contents '" + scale_s + "'.";
      continue;
    }
    if (int e = fs.read_text(base + ".unit", &unit)) {
      skipped += " " + errno_reason(e, fs.path(base + ".unit")) + ".";
      continue;
    }
    if (unit != "Joules") {
      skipped += " " + fs.path(base + ".unit") + " is '" + unit + "', not Joules.";
      continue;
    }
    for (int cpu : cpus) {
      const int fd = api->open((uint32_t)type, config, cpu);
      if (fd < 0) {
        // A denied or missing energy-pkg makes the backend unusable; others are skipped.
        const std::string why = open_failure(fs, ev.name, cpu, -fd);
        if (ev.domain == EnergyDomain::kPackage) {
          for (auto& c : counters) api->close(c.fd);
          st.reason = why + ".";
          return {st, nullptr};
        }
        skipped += " " + why + ".";
        continue;
      }
      uint64_t v = 0;
      if (int e = api->read(fd, &v)) {
        api->close(fd);
        skipped += std::string(" reading power/") + ev.name + " on cpu " + std::to_string(cpu) +
                   " failed: " + std::strerror(e) + ".";
        continue;
      }
      Counter c;
      c.fd = fd;
      c.dom.domain = ev.domain;
      c.dom.label = std::string(ev.name) + "@cpu" + std::to_string(cpu);
      c.dom.joules_per_tick = scale;
      c.dom.wrap = 0;  // the kernel accumulates into a 64-bit count
      counters.push_back(c);
      res = res == 0 ? scale : std::min(res, scale);
    }
  }
  if (!any_event) {
    st.reason = fs.path(pmu + "/events") + " has no energy-* events." + vm_hint(o);
    return {st, nullptr};
  }
  if (counters.empty()) {
    st.reason = "no energy event could be used:" + skipped;
    return {st, nullptr};
  }
  st.reason = "counts " + std::to_string(counters.size()) + " power/energy-* event(s) on cpu(s) " +
              cpumask + " (PMU type " + std::to_string(type) + ", scale from sysfs)." + skipped;
  return usable_counter(st, std::make_unique<PerfSource>(api, std::move(counters), res), o);
}

}  // namespace tritune
