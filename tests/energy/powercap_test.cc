// The powercap backend against fake /sys/class/powercap trees.
#include <gtest/gtest.h>

#include <cerrno>

#include "energy/backend.h"
#include "kernels/error.h"
#include "tests/energy/fake_tree.h"

namespace tritune {
namespace {

using testing::FakeTree;

ProbeOptions opts(const FakeTree& t, bool vm = false) {
  ProbeOptions o;
  o.root = t.root();
  o.cpu = CpuIdentity{"GenuineIntel", 6, 0x55, vm};
  o.sample_period_s = 0;  // tests drive the counters by hand
  return o;
}

TEST(Powercap, NormalDeltaPerDomain) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 1000000, 262143328850);
  t.powercap_zone("intel-rapl:0:0", "core", 500000, 262143328850);
  t.powercap_zone("intel-rapl:0:1", "dram", 0, 65712999613);
  t.mkdir("/sys/class/powercap/intel-rapl");  // the control-type dir is not a zone
  BackendProbe p = probe_powercap(opts(t));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(p.status.source, "rapl-powercap");
  EXPECT_EQ(p.status.domains, (std::vector<std::string>{"package", "cores", "dram"}));
  EXPECT_DOUBLE_EQ(p.status.resolution_j, 1e-6);
  p.meter->start();
  t.set_uj("intel-rapl:0", 3500000);    // +2.5 J
  t.set_uj("intel-rapl:0:0", 1500000);  // +1.0 J
  t.set_uj("intel-rapl:0:1", 250000);   // +0.25 J
  p.meter->stop();
  const EnergyReading r = p.meter->results();
  EXPECT_EQ(r.source, "rapl-powercap");
  EXPECT_FALSE(r.estimated);
  EXPECT_NEAR(r.joules(EnergyDomain::kPackage), 2.5, 1e-9);
  EXPECT_NEAR(r.joules(EnergyDomain::kCores), 1.0, 1e-9);
  EXPECT_NEAR(r.joules(EnergyDomain::kDram), 0.25, 1e-9);
  EXPECT_NEAR(r.primary_joules(), 2.5, 1e-9);
  EXPECT_EQ(r.primary_domain(), "package");
}

TEST(Powercap, TwoPackagesAreSummed) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 0, 1000000000);
  t.powercap_zone("intel-rapl:1", "package-1", 0, 1000000000);
  BackendProbe p = probe_powercap(opts(t));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  p.meter->start();
  t.set_uj("intel-rapl:0", 1000000);
  t.set_uj("intel-rapl:1", 2000000);
  p.meter->stop();
  EXPECT_NEAR(p.meter->results().primary_joules(), 3.0, 1e-9);
}

TEST(Powercap, WraparoundAtMaxEnergyRange) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 900000, 1000000);  // wraps after 1 J
  BackendProbe p = probe_powercap(opts(t));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  auto* cm = dynamic_cast<CounterMeter*>(p.meter.get());
  ASSERT_NE(cm, nullptr);
  p.meter->start();
  t.set_uj("intel-rapl:0", 100000);  // 900000 -> 1000000 -> 0 -> 100000
  p.meter->stop();
  // The counter runs 0..max inclusive, so one wrap is max + 1 microjoules.
  EXPECT_NEAR(p.meter->results().primary_joules(), 0.200001, 1e-9);
  EXPECT_EQ(cm->wraps_seen(), 1);
}

TEST(Powercap, SamplingCatchesSeveralWraps) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 0, 999999);  // wrap = 1 J exactly
  BackendProbe p = probe_powercap(opts(t));
  auto* cm = dynamic_cast<CounterMeter*>(p.meter.get());
  ASSERT_NE(cm, nullptr);
  p.meter->start();
  // 0.6 J per step, sampled every step: 5 steps = 3 J although the raw value wrapped 3 times.
  uint64_t v = 0;
  for (int i = 0; i < 5; ++i) {
    v = (v + 600000) % 1000000;
    t.set_uj("intel-rapl:0", v);
    cm->sample();
  }
  p.meter->stop();
  EXPECT_NEAR(p.meter->results().primary_joules(), 3.0, 1e-9);
  EXPECT_EQ(cm->wraps_seen(), 3);  // 0.6 -> 0.2, 0.8 -> 0.4, 0.4 -> 0.0
}

