// The kernel benchmark suite (Google Benchmark): each registered case times a candidate format's
// dispatched kernel and the f16 baseline alternately in every iteration (so drift cancels in
// their ratio), on weights rotated through buffers larger than the last-level cache (cold) or
// not (warm). Counters: weight GB/s, GOP/s, the f16 time and speedup, and the fractions of the
// roofline (streaming-read bandwidth and int8 dot-product peak) probed between the case's own
// iterations (its first 10 and every 16th after; medians), so the fractions hold the bandwidth
// the case itself saw. Used by the `bench_kernels` binary and by `tritune bench kernels`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tritune {

struct KernelBenchOptions {
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (N, K)
  std::vector<int64_t> tokens{1, 8, 32, 128, 512};
  std::vector<int> threads{1, 2};
  std::vector<std::string> formats{"i2_s"};  // candidates; f16 is always the baseline
  bool cold = true, warm = true;
  double min_time = 0.2;  // seconds per case
};

// The BitNet b1.58 2B4T linear shapes (N = outputs, K = inputs): q/o (2560x2560), k/v
// (640x2560), up/gate (6912x2560), down (2560x6912).
std::vector<std::pair<int64_t, int64_t>> bitnet_2b4t_shapes();

struct KernelBenchRow {
  std::string name, format, cache;
  int64_t n = 0, k = 0, tokens = 0;
  int threads = 0;
  std::string variant, baseline_variant;
  double us = 0, baseline_us = 0, speedup = 0;  // medians
  double weight_gbps = 0, gops = 0;
  double stream_gbps = 0, bw_frac = 0, peak_gops = 0, peak_frac = 0;
  int64_t samples = 0;
};

struct RooflineInfo {
  std::vector<int> threads;
  std::vector<double> stream_gbps, int8_peak_gops;
  std::string stream_method, peak_method;
};

// Measures the roofline for each thread count (prints progress to stderr when verbose).
RooflineInfo measure_roofline(const std::vector<int>& threads, bool verbose);
// Registers the cases; results land in `rows` (which must outlive the run). Each case also
// probes the roofline (stream read, int8 peak) interleaved with its iterations.
void register_kernel_benchmarks(const KernelBenchOptions& opt, std::vector<KernelBenchRow>* rows);
// Provenance of a run: commit, CPU, Halide target, threads. As a JSON object string.
std::string bench_provenance_json(const RooflineInfo& roof);
std::string rows_to_json(const std::vector<KernelBenchRow>& rows);
// A human table of the rows (markdown).
std::string rows_to_table(const std::vector<KernelBenchRow>& rows);

}  // namespace tritune
