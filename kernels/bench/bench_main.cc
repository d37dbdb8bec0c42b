// bench_kernels: the kernel benchmark binary. Google Benchmark flags apply
// (--benchmark_filter, --benchmark_out=FILE --benchmark_out_format=json, ...). Extra flags:
//   --quick            fewer shapes/tokens (smoke run)
//   --json=FILE        tritune's own JSON (provenance + one row per case)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/bench/kernel_bench.h"

int main(int argc, char** argv) {
  using namespace tritune;
  KernelBenchOptions opt;
  opt.shapes = bitnet_2b4t_shapes();
  std::string json;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      opt.tokens = {1, 128};
      opt.min_time = 0.05;
    } else if (std::strncmp(argv[i], "--json=", 7) == 0) {
      json = argv[i] + 7;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = (int)rest.size();
  benchmark::Initialize(&n, rest.data());
  const RooflineInfo roof = measure_roofline(opt.threads, true);
  benchmark::AddCustomContext("tritune", bench_provenance_json(roof));
  std::vector<KernelBenchRow> rows;
  register_kernel_benchmarks(opt, &rows);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fputs(rows_to_table(rows).c_str(), stdout);
  if (!json.empty()) {
    std::ofstream f(json);
    f << "{\"provenance\": " << bench_provenance_json(roof) << ",\n\"rows\": " << rows_to_json(rows)
      << "}\n";
  }
  return 0;
}
