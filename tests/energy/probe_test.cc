// The probe as a whole: order, selection, the plain "no counter here" verdict on a VM, the
// text/JSON reports, forcing a backend, likwid's CPU check, and the measurement helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <thread>

#include "energy/backend.h"
#include "energy/energy_model.h"
#include "energy/measure.h"
#include "kernels/error.h"
#include "tests/energy/fake_tree.h"

namespace tritune {
namespace {

using testing::FakeTree;

const CpuIdentity kZen5Vm{"AuthenticAMD", 0x1A, 0x02, true};

ProbeOptions vm_opts(const FakeTree& t) {
  ProbeOptions o;
  o.root = t.root();
  o.cpu = kZen5Vm;
  o.try_likwid = false;
  o.sample_period_s = 0;
  return o;
}

// What this development VM looks like: /dev/cpu/N/cpuid but no msr, no powercap, a perf
// event_source without a power PMU.
void make_vm_tree(const FakeTree& t) {
  t.write("/dev/cpu/0/cpuid", "");
  t.mkdir("/sys/bus/event_source/devices/cpu");
  t.mkdir("/sys/bus/event_source/devices/msr");
  t.write("/proc/sys/kernel/perf_event_paranoid", "2\n");
}

TEST(Probe, VmWithoutCountersFallsBackToTheModelAndSaysSo) {
  FakeTree t;
  make_vm_tree(t);
  ProbeOutcome out;
  auto m = make_best_meter(vm_opts(t), &out);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(out.selected, "model");
  EXPECT_EQ(m->source(), "model");
  EXPECT_TRUE(m->estimated());
  ASSERT_EQ(out.backends.size(), 5u);
  const std::vector<std::string> order = {"powercap", "perf", "msr", "likwid", "model"};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(out.backends[i].backend, order[i]);
    EXPECT_FALSE(out.backends[i].reason.empty()) << order[i];
    EXPECT_EQ(out.backends[i].usable, order[i] == "model") << out.backends[i].reason;
  }
  EXPECT_NE(out.backends[0].reason.find("/sys/class/powercap does not exist"), std::string::npos);
  EXPECT_NE(out.backends[1].reason.find("no 'power' PMU"), std::string::npos);
  EXPECT_NE(out.backends[2].reason.find("msr driver is not loaded"), std::string::npos);
  // likwid: either the build lacks it or 5.2 does not know Zen 5; both are said plainly.
  const std::string& lk = out.backends[3].reason;
  EXPECT_TRUE(lk.find("not built with likwid") != std::string::npos ||
              lk.find("does not know AuthenticAMD family 0x1a model 0x2") != std::string::npos)
      << lk;
  EXPECT_TRUE(out.virtual_machine);
  EXPECT_NE(out.summary.find("No energy counter is usable on this machine (a virtual machine)"),
            std::string::npos)
      << out.summary;
  EXPECT_NE(out.summary.find("estimated"), std::string::npos);

