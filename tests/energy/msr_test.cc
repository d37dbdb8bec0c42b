// The MSR backend against fake /dev/cpu/N/msr files (pread at offset = register).
#include <gtest/gtest.h>

#include <cerrno>

#include "energy/backend.h"
#include "kernels/error.h"
#include "tests/energy/fake_tree.h"

namespace tritune {
namespace {

using testing::FakeTree;

ProbeOptions opts(const FakeTree& t, CpuIdentity cpu) {
  ProbeOptions o;
  o.root = t.root();
  o.cpu = cpu;
  o.sample_period_s = 0;
  return o;
}
const CpuIdentity kIntelClient{"GenuineIntel", 6, 0x8C, false};  // Tiger Lake
const CpuIdentity kIntelServer{"GenuineIntel", 6, 0x55, false};  // Skylake-X
const CpuIdentity kZen5{"AuthenticAMD", 0x1A, 0x02, true};

// Intel unit register: ESU (bits 12:8) = 14 -> 2^-14 J = 61 uJ; the other fields as on real parts.
constexpr uint64_t kIntelUnit = 0x000A0E03;

TEST(Msr, IntelNormalDeltaAndUnitDecoding) {
  FakeTree t;
  t.write_msr(0, 0x606, kIntelUnit);
  t.write_msr(0, 0x611, 1000);
  t.write_msr(0, 0x639, 500);
  t.write_msr(0, 0x619, 0);
  BackendProbe p = probe_msr(opts(t, kIntelClient));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(p.status.source, "rapl-msr");
  EXPECT_DOUBLE_EQ(p.status.resolution_j, 1.0 / 16384);
  p.meter->start();
  t.write_msr(0, 0x611, 1000 + 16384 * 3);  // 3 J
  t.write_msr(0, 0x639, 500 + 16384);       // 1 J
  t.write_msr(0, 0x619, 8192);              // 0.5 J
  p.meter->stop();
  const EnergyReading r = p.meter->results();
  EXPECT_NEAR(r.joules(EnergyDomain::kPackage), 3.0, 1e-12);
  EXPECT_NEAR(r.joules(EnergyDomain::kCores), 1.0, 1e-12);
  EXPECT_NEAR(r.joules(EnergyDomain::kDram), 0.5, 1e-12);
}

TEST(Msr, ThirtyTwoBitWraparoundIgnoresHighBits) {
  FakeTree t;
  t.write_msr(0, 0x606, kIntelUnit);
  t.write_msr(0, 0x611, (0xABCDULL << 32) | 0xFFFFFF00ULL);  // bits 63:32 are reserved
  BackendProbe p = probe_msr(opts(t, kIntelClient));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  p.meter->start();
  t.write_msr(0, 0x611, (0x1234ULL << 32) | 0x100ULL);
  p.meter->stop();
  EXPECT_NEAR(p.meter->results().primary_joules(), 0x200 / 16384.0, 1e-12);
}

TEST(Msr, IntelServerDramUsesFixedUnit) {
  FakeTree t;
  t.write_msr(0, 0x606, kIntelUnit);
  t.write_msr(0, 0x611, 0);
  t.write_msr(0, 0x619, 0);
  BackendProbe p = probe_msr(opts(t, kIntelServer));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  p.meter->start();
  t.write_msr(0, 0x619, 100000);
  p.meter->stop();
  EXPECT_NEAR(p.meter->results().joules(EnergyDomain::kDram), 100000 * 15.3e-6, 1e-9);
}

// Every server part whose DRAM domain counts in 15.3 uJ (Intel SDM; Linux intel_rapl_common.c
// rapl_defaults_hsw_server): Haswell-EP, Broadwell-EP/DE, Skylake-X, Ice Lake-SP/D, Sapphire
// Rapids, Xeon Phi KNL/KNM. A client part (Tiger Lake) takes the unit register's 2^-14 J.
TEST(Msr, EveryServerModelWithAFixedDramUnitUsesIt) {
  for (const int model : {0x3F, 0x4F, 0x56, 0x55, 0x6A, 0x6C, 0x8F, 0x57, 0x85, 0x8C}) {
    FakeTree t;
    t.write_msr(0, 0x606, kIntelUnit);
    t.write_msr(0, 0x611, 0);
    t.write_msr(0, 0x619, 0);
    BackendProbe p = probe_msr(opts(t, CpuIdentity{"GenuineIntel", 6, model, false}));
    ASSERT_TRUE(p.status.usable) << p.status.reason;
    p.meter->start();
    t.write_msr(0, 0x619, 100000);
    p.meter->stop();
    const double unit = model == 0x8C ? 1.0 / 16384 : 15.3e-6;
    EXPECT_NEAR(p.meter->results().joules(EnergyDomain::kDram), 100000 * unit, 1e-9)
        << "model 0x" << std::hex << model;
  }
}

TEST(Msr, AmdPackageAndPerCoreCounters) {
  FakeTree t;
  const CpuIdentity zen4{"AuthenticAMD", 0x19, 0x61, false};
  for (int cpu = 0; cpu < 4; ++cpu) {
    t.write_msr(cpu, 0xC0010299, 0x000A1003, 8);  // ESU = 16 -> 15.3 uJ
    t.write_msr(cpu, 0xC001029A, 0, 8);
    t.write_msr(cpu, 0xC001029B, 0, 8);
    const std::string topo = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    t.write(topo + "physical_package_id", "0\n");
    t.write(topo + "core_id", std::to_string(cpu / 2) + "\n");  // 2 cores x 2 SMT threads
  }
  t.write("/dev/cpu/4/cpuid", "");  // a CPU without msr device: ignored
  // AMD's registers are consecutive numbers: the fake file spaces them 8 bytes apart.
  ProbeOptions o = opts(t, zen4);
  o.msr_stride = 8;
  BackendProbe p = probe_msr(o);
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(p.status.domains, (std::vector<std::string>{"package", "cores"}));
  p.meter->start();
  t.write_msr(0, 0xC001029B, 65536 * 4, 8);  // 4 J package
  t.write_msr(0, 0xC001029A, 65536, 8);      // core 0: 1 J
  t.write_msr(2, 0xC001029A, 65536 * 2, 8);  // core 1: 2 J
  t.write_msr(1, 0xC001029A, 65536 * 9, 8);  // SMT sibling of core 0: not read twice
  p.meter->stop();
  const EnergyReading r = p.meter->results();
  EXPECT_NEAR(r.joules(EnergyDomain::kPackage), 4.0, 1e-12);
  EXPECT_NEAR(r.joules(EnergyDomain::kCores), 3.0, 1e-12);
}

TEST(Msr, MissingDriverSaysModprobe) {
  FakeTree t;
  t.write("/dev/cpu/0/cpuid", "");
  BackendProbe p = probe_msr(opts(t, kZen5));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("/dev/cpu/0/msr does not exist"), std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("modprobe msr"), std::string::npos);
  EXPECT_NE(p.status.reason.find("virtual machine"), std::string::npos);
  FakeTree empty;
  EXPECT_NE(probe_msr(opts(empty, kZen5)).status.reason.find("/dev/cpu does not exist"),
            std::string::npos);
}

TEST(Msr, PermissionDeniedNeedsRoot) {
  FakeTree t;
  t.write_msr(0, 0x606, kIntelUnit);
  t.write_msr(0, 0x611, 1);
  ProbeOptions o = opts(t, kIntelClient);
  o.fs_hook = [](const std::string& p, FsOp op) {
    return p.find("/msr") != std::string::npos && op == FsOp::kOpen ? EPERM : 0;
  };
  BackendProbe p = probe_msr(o);
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("permission denied on"), std::string::npos) << p.status.reason;
  EXPECT_NE(p.status.reason.find("needs root (CAP_SYS_RAWIO)"), std::string::npos);
}

