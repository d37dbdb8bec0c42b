// The perf `power` PMU backend: sysfs parsing against fake trees, the syscall replaced by a fake
// counter source.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <tuple>

#include "energy/backend.h"
#include "kernels/error.h"
#include "tests/energy/fake_tree.h"

namespace tritune {
namespace {

using testing::FakeTree;

// Counters keyed by (type, config, cpu); open() can be told to fail per config.
class FakePerf : public PerfApi {
 public:
  std::map<std::tuple<uint32_t, uint64_t, int>, uint64_t> value;
  std::map<uint64_t, int> open_errno;  // config -> errno
  int read_errno = 0;
  int opened = 0, closed = 0;

  int open(uint32_t type, uint64_t config, int cpu) override {
    auto e = open_errno.find(config);
    if (e != open_errno.end()) return -e->second;
    fds_.push_back({type, config, cpu});
    ++opened;
    return (int)fds_.size() + 99;
  }
  int read(int fd, uint64_t* v) override {
    if (read_errno) return read_errno;
    *v = value[fds_.at((size_t)(fd - 100))];
    return 0;
  }
  void close(int) override { ++closed; }

 private:
  std::vector<std::tuple<uint32_t, uint64_t, int>> fds_;
};

constexpr const char* kPmu = "/sys/bus/event_source/devices/power";
constexpr const char* kScale = "2.3283064365386962890625e-10";  // 2^-32 J, as the kernel exports

void make_pmu(const FakeTree& t, const std::string& cpumask = "0") {
  t.write(std::string(kPmu) + "/type", "13\n");
  t.write(std::string(kPmu) + "/cpumask", cpumask + "\n");
  for (auto [name, ev] : {std::pair{"energy-pkg", "0x02"}, std::pair{"energy-ram", "0x03"},
                          std::pair{"energy-cores", "0x01"}}) {
    const std::string b = std::string(kPmu) + "/events/" + name;
    t.write(b, std::string("event=") + ev + "\n");
    t.write(b + ".scale", std::string(kScale) + "\n");
    t.write(b + ".unit", "Joules\n");
  }
  t.write("/proc/sys/kernel/perf_event_paranoid", "2\n");
}

ProbeOptions opts(const FakeTree& t, std::shared_ptr<PerfApi> api, bool vm = false) {
  ProbeOptions o;
  o.root = t.root();
  o.perf = std::move(api);
  o.cpu = CpuIdentity{"AuthenticAMD", 0x19, 0x61, vm};
  o.sample_period_s = 0;
  return o;
}

TEST(Perf, NormalDeltaWithSysfsScale) {
  FakeTree t;
  make_pmu(t);
  auto api = std::make_shared<FakePerf>();
  BackendProbe p = probe_perf(opts(t, api));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(p.status.source, "rapl-perf");
  EXPECT_EQ(api->opened, 3);
  EXPECT_EQ(p.status.domains, (std::vector<std::string>{"package", "cores", "dram"}));
  p.meter->start();
  api->value[{13, 0x02, 0}] = 3ULL << 32;  // 3 J
  api->value[{13, 0x03, 0}] = 1ULL << 31;  // 0.5 J
  api->value[{13, 0x01, 0}] = 1ULL << 32;  // 1 J
  p.meter->stop();
  const EnergyReading r = p.meter->results();
  EXPECT_EQ(r.source, "rapl-perf");
  EXPECT_NEAR(r.joules(EnergyDomain::kPackage), 3.0, 1e-9);
  EXPECT_NEAR(r.joules(EnergyDomain::kDram), 0.5, 1e-9);
  EXPECT_NEAR(r.joules(EnergyDomain::kCores), 1.0, 1e-9);
  p.meter.reset();
  EXPECT_EQ(api->closed, 3);  // the meter closes its counters
}

// Each event has its own scale (a server's DRAM counts in 2^-16 J, the package in 2^-32 J):
// every counter is converted with its own, and the meter's resolution is the finest of them.
TEST(Perf, EachEventKeepsItsScaleAndTheResolutionIsTheFinest) {
  FakeTree t;
  make_pmu(t);
  t.write(std::string(kPmu) + "/events/energy-ram.scale", "1.52587890625e-05\n");  // 2^-16 J
  auto api = std::make_shared<FakePerf>();
  BackendProbe p = probe_perf(opts(t, api));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_DOUBLE_EQ(p.status.resolution_j, 1.0 / 4294967296.0);
  EXPECT_DOUBLE_EQ(p.meter->resolution_joules(), 1.0 / 4294967296.0);
  p.meter->start();
  api->value[{13, 0x02, 0}] = 1ULL << 32;  // 1 J at 2^-32 J
  api->value[{13, 0x03, 0}] = 3ULL << 16;  // 3 J at 2^-16 J
  p.meter->stop();
  const EnergyReading r = p.meter->results();
  EXPECT_NEAR(r.joules(EnergyDomain::kPackage), 1.0, 1e-9);
  EXPECT_NEAR(r.joules(EnergyDomain::kDram), 3.0, 1e-9);
}

TEST(Perf, OneCounterPerPackageFromCpumask) {
  FakeTree t;
  make_pmu(t, "0,18");
  auto api = std::make_shared<FakePerf>();
  BackendProbe p = probe_perf(opts(t, api));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(api->opened, 6);
  p.meter->start();
  api->value[{13, 0x02, 0}] = 1ULL << 32;
  api->value[{13, 0x02, 18}] = 2ULL << 32;
  p.meter->stop();
  EXPECT_NEAR(p.meter->results().primary_joules(), 3.0, 1e-9);
}

TEST(Perf, PermissionDeniedExplainsParanoid) {
  FakeTree t;
  make_pmu(t);
  auto api = std::make_shared<FakePerf>();
  api->open_errno[0x02] = EACCES;
  BackendProbe p = probe_perf(opts(t, api));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("perf_event_open(power/energy-pkg, cpu 0) failed"),
            std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("kernel.perf_event_paranoid = 2"), std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("sysctl kernel.perf_event_paranoid=0"), std::string::npos);

