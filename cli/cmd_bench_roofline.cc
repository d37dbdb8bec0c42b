// `tritune bench roofline`: the machine's streaming-read bandwidth and int8 dot-product peak,
// repeated over time. The other benchmarks measure the same figures in their own runs; this
// shows how much they drift on a shared machine, which is what a reader of any single ratio
// needs to know.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "kernels/error.h"
#include "kernels/roofline.h"
#include "kernels/stats.h"

namespace tritune::cli {
namespace {

int run_bench_roofline(const std::vector<std::string>& argv) {
  Args a("bench roofline",
         "Measure the roofline: streaming-read bandwidth (512-bit loads over a buffer far larger\n"
         "than the last-level cache) and the int8 dot-product peak, at each thread count, R\n"
         "rounds. Each round is the median of 5 repetitions; the spread across rounds is the\n"
         "machine's drift.");
  a.option("-t", "LIST", "thread counts, comma-separated", "1,2");
  a.option("-r", "N", "rounds", "5");
  a.option("--mib", "N", "bandwidth buffer size in MiB", "512");
  a.flag("--json", "print the results as one JSON object");
  if (!a.parse(argv)) return 0;
  const int rounds = (int)a.get_int("-r");
  const int64_t mib = a.get_int("--mib");
  if (rounds < 1 || rounds > 1000) throw Error("-r must be in 1..1000");
  if (mib < 1 || mib > (int64_t(1) << 20)) throw Error("--mib must be in 1..2^20");
  note_if_cached("--mib", mib << 20);
  std::vector<int> threads;
  for (int64_t t : a.get_int_list("-t")) threads.push_back(apply_threads(t));
  struct Row {
    int threads;
    std::vector<double> bw, peak;
  };
  std::vector<Row> rows;
  for (int t : threads) rows.push_back({t, {}, {}});
  for (int r = 0; r < rounds; ++r) {
    for (Row& row : rows) {
      row.bw.push_back(measure_stream_bandwidth(row.threads, mib << 20).value);
      row.peak.push_back(measure_int8_peak(row.threads).value);
      if (!a.has("--json")) {
        std::fprintf(stderr, "round %d/%d, %d thread(s): %.2f GB/s, %.1f GOP/s\n", r + 1, rounds,
                     row.threads, row.bw.back(), row.peak.back());
      }
    }
  }
  if (a.has("--json")) {
    std::printf("{\"rounds\": %d, \"mib\": %lld, \"rows\": [", rounds, (long long)mib);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& row = rows[i];
      std::printf("%s{\"threads\": %d, \"stream_gbs\": [", i ? ", " : "", row.threads);
      for (size_t j = 0; j < row.bw.size(); ++j) std::printf("%s%.3f", j ? ", " : "", row.bw[j]);
      std::printf("], \"int8_gops\": [");
      for (size_t j = 0; j < row.peak.size(); ++j)
        std::printf("%s%.2f", j ? ", " : "", row.peak[j]);
      std::printf("]}");
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("| threads | stream GB/s median | min | max | int8 GOP/s median | min | max |\n");
  std::printf("| ------- | ------------------ | --- | --- | ----------------- | --- | --- |\n");
  for (const Row& row : rows) {
    std::printf("| %7d | %18.2f | %.2f | %.2f | %17.1f | %.1f | %.1f |\n", row.threads,
                median_or(row.bw, 0), *std::min_element(row.bw.begin(), row.bw.end()),
                *std::max_element(row.bw.begin(), row.bw.end()), median_or(row.peak, 0),
                *std::min_element(row.peak.begin(), row.peak.end()),
                *std::max_element(row.peak.begin(), row.peak.end()));
  }
  return 0;
}

CommandRegistrar reg({"bench roofline",
                      "streaming-read bandwidth and int8 dot-product peak, repeated (drift)",
                      run_bench_roofline});

}  // namespace
}  // namespace tritune::cli