  const std::string text = probe_text(out);
  for (const auto& n : order) EXPECT_NE(text.find("  " + n + " "), std::string::npos) << text;
  EXPECT_NE(text.find("unusable"), std::string::npos);
  EXPECT_NE(text.find("selected: model"), std::string::npos);
  const std::string json = probe_json(out);
  EXPECT_NE(json.find("\"selected\": \"model\""), std::string::npos) << json;
  EXPECT_NE(
      json.find("\"backend\": \"powercap\", \"source\": \"rapl-powercap\", \"usable\": false"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find("\"estimated\": true"), std::string::npos);
  EXPECT_NE(json.find("\"virtual_machine\": true"), std::string::npos);
}

TEST(Probe, FirstUsableCounterWins) {
  FakeTree t;
  make_vm_tree(t);
  t.powercap_zone("intel-rapl:0", "package-0", 5, 1000000);
  ProbeOutcome out;
  auto m = make_best_meter(vm_opts(t), &out);
  EXPECT_EQ(out.selected, "powercap");
  EXPECT_EQ(m->source(), "rapl-powercap");
  EXPECT_FALSE(m->estimated());
  EXPECT_NE(out.summary.find("measured, not estimated"), std::string::npos);
  EXPECT_NE(probe_text(out).find("source rapl-powercap"), std::string::npos);
}

TEST(Probe, ForcingABackend) {
  FakeTree t;
  make_vm_tree(t);
  t.powercap_zone("intel-rapl:0", "package-0", 5, 1000000);
  ProbeOptions o = vm_opts(t);
  o.force = "model";
  ProbeOutcome out;
  auto m = make_best_meter(o, &out);
  EXPECT_EQ(m->source(), "model");
  EXPECT_NE(out.summary.find("as asked"), std::string::npos);
  o.force = "msr";
  try {
    make_best_meter(o);
    FAIL() << "msr is not usable in this tree";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'msr' is not usable: "), std::string::npos) << e.what();
  }
  o.force = "rapl";
  EXPECT_THROW(make_best_meter(o), Error);
  o.force = "";
  o.model_table = "5nm";
  EXPECT_THROW(make_best_meter(o), Error);
  EXPECT_EQ(energy_backend_names().size(), 5u);
}

TEST(Probe, LikwidKnowsOnlyOlderCpus) {
  std::string why;
  EXPECT_FALSE(likwid_supports_cpu(kZen5Vm, &why));
  EXPECT_NE(why.find("family 0x1a model 0x2"), std::string::npos) << why;
  EXPECT_FALSE(likwid_supports_cpu({"AuthenticAMD", 0x19, 0x61, false}, &why));    // Zen 4
  EXPECT_TRUE(likwid_supports_cpu({"AuthenticAMD", 0x19, 0x01, false}, nullptr));  // Zen 3
  EXPECT_TRUE(likwid_supports_cpu({"AuthenticAMD", 0x17, 0x31, false}, nullptr));  // Zen 2
  EXPECT_TRUE(likwid_supports_cpu({"GenuineIntel", 6, 0x55, false}, nullptr));     // SKX
  EXPECT_FALSE(likwid_supports_cpu({"GenuineIntel", 6, 0xAD, false}, nullptr));    // GNR
}

TEST(Probe, LikwidIsNotCalledUnderAFakeRoot) {
  FakeTree t;
  ProbeOptions o;
  o.root = t.root();
  o.cpu = CpuIdentity{"GenuineIntel", 6, 0x55, false};  // a CPU likwid 5.2 knows
  const BackendProbe p = probe_likwid(o);
  EXPECT_FALSE(p.status.usable);
  EXPECT_TRUE(p.status.reason.find("not tried: likwid reads the real /dev/cpu") !=
                  std::string::npos ||
              p.status.reason.find("not built with likwid") != std::string::npos)
      << p.status.reason;
}

TEST(Probe, ThisMachine) {
  // The real probe of the machine the tests run on. On a VM without counters (the development
  // machine) it must say so and fall back to the model; elsewhere it must give a reason for every
  // backend and select a usable one.
  ProbeOutcome out;
  auto m = make_best_meter(ProbeOptions{}, &out);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(out.backends.size(), 5u);
  for (const auto& b : out.backends) EXPECT_FALSE(b.reason.empty()) << b.backend;
  bool any_counter = false;
  for (const auto& b : out.backends) any_counter |= b.usable && b.backend != "model";
  if (!any_counter) {
    EXPECT_EQ(out.selected, "model");
    EXPECT_TRUE(m->estimated());
    EXPECT_NE(out.summary.find("No energy counter is usable on this machine"), std::string::npos);
  } else {
    EXPECT_NE(out.selected, "model");
    EXPECT_FALSE(m->estimated());
  }
  std::printf("%s", probe_text(out).c_str());
}

// An in-memory counter the test's "kernel" advances: exactly 1 mJ per call.
class CallCounter : public CounterSource {
 public:
  uint64_t ticks = 0;
  std::string source() const override { return "fake-counter"; }
  std::vector<CounterDomain> domains() const override {
    return {{EnergyDomain::kPackage, "pkg", 1e-6, 0}};
  }
  double resolution_joules() const override { return 1e-6; }
  void read(std::vector<uint64_t>* raw) override { raw->assign(1, ticks); }
};

TEST(Measure, LoopsUntilTheWindowAndDivides) {
  auto src = std::make_unique<CallCounter>();
  CallCounter* c = src.get();
  CounterMeter m(std::move(src), CounterMeterOptions{0, 1000});
  int64_t calls = 0;
  auto fn = [&] {
    c->ticks += 1000;  // 1 mJ
    ++calls;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  };
  MeasureOptions o;
  o.min_window_s = 0.05;
  const CallEnergy ce = measure_per_call(m, fn, o);
  EXPECT_GE(ce.window_s, 0.045);
  EXPECT_GT(ce.calls, 20);
  EXPECT_GE(calls, ce.calls + 1);  // a warm-up call (and possibly a rescaled retry) first
  EXPECT_NEAR(ce.joules_per_call, 1e-3, 1e-12);
  EXPECT_EQ(ce.source, "fake-counter");
  EXPECT_FALSE(ce.estimated);
  EXPECT_NEAR(ce.edp(), ce.joules_per_call * ce.seconds_per_call, 1e-18);

  // Idle subtraction: 2 W over the window is removed from the total before dividing.
  o.subtract_idle = true;
  o.idle_watts = 2.0;
  const CallEnergy ci = measure_per_call(m, fn, o);
  EXPECT_NEAR(ci.joules_per_call,
              (ci.reading.primary_joules() - 2.0 * ci.reading.seconds) / ci.calls, 1e-12);
  EXPECT_LT(ci.joules_per_call, 1e-3);
  EXPECT_DOUBLE_EQ(ci.idle_watts, 2.0);
}

TEST(Measure, ModelMeterCountsTheReportedWork) {
  ModelMeter m(find_energy_table("7nm"));
  MeasureOptions o;
  o.min_window_s = 0.5;  // the model needs no long window: about 1 ms is used
  o.work_per_call = op_counts(Format::kI2S, 2560, 2560, 1);
  const CallEnergy ce = measure_per_call(
      m, [] {}, o);
  EXPECT_TRUE(ce.estimated);
  EXPECT_EQ(ce.source, "model");
  EXPECT_LT(ce.window_s, 0.1);
  EXPECT_NEAR(ce.joules_per_call, model_energy(o.work_per_call, find_energy_table("7nm")).total_j(),
              1e-15);
  EXPECT_EQ(measure_idle_watts(m), 0.0);           // no static power in the model
  EXPECT_THROW(measure_idle_watts(m, -1), Error);  // a bad window is an error on every meter
  EXPECT_NE(joules_per_token_line(ce.reading, ce.calls).find("(model, model, estimated)"),
            std::string::npos)
      << joules_per_token_line(ce.reading, ce.calls);
}

// A counter at a constant 10 W: 10 uJ ticks per ms of wall time since construction.
class TenWatts : public CounterSource {
 public:
  std::string source() const override { return "fake-10w"; }
  std::vector<CounterDomain> domains() const override {
    return {{EnergyDomain::kPackage, "pkg", 1e-6, 0}};
  }
  double resolution_joules() const override { return 1e-6; }
  void read(std::vector<uint64_t>* raw) override {
    raw->assign(1, (uint64_t)((monotonic_seconds() - t0_) * 10e6));
  }

