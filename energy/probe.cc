#include "energy/probe.h"

#include <cstdio>
#include <cstdlib>

#include "energy/backend.h"
#include "energy/energy_model.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/json.h"

namespace tritune {

CpuIdentity host_cpu_identity() {
  const CpuInfo& c = cpu_info();
  return {c.vendor, c.family, c.model, c.hypervisor};
}

CpuIdentity probe_cpu(const ProbeOptions& o) {
  return o.cpu ? *o.cpu : host_cpu_identity();
}

std::string vm_hint(const ProbeOptions& o) {
  if (!probe_cpu(o).hypervisor) return "";
  return " This is a virtual machine (the CPU reports a hypervisor): hypervisors rarely pass "
         "energy counters through.";
}

BackendProbe usable_counter(BackendStatus st, std::unique_ptr<CounterSource> src,
                            const ProbeOptions& o) {
  CounterMeterOptions mo;
  mo.sample_period_s = o.sample_period_s;
  auto m = std::make_unique<CounterMeter>(std::move(src), mo);
  st.usable = true;
  st.resolution_j = m->resolution_joules();
  for (EnergyDomain d : m->domains()) st.domains.push_back(energy_domain_name(d));
  return {st, std::move(m)};
}

BackendProbe probe_model(const ProbeOptions& o) {
  BackendStatus st;
  st.backend = "model";
  st.source = "model";
  const EnergyTable& t = find_energy_table(o.model_table);
  st.usable = true;
  st.reason = std::string("always available, estimated: operation counts x ") + t.name +
              " per-operation energies + DRAM bytes x " + std::to_string((int)t.dram_byte.pj) +
              " pJ/B (BitNet/Horowitz tables; no static power).";
  st.domains = {"model"};
  auto m = std::make_unique<ModelMeter>(t);
  st.resolution_j = m->resolution_joules();
  return {st, std::move(m)};
}

namespace {

struct BackendEntry {
  const char* name;
  BackendProbe (*probe)(const ProbeOptions&);
};
// The probe order of the issue: the cheapest, most portable counters first; the model last.
const BackendEntry kBackends[] = {{"powercap", probe_powercap},
                                  {"perf", probe_perf},
                                  {"msr", probe_msr},
                                  {"likwid", probe_likwid},
                                  {"model", probe_model}};

BackendProbe run_probe(const BackendEntry& b, const ProbeOptions& o) {
  try {
    return b.probe(o);
  } catch (const std::exception& e) {
    BackendStatus st;
    st.backend = b.name;
    st.reason = std::string("probe failed: ") + e.what();
    return {st, nullptr};
  }
}

}  // namespace

const std::vector<std::string>& energy_backend_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& b : kBackends) n.push_back(b.name);
    return n;
  }();
  return names;
}

ProbeOptions probe_options_from_env() {
  ProbeOptions o;
  if (const char* e = std::getenv("TRITUNE_ENERGY_BACKEND")) o.force = e;
  return o;
}

std::vector<BackendStatus> probe_backends(const ProbeOptions& o) {
  std::vector<BackendStatus> r;
  for (const auto& b : kBackends) r.push_back(run_probe(b, o).status);
  return r;
}

std::unique_ptr<EnergyMeter> make_best_meter(const ProbeOptions& o, ProbeOutcome* out) {
  if (!o.force.empty()) {
    bool known = false;
    for (const auto& b : kBackends) known |= o.force == b.name;
    if (!known) {
      std::string names;
      for (const auto& b : kBackends) names += (names.empty() ? "" : ", ") + std::string(b.name);
      throw Error("unknown energy backend '" + o.force + "' (known: " + names + ")");
    }
  }
  find_energy_table(o.model_table);  // a bad table name is an error even if a counter exists
  ProbeOutcome p;
  p.virtual_machine = probe_cpu(o).hypervisor;
  std::unique_ptr<EnergyMeter> chosen;
  for (const auto& b : kBackends) {
    BackendProbe bp = run_probe(b, o);
    const bool want = o.force.empty() ? !chosen : o.force == b.name;
    if (want && bp.status.usable) {
      chosen = std::move(bp.meter);
      p.selected = b.name;
    } else if (want && !o.force.empty()) {
      throw Error("energy backend '" + o.force + "' is not usable: " + bp.status.reason);
    }
    p.backends.push_back(bp.status);
  }
  bool any_counter = false;
  for (const auto& s : p.backends) any_counter |= s.usable && s.backend != "model";
  if (p.selected == "model") {
    p.summary = any_counter
                    ? "Using the model as asked (a counter is available); figures are estimates."
                    : std::string("No energy counter is usable on this machine") +
                          (p.virtual_machine ? " (a virtual machine)" : "") +
                          ": energy figures come from the per-operation model and are "
                          "labelled estimated.";
  } else {
    p.summary = "Measuring with " + p.selected + " (source " + chosen->source() +
                "); figures are measured, not estimated.";
  }
  if (out) *out = p;
  return chosen;
}

std::string probe_text(const ProbeOutcome& p) {
  std::string s = "energy backends, probed in order (the first usable one measures):\n";
  for (const auto& b : p.backends) {
    char head[96];
    std::snprintf(head, sizeof head, "  %-9s %-9s ", b.backend.c_str(),
                  b.usable ? "usable" : "unusable");
    s += head + b.reason;
    if (b.usable) {
      std::string d;
      for (const auto& x : b.domains) d += (d.empty() ? "" : ",") + x;
      char tail[160];
      std::snprintf(tail, sizeof tail, " [source %s, domains %s, resolution %.3g J]",
                    b.source.c_str(), d.c_str(), b.resolution_j);
      s += tail;
    }
    s += "\n";
  }
  s += "selected: " + p.selected + "\n" + p.summary + "\n";
  return s;
}

std::string probe_json(const ProbeOutcome& p) {
  std::string s = "{\"backends\": [";
  for (size_t i = 0; i < p.backends.size(); ++i) {
    const auto& b = p.backends[i];
    char res[48];
    std::snprintf(res, sizeof res, "%.6g", b.resolution_j);
    s += (i ? ", " : "") + std::string("{\"backend\": ") + json::quote(b.backend) +
         ", \"source\": " + json::quote(b.source) +
         ", \"usable\": " + (b.usable ? "true" : "false") +
         ", \"estimated\": " + (b.backend == "model" ? "true" : "false") +
         ", \"reason\": " + json::quote(b.reason) + ", \"domains\": [";
    for (size_t j = 0; j < b.domains.size(); ++j) s += (j ? ", " : "") + json::quote(b.domains[j]);
    s += std::string("], \"resolution_j\": ") + res + "}";
  }
  s += "], \"selected\": " + json::quote(p.selected) +
       ", \"virtual_machine\": " + (p.virtual_machine ? "true" : "false") +
       ", \"summary\": " + json::quote(p.summary) + "}\n";
  return s;
}

}  // namespace tritune
