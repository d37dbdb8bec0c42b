// `tritune info`: CPU fingerprint, ISA features, and the Halide target chosen and why.
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "kernels/cpu_features.h"
#include "kernels/json.h"
#include "kernels/thread_pool.h"
#include "kernels/variant.h"

namespace tritune::cli {
namespace {

int run_info(const std::vector<std::string>& argv) {
  Args args("info",
            "Show the CPU fingerprint, its ISA features, and the kernel ISA level and\n"
            "Halide target tritune uses on it (TRITUNE_ISA=<level> forces a lower one).");
  args.flag("--json", "print as JSON");
  if (!args.parse(argv)) return 0;
  const CpuInfo& c = cpu_info();
  const Isa isa = selected_isa();
  if (args.has("--json")) {
    std::printf(
        "{\"vendor\": %s, \"brand\": %s, \"family\": %d, \"model\": %d, "
        "\"stepping\": %d, \"logical_cpus\": %d, \"available_cpus\": %d, \"hypervisor\": %s, "
        "\"l1d_bytes\": %lld, \"l2_bytes\": %lld, \"l3_bytes\": %lld, \"flags\": [",
        json::quote(c.vendor).c_str(), json::quote(c.brand).c_str(), c.family, c.model, c.stepping, c.logical_cpus,
        available_cpus(), c.hypervisor ? "true" : "false", (long long)c.l1d_bytes,
        (long long)c.l2_bytes, (long long)c.l3_bytes);
    for (size_t i = 0; i < c.flags.size(); ++i) {
      std::printf("%s\"%s\"", i ? ", " : "", c.flags[i].c_str());
    }
    std::printf(
        "], \"isa\": \"%s\", \"halide_target\": \"%s\", \"reason\": %s, "
        "\"jit_module\": %s, \"jit_module_present\": %s}\n",
        isa_name(isa), isa_halide_target(isa), json::quote(selected_isa_reason()).c_str(),
        json::quote(jit_module_path()).c_str(), jit_module_present() ? "true" : "false");
    return 0;
  }
  std::printf("CPU          %s (%s family 0x%x model 0x%x stepping %d)%s\n", c.brand.c_str(),
              c.vendor.c_str(), c.family, c.model, c.stepping,
              c.hypervisor ? ", virtual machine" : "");
  std::printf("threads      %d logical CPUs", c.logical_cpus);
  if (available_cpus() != c.logical_cpus) {
    std::printf(", %d of them usable by this process (affinity mask; the default -t)",
                available_cpus());
  }
  std::printf("\n");
  std::printf("caches       L1d %lld KiB, L2 %lld KiB, L3 %lld KiB (per instance)\n",
              (long long)c.l1d_bytes / 1024, (long long)c.l2_bytes / 1024,
              (long long)c.l3_bytes / 1024);
  std::printf("ISA flags   ");
  for (const auto& f : c.flags) std::printf(" %s", f.c_str());
  std::printf("\nkernel ISA   %s\n", isa_name(isa));
  std::printf("Halide       %s\n", isa_halide_target(isa));
  std::printf("why          %s\n", selected_isa_reason().c_str());
  std::printf("levels       ");
  for (int i = 0; i < (int)Isa::kCount; ++i) {
    std::printf("%s%s=%s", i ? ", " : "", isa_name((Isa)i), cpu_supports((Isa)i) ? "yes" : "no");
  }
  std::printf("\n");
  std::printf("JIT          %s (%s)\n", jit_module_path().c_str(),
              jit_module_present()
                  ? "compiles search-space points not built ahead of time"
                  : "missing: only the ahead-of-time variants run; set TRITUNE_JIT_MODULE");
  return 0;
}

CommandRegistrar reg({"info", "CPU fingerprint, ISA features, the Halide target chosen and why",
                      run_info});

}  // namespace
}  // namespace tritune::cli