  t.write("/proc/sys/kernel/perf_event_paranoid", "-1\n");
  BackendProbe q = probe_perf(opts(t, api));
  EXPECT_NE(q.status.reason.find("security module"), std::string::npos) << q.status.reason;

  t.remove("/proc/sys/kernel/perf_event_paranoid");
  BackendProbe r = probe_perf(opts(t, api));
  EXPECT_NE(r.status.reason.find("perf_event_paranoid does not exist"), std::string::npos)
      << r.status.reason;
}

TEST(Perf, MissingPmuSaysSo) {
  FakeTree t;
  t.mkdir("/sys/bus/event_source/devices/cpu");
  BackendProbe p = probe_perf(opts(t, std::make_shared<FakePerf>(), /*vm=*/true));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("has no 'power' PMU"), std::string::npos) << p.status.reason;
  EXPECT_NE(p.status.reason.find("virtual machine"), std::string::npos);
}

TEST(Perf, GarbageScaleUnitAndEventAreSkippedWithReasons) {
  FakeTree t;
  make_pmu(t);
  t.write(std::string(kPmu) + "/events/energy-pkg.scale", "lots\n");
  t.write(std::string(kPmu) + "/events/energy-ram.unit", "mJ\n");
  t.write(std::string(kPmu) + "/events/energy-cores", "evnt=0x01\n");
  BackendProbe p = probe_perf(opts(t, std::make_shared<FakePerf>()));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("energy-pkg.scale has unparseable contents 'lots'"),
            std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("is 'mJ', not Joules"), std::string::npos);
  EXPECT_NE(p.status.reason.find("unsupported term 'evnt'"), std::string::npos);
}

TEST(Perf, GarbageTypeAndCpumask) {
  FakeTree t;
  make_pmu(t);
  t.write(std::string(kPmu) + "/type", "power\n");
  BackendProbe p = probe_perf(opts(t, std::make_shared<FakePerf>()));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("type has unparseable contents"), std::string::npos);
  make_pmu(t, "zero");
  BackendProbe q = probe_perf(opts(t, std::make_shared<FakePerf>()));
  EXPECT_FALSE(q.status.usable);
  EXPECT_NE(q.status.reason.find("cpumask has unparseable contents 'zero'"), std::string::npos);
  t.remove(std::string(kPmu) + "/cpumask");
  EXPECT_NE(probe_perf(opts(t, std::make_shared<FakePerf>()))
                .status.reason.find("cpumask does not exist"),
            std::string::npos);
}

TEST(Perf, NoEnergyEventsAndUnsupportedEvent) {
  FakeTree t;
  make_pmu(t);
  t.remove(std::string(kPmu) + "/events");
  t.mkdir(std::string(kPmu) + "/events");
  BackendProbe p = probe_perf(opts(t, std::make_shared<FakePerf>()));
  EXPECT_NE(p.status.reason.find("has no energy-* events"), std::string::npos);

  make_pmu(t);
  auto api = std::make_shared<FakePerf>();
  api->open_errno[0x03] = ENOENT;  // energy-ram not counted on this CPU: skipped, not fatal
  BackendProbe q = probe_perf(opts(t, api));
  ASSERT_TRUE(q.status.usable) << q.status.reason;
  EXPECT_EQ(q.status.domains, (std::vector<std::string>{"package", "cores"}));
  EXPECT_NE(q.status.reason.find("does not count this event"), std::string::npos);
}

TEST(Perf, ReadFailureIsAnError) {
  FakeTree t;
  make_pmu(t);
  auto api = std::make_shared<FakePerf>();
  BackendProbe p = probe_perf(opts(t, api));
  ASSERT_TRUE(p.status.usable);
  p.meter->start();
  api->read_errno = EIO;
  EXPECT_THROW(p.meter->stop(), Error);
}

TEST(Perf, ParseCpuList) {
  std::vector<int> c;
  ASSERT_TRUE(parse_cpu_list("0", &c));
  EXPECT_EQ(c, std::vector<int>{0});
  ASSERT_TRUE(parse_cpu_list("0-3,8-9,12\n", &c));
  EXPECT_EQ(c, (std::vector<int>{0, 1, 2, 3, 8, 9, 12}));
  EXPECT_FALSE(parse_cpu_list("", &c));
  EXPECT_FALSE(parse_cpu_list("3-1", &c));
  EXPECT_FALSE(parse_cpu_list("0,,1", &c));
  EXPECT_FALSE(parse_cpu_list("0-99999999", &c));
  EXPECT_FALSE(parse_cpu_list("a", &c));
}

}  // namespace
}  // namespace tritune