TEST(Powercap, MissingClassSaysSoAndNamesVm) {
  FakeTree t;
  BackendProbe p = probe_powercap(opts(t, /*vm=*/true));
  EXPECT_FALSE(p.status.usable);
  EXPECT_EQ(p.meter, nullptr);
  EXPECT_NE(p.status.reason.find("/sys/class/powercap does not exist"), std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("virtual machine"), std::string::npos) << p.status.reason;
  BackendProbe bare = probe_powercap(opts(t, /*vm=*/false));
  EXPECT_EQ(bare.status.reason.find("virtual machine"), std::string::npos);
}

TEST(Powercap, NoRaplZones) {
  FakeTree t;
  t.mkdir("/sys/class/powercap/intel-rapl");
  t.write("/sys/class/powercap/dtpm/name", "dtpm\n");
  BackendProbe p = probe_powercap(opts(t));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("no intel-rapl:* zones"), std::string::npos) << p.status.reason;
}

TEST(Powercap, PermissionDeniedExplainsRootOnly) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 1, 1000000);
  ProbeOptions o = opts(t);
  o.fs_hook = [](const std::string& path, FsOp op) {
    return path.find("energy_uj") != std::string::npos && op == FsOp::kOpen ? EACCES : 0;
  };
  BackendProbe p = probe_powercap(o);
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("permission denied"), std::string::npos) << p.status.reason;
  EXPECT_NE(p.status.reason.find("root"), std::string::npos) << p.status.reason;
  EXPECT_NE(p.status.reason.find("CVE-2020-8694"), std::string::npos) << p.status.reason;
}

TEST(Powercap, GarbageContents) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 1, 1000000);
  t.write("/sys/class/powercap/intel-rapl:0/energy_uj", "12abc\n");
  BackendProbe p = probe_powercap(opts(t));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("unparseable contents"), std::string::npos) << p.status.reason;
  EXPECT_NE(p.status.reason.find("'12abc'"), std::string::npos) << p.status.reason;

  t.write("/sys/class/powercap/intel-rapl:0/energy_uj", "");
  EXPECT_FALSE(probe_powercap(opts(t)).status.usable);
  t.write("/sys/class/powercap/intel-rapl:0/energy_uj", "-5");
  EXPECT_FALSE(probe_powercap(opts(t)).status.usable);
  t.write("/sys/class/powercap/intel-rapl:0/energy_uj", "99999999999999999999999");
  EXPECT_FALSE(probe_powercap(opts(t)).status.usable);
  t.write("/sys/class/powercap/intel-rapl:0/energy_uj", "2000000");  // above the range
  BackendProbe above = probe_powercap(opts(t));
  EXPECT_FALSE(above.status.usable);
  EXPECT_NE(above.status.reason.find("exceeds max_energy_range_uj"), std::string::npos);
}

TEST(Powercap, MissingMaxRangeIsRefused) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 1, 1000000);
  t.remove("/sys/class/powercap/intel-rapl:0/max_energy_range_uj");
  BackendProbe p = probe_powercap(opts(t));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("max_energy_range_uj does not exist"), std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("wraparound"), std::string::npos);
  t.write("/sys/class/powercap/intel-rapl:0/max_energy_range_uj", "0");
  EXPECT_FALSE(probe_powercap(opts(t)).status.usable);
}

TEST(Powercap, BrokenSubzoneIsSkippedNotFatal) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 1, 1000000);
  t.powercap_zone("intel-rapl:0:0", "core", 1, 1000000);
  t.write("/sys/class/powercap/intel-rapl:0:0/energy_uj", "garbage");
  BackendProbe p = probe_powercap(opts(t));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(p.status.domains, std::vector<std::string>{"package"});
  EXPECT_NE(p.status.reason.find("Skipped"), std::string::npos) << p.status.reason;
}

TEST(Powercap, ReadFailureDuringMeasurementNamesTheFile) {
  FakeTree t;
  t.powercap_zone("intel-rapl:0", "package-0", 1, 1000000);
  BackendProbe p = probe_powercap(opts(t));
  ASSERT_TRUE(p.status.usable);
  p.meter->start();
  t.remove("/sys/class/powercap/intel-rapl:0/energy_uj");
  try {
    p.meter->stop();
    FAIL() << "stop() should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intel-rapl:0/energy_uj does not exist"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tritune
