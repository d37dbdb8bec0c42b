// `tritune bench kernels`: the kernel benchmark suite (kernels/bench) with a table on screen
// and --json for machines.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "kernels/bench/kernel_bench.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/formats.h"
#include "tuner/shapes.h"

namespace tritune::cli {
namespace {

// NxK shapes (tuner/shapes.h checks them) or the keyword 2b4t, comma-separated.
std::vector<std::pair<int64_t, int64_t>> kernel_bench_shapes(
    const std::vector<std::string>& items) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& s : items) {
    if (s == "2b4t") {
      for (auto p : bitnet_2b4t_shapes()) out.push_back(p);
      continue;
    }
    for (auto p : parse_shapes(s)) out.push_back(p);
  }
  if (out.empty()) throw Error("--shapes: no shapes given");
  return out;
}

int run_bench_kernels(const std::vector<std::string>& argv) {
  Args args("bench kernels",
            "Benchmark the dispatched kernel of each format against the f16 baseline, measured\n"
            "alternately in every iteration, on weights rotated through buffers larger than the\n"
            "last-level cache (cold) or not (warm). Reports medians, weight GB/s, GOP/s, the\n"
            "speedup over f16, and the fractions of the streaming-read bandwidth and int8\n"
            "dot-product peak probed between the case's own iterations (a reference roofline\n"
            "is printed at the start).\n"
            "Shapes are N x K (N outputs, K inputs).");
  args.option("--shapes", "LIST", "NxK shapes or the 2b4t set", "2b4t")
      .option("--tokens", "LIST", "token counts", "1,8,32,128,512")
      .option("--threads", "LIST", "thread counts", "1,2")
      .option("--formats", "LIST", "candidate formats (f16 is the baseline)", "i2_s")
      .option("--cache", "MODE", "cold, warm or both", "both")
      .option("--min-time", "SEC", "minimum time per case", "0.2")
      .option("--filter", "REGEX", "only cases whose name matches (Google Benchmark filter)")
      .option("--json", "FILE", "write provenance + rows as JSON")
      .option("--table", "FILE", "also write the markdown table to FILE")
      .flag("--quick", "smoke run: tokens 1,128 and 0.05 s per case");
  if (!args.parse(argv)) return 0;
  KernelBenchOptions opt;
  opt.shapes = kernel_bench_shapes(args.get_list("--shapes"));
  opt.tokens = args.get_int_list("--tokens");
  opt.threads.clear();
  for (int64_t t : args.get_int_list("--threads")) {
    if (t < 1 || t > 1024)
      throw Error("--threads: " + std::to_string(t) + " is not a thread count");
    opt.threads.push_back((int)t);
  }
  opt.formats = args.get_list("--formats");
  for (const auto& f : opt.formats) find_format(f);  // validates
  // A case holds the f16 baseline and the candidate at once, cold ones at least 2 copies each.
  for (const auto& nk : opt.shapes) {
    for (const auto& f : opt.formats) require_shape_fits(nk.first, nk.second, {"f16", f}, 2);
  }
  const std::string cache = args.get("--cache");
  if (cache != "both" && cache != "cold" && cache != "warm") {
    throw Error("--cache must be cold, warm or both, not '" + cache + "'");
  }
  opt.cold = cache != "warm";
  opt.warm = cache != "cold";
  opt.min_time = args.get_double("--min-time");
  if (!(opt.min_time > 0) || opt.min_time > 3600) {
    throw Error("--min-time " + args.get("--min-time") + ": must be in (0, 3600] seconds");
  }
  if (args.has("--quick")) {
    if (!args.has("--tokens")) opt.tokens = {1, 128};
    opt.min_time = 0.05;
  }
  for (int64_t t : opt.tokens) {
    if (t < 1 || t > 4096) throw Error("--tokens: " + std::to_string(t) + " outside 1..4096");
  }

  for (const char* o : {"--table", "--json"}) {
    if (args.has(o)) check_output_file(o, args.get(o));
  }
  std::printf("tritune bench kernels: ISA %s, Halide target %s\n", isa_name(selected_isa()),
              isa_halide_target(selected_isa()));
  const RooflineInfo roof = measure_roofline(opt.threads, true);
  std::vector<std::string> gb_args = {"tritune", "--benchmark_counters_tabular=true"};
  if (args.has("--filter")) gb_args.push_back("--benchmark_filter=" + args.get("--filter"));
  std::vector<char*> gb_argv;
  for (auto& s : gb_args) gb_argv.push_back(s.data());
  int gb_argc = (int)gb_argv.size();
  benchmark::Initialize(&gb_argc, gb_argv.data());
  benchmark::AddCustomContext("tritune", bench_provenance_json(roof));
  std::vector<KernelBenchRow> rows;
  register_kernel_benchmarks(opt, &rows);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::ClearRegisteredBenchmarks();
  const std::string table = rows_to_table(rows);
  std::printf("\nRoofline (same run): ");
  for (size_t i = 0; i < roof.threads.size(); ++i) {
    std::printf("%s%d thread(s): stream read %.1f GB/s, int8 peak %.0f GOP/s", i ? "; " : "",
                roof.threads[i], roof.stream_gbps[i], roof.int8_peak_gops[i]);
  }
  std::printf("\n\n%s", table.c_str());
  if (args.has("--table")) write_text_file("--table", args.get("--table"), table);
  if (args.has("--json")) {
    write_text_file("--json", args.get("--json"),
                    "{\"provenance\": " + bench_provenance_json(roof) +
                        ",\n\"rows\": " + rows_to_json(rows) + "}\n");
    std::printf("\nwrote %s\n", args.get("--json").c_str());
  }
  return rows.empty() ? 1 : 0;
}

CommandRegistrar reg({"bench kernels",
                      "kernel benchmarks vs the f16 baseline with the measured roofline",
                      run_bench_kernels});

}  // namespace
}  // namespace tritune::cli
