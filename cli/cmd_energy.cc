// `tritune energy`: which energy backends work on this machine and why (--probe), idle power
// (--idle), and the model's per-operation energy tables with their sources (--tables).
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "energy/energy_model.h"
#include "energy/measure.h"
#include "energy/probe.h"
#include "kernels/error.h"
#include "kernels/json.h"

namespace tritune::cli {
namespace {

void print_tables(bool json) {
  const auto& ts = energy_tables();
  if (json) {
    std::printf("{\"tables\": [");
    for (size_t i = 0; i < ts.size(); ++i) {
      const EnergyTable& t = ts[i];
      const std::pair<const char*, const OpEnergy*> rows[] = {
          {"int8_add", &t.int8_add},  {"int8_mul", &t.int8_mul}, {"fp16_add", &t.fp16_add},
          {"fp16_mul", &t.fp16_mul},  {"fp32_add", &t.fp32_add}, {"fp32_mul", &t.fp32_mul},
          {"dram_byte", &t.dram_byte}};
      std::printf("%s{\"name\": \"%s\"", i ? ", " : "", t.name);
      for (const auto& r : rows) {
        std::printf(", \"%s\": {\"pj\": %g, \"source\": %s, \"checked\": %s}", r.first,
                    r.second->pj, json::quote(r.second->source).c_str(),
                    json::quote(r.second->checked).c_str());
      }
      std::printf("}");
    }
    std::printf("]}\n");
    return;
  }
  for (const EnergyTable& t : ts) {
    std::printf("%s: %s\n", t.name, t.doc);
    const std::pair<const char*, const OpEnergy*> rows[] = {
        {"INT8 add", &t.int8_add},  {"INT8 mul", &t.int8_mul}, {"FP16 add", &t.fp16_add},
        {"FP16 mul", &t.fp16_mul},  {"FP32 add", &t.fp32_add}, {"FP32 mul", &t.fp32_mul},
        {"DRAM/byte", &t.dram_byte}};
    for (const auto& r : rows) {
      std::printf("  %-9s %8.3f pJ  %s\n  %-9s %11s  checked: %s\n", r.first, r.second->pj,
                  r.second->source, "", "", r.second->checked);
    }
  }
}

int run_energy(const std::vector<std::string>& argv) {
  Args args("energy",
            "Probe the energy backends (powercap, perf, msr, likwid, model) and say which one\n"
            "measures here and why the others cannot; measure idle power; show the model's\n"
            "per-operation energy tables. Where no counter exists the model is used and its\n"
            "figures are labelled estimated.");
  args.flag("--probe", "list every backend with its status and reason (the default)");
  args.flag("--json", "print as JSON");
  args.option("--root", "DIR", "look up /sys, /proc and /dev under DIR (a fake tree)", "/");
  args.option("--backend", "NAME",
              "use this backend instead of the first usable one (default: "
              "$TRITUNE_ENERGY_BACKEND, which tune and bench e2e follow too)",
              "");
  args.option("--table", "NODE", "energy table of the model backend (7nm, 45nm)", "7nm");
  args.option("--idle", "SECONDS", "measure idle power over a window of SECONDS", "");
  args.flag("--tables", "print the model's per-operation energy tables and their sources");
  if (!args.parse(argv)) return 0;
  const bool json = args.has("--json");
  if (args.has("--table")) find_energy_table(args.get("--table"));  // a bad name is an error
  if (args.has("--root")) {
    struct stat st;
    if (stat(args.get("--root").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw Error("--root " + args.get("--root") + ": not a directory");
    }
  }
  if (args.has("--tables")) {
    print_tables(json);
    return 0;
  }
  ProbeOptions po = probe_options_from_env();
  po.root = args.get("--root");
  po.model_table = args.get("--table");
  if (args.has("--backend")) po.force = args.get("--backend");
  ProbeOutcome out;
  auto meter = make_best_meter(po, &out);
  if (args.has("--idle")) {
    const double w = args.get_double("--idle");
    const double watts = measure_idle_watts(*meter, w);
    if (json) {
      // The model has no static power term: no figure rather than 0 W.
      char value[32];
      std::snprintf(value, sizeof value, "%.6g", watts);
      std::printf(
          "{\"idle_watts\": %s, \"window_s\": %.6g, \"source\": \"%s\", "
          "\"estimated\": %s}\n",
          meter->estimated() ? "null" : value, w, meter->source().c_str(),
          meter->estimated() ? "true" : "false");
    } else if (meter->estimated()) {
      std::printf(
          "idle power: not measurable with the model (it has no static power term); "
          "%s\n",
          out.summary.c_str());
    } else {
      std::printf("idle power: %.3f W over %.3g s (%s)\n", watts, w, meter->source().c_str());
    }
    return 0;
  }
  std::fputs((json ? probe_json(out) : probe_text(out)).c_str(), stdout);
  return 0;
}

CommandRegistrar reg({"energy",
                      "energy backends: which one measures here and why (--probe), idle power, "
                      "model tables",
                      run_energy});

}  // namespace
}  // namespace tritune::cli