 private:
  double t0_ = monotonic_seconds();
};

TEST(Measure, IdlePowerOfACounter) {
  CounterMeter m(std::make_unique<TenWatts>(), CounterMeterOptions{0, 1000});
  EXPECT_NEAR(measure_idle_watts(m, 0.1), 10.0, 0.1);
  EXPECT_THROW(measure_idle_watts(m, -1), Error);
  MeasureOptions bad;
  bad.min_window_s = 0;
  EXPECT_THROW(measure_per_call(
                   m, [] {}, bad),
               Error);
  // Measured idle subtraction: a call that adds nothing above idle costs ~0 J.
  MeasureOptions o;
  o.min_window_s = 0.05;
  o.subtract_idle = true;
  const CallEnergy ce = measure_per_call(
      m, [] {}, o);
  EXPECT_NEAR(ce.idle_watts, 10.0, 0.1);
  EXPECT_LT(ce.joules_per_call * (double)ce.calls, 0.05 * 10.0 * ce.window_s);
}

// A counter that never moves, as some virtual machines expose RAPL.
class Frozen : public CounterSource {
 public:
  std::string source() const override { return "fake-frozen"; }
  std::vector<CounterDomain> domains() const override {
    return {{EnergyDomain::kPackage, "pkg", 1e-6, 0}};
  }
  double resolution_joules() const override { return 1e-6; }
  void read(std::vector<uint64_t>* raw) override { raw->assign(1, 123456); }
};

TEST(Measure, AFrozenCounterIsAnErrorNotZeroJoules) {
  CounterMeter m(std::make_unique<Frozen>(), CounterMeterOptions{0, 1000});
  try {
    measure_idle_watts(m, 0.06);
    ADD_FAILURE() << "a counter that did not move in 60 ms gave an idle power";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("energy counter frozen: fake-frozen reported no package energy"),
              std::string::npos)
        << w;
    EXPECT_NE(w.find("TRITUNE_ENERGY_BACKEND=model"), std::string::npos) << w;
  }
  MeasureOptions o;
  o.min_window_s = 0.06;
  // A call that sleeps 1 ms: the window reaches 60 ms however loaded the machine is (an empty
  // call timed during a preemption could leave every attempt's window short).
  EXPECT_THROW(measure_per_call(
                   m, [] { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }, o),
               Error);
  // A window too short for the counter to have ticked proves nothing: no error.
  EnergyReading r;
  r.source = "fake-frozen";
  r.seconds = 0.01;
  r.domains.push_back({EnergyDomain::kPackage, "pkg", 0.0});
  EXPECT_NO_THROW(require_counter_advanced(r, 1e-3));
  r.seconds = 0.2;
  EXPECT_THROW(require_counter_advanced(r, 1e-3), Error);
  r.domains[0].joules = 1e-6;  // one tick is enough
  EXPECT_NO_THROW(require_counter_advanced(r, 1e-3));
  r.domains[0].joules = 0;
  r.estimated = true;  // the model's zero is a zero, not a frozen counter
  EXPECT_NO_THROW(require_counter_advanced(r, 1e-3));
}

TEST(Measure, TheBackendEnvironmentVariableIsReadAsIs) {
  setenv("TRITUNE_ENERGY_BACKEND", "model", 1);
  EXPECT_EQ(probe_options_from_env().force, "model");
  unsetenv("TRITUNE_ENERGY_BACKEND");
  EXPECT_EQ(probe_options_from_env().force, "");
}

TEST(Measure, TwoRunsOfTheSameKernelAgreeWhereACounterExists) {
  // The acceptance check on real counters: the same kernel measured twice agrees within
  // 10%. On a machine without counters (the development VM) there is nothing to compare: the
  // model would agree with itself by construction.
  ProbeOutcome out;
  auto m = make_best_meter(ProbeOptions{}, &out);
  if (m->estimated()) GTEST_SKIP() << "no energy counter here: " << out.summary;
  volatile double sink = 0;
  auto kernel = [&] {
    double a = 1.0;
    for (int i = 0; i < 200000; ++i) a = a * 1.0000001 + 1e-9;
    sink = a;
  };
  MeasureOptions o;
  o.min_window_s = 0.2;
  const CallEnergy a = measure_per_call(*m, kernel, o);
  const CallEnergy b = measure_per_call(*m, kernel, o);
  EXPECT_GT(a.joules_per_call, 0.0) << a.to_string();
  EXPECT_NEAR(a.joules_per_call, b.joules_per_call,
              0.1 * std::max(a.joules_per_call, b.joules_per_call))
      << a.to_string() << " vs " << b.to_string();
}

}  // namespace
}  // namespace tritune