TEST(Msr, UnimplementedRegisterGivesEio) {
  FakeTree t;
  t.write_msr(0, 0x606, kIntelUnit);
  t.write_msr(0, 0x611, 1);
  ProbeOptions o = opts(t, kIntelClient);
  o.fs_hook = [](const std::string& p, FsOp op) {
    return p.find("/msr") != std::string::npos && op == FsOp::kRead ? EIO : 0;
  };
  BackendProbe p = probe_msr(o);
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("MSR 0x606 (RAPL power unit)"), std::string::npos)
      << p.status.reason;
  EXPECT_NE(p.status.reason.find("EIO"), std::string::npos);
}

TEST(Msr, TruncatedFileAndZeroUnit) {
  FakeTree t;
  t.write("/dev/cpu/0/msr", "short");  // pread past the end: a short read
  BackendProbe p = probe_msr(opts(t, kIntelClient));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("EIO"), std::string::npos) << p.status.reason;

  FakeTree z;
  z.write_msr(0, 0x606, 0);
  z.write_msr(0, 0x611, 1);
  BackendProbe q = probe_msr(opts(z, kIntelClient));
  EXPECT_FALSE(q.status.usable);
  EXPECT_NE(q.status.reason.find("reads 0"), std::string::npos) << q.status.reason;
}

TEST(Msr, MissingOptionalDomainIsSkipped) {
  FakeTree t;
  t.write_msr(0, 0x606, kIntelUnit);
  t.write_msr(0, 0x611, 1);  // the file ends at 0x619: the PP0 and DRAM reads come up short
  BackendProbe p = probe_msr(opts(t, kIntelClient));
  ASSERT_TRUE(p.status.usable) << p.status.reason;
  EXPECT_EQ(p.status.domains, std::vector<std::string>{"package"});
  EXPECT_NE(p.status.reason.find("MSR 0x619 (dram)"), std::string::npos) << p.status.reason;
}

TEST(Msr, UnknownVendor) {
  FakeTree t;
  BackendProbe p = probe_msr(opts(t, CpuIdentity{"CentaurHauls", 6, 0x0F, false}));
  EXPECT_FALSE(p.status.usable);
  EXPECT_NE(p.status.reason.find("has no RAPL MSRs"), std::string::npos) << p.status.reason;
}

}  // namespace
}  // namespace tritune
