// `tritune bench variants`: an A/B of named kernel variants on one problem. Each candidate is
// measured interleaved (ABBA) with the default variant of this CPU in the same run, so the
// speedups are same-run ratios of medians that survive a noisy neighbour; the streaming-read
// bandwidth is probed between candidates so the "% of stream" figures come from the same run
// too. This is the tool for "is schedule X faster than Y here", before and after a generator
// change (run both builds with TRITUNE_CACHE_DIR pointing at different directories).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "generators/space.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/json.h"
#include "kernels/op_counts.h"
#include "kernels/roofline.h"
#include "kernels/stats.h"
#include "kernels/variant.h"
#include "tuner/harness.h"
#include "tuner/record.h"
#include "tuner/shapes.h"

namespace tritune::cli {
namespace {

// "i2s_gemv_r1_..._dshift" gets this CPU's ISA suffix; a name with a suffix is kept.
std::string with_isa(const std::string& name) {
  if (name.find("__") != std::string::npos) return name;
  return name + "__" + isa_name(selected_isa());
}

int run_bench_variants(const std::vector<std::string>& argv) {
  Args a("bench variants",
         "A/B of kernel variants on one problem: every variant is timed interleaved (ABBA)\n"
         "with this CPU's default variant in the same run; prints medians, the paired\n"
         "speedup over the default and the weight bandwidth as a fraction of the streaming-\n"
         "read bandwidth (the median of probes run before every variant). Names without\n"
         "'__<isa>' get this CPU's ISA; JIT-compiled points are cached like the tuner's.");
  a.option("--variants", "LIST", "variant names, comma-separated (see `tritune tune --show`)");
  a.option("--format", "F", "weight format", "i2_s");
  a.option("--shape", "NxK", "problem shape (N outputs x K inputs)", "2560x6912");
  a.option("--tokens", "T", "tokens (1 = GEMV)", "1");
  a.option("-t", "N", "threads", "2");
  a.option("--cache", "MODE", "cold or warm", "cold");
  a.option("--reps", "N", "interleaved samples per variant", "21");
  a.option("--rounds", "N", "measure the whole list this many times, round-robin", "1");
  a.option("--min-sample-ms", "MS", "a timing sample loops calls for at least this long", "2");
  a.option("--stream-mib", "N", "stream-probe buffer size in MiB", "512");
  a.option("--cold-mib", "N",
           "cold mode: rotate through weight copies of at least N MiB (0: twice the last-level "
           "cache; a model-sized rotation shows the cost of a large working set)",
           "0");
  a.option("--json", "FILE", "write every sample as JSON");
  if (!a.parse(argv)) return 0;
  if (a.has("--json")) check_output_file("--json", a.get("--json"));
  if (!a.has("--variants")) throw Error("--variants is required");
  const auto shapes = parse_shapes(a.get("--shape"));
  if (shapes.size() != 1) throw Error("--shape takes one NxK shape");
  const int64_t tokens = a.get_int("--tokens");
  if (tokens < 1 || tokens > 4096) throw Error("--tokens must be in 1..4096");
  const int threads = apply_threads(a.get_int("-t"));
  const std::string cache = a.get("--cache");
  if (cache != "cold" && cache != "warm") throw Error("--cache is cold or warm");
  const int rounds = (int)a.get_int("--rounds");
  if (rounds < 1 || rounds > 100) throw Error("--rounds must be in 1..100");
  const int64_t stream_mib = a.get_int("--stream-mib");
  if (stream_mib < 1 || stream_mib > 65536) {
    throw Error("--stream-mib must be in 1..65536");
  }

  const SearchSpace& space = space_for(a.get("--format"), tokens);
  require_shape_fits(shapes[0].first, shapes[0].second, {space.format}, 2);
  const std::string base = baseline_variant(space, selected_isa());
  const TaskKey key{space.format,     space.family, space.op, shapes[0].first,
                    shapes[0].second, tokens,       threads,  cache};
  std::vector<std::string> names;
  for (const std::string& v : a.get_list("--variants")) names.push_back(with_isa(v));
  for (const std::string& v : names) {
    const VariantName p = parse_variant_name(v);
    if (p.family != space.family || p.op != space.op) {
      throw Error(v + " is not a " + space.family + " " + space.op + " variant (the task is " +
                  key.str() + ")");
    }
  }
  const int64_t cold_mib = a.get_int("--cold-mib");
  if (cold_mib < 0 || cold_mib > 16384) throw Error("--cold-mib must be in 0..16384");
  if (cache == "cold") note_if_cached("--cold-mib", cold_mib << 20);
  note_if_cached("--stream-mib", stream_mib << 20);
  HarnessOptions ho;
  if (cold_mib > 0) {
    ho.llc_bytes = (cold_mib << 20) / 2;
    ho.max_cold_bytes = std::max<int64_t>(ho.max_cold_bytes, (cold_mib << 20) * 2);
  }
  ho.reps = (int)a.get_int("--reps");
  ho.min_sample_s = a.get_double("--min-sample-ms") * 1e-3;
  ho.isolate = false;
  KernelHarness harness(ho);
  const double wbytes =
      op_counts(find_format(key.format).id, key.n, key.k, key.tokens).bytes_weights;

  std::printf("task %s, default %s\n", key.str().c_str(), base.c_str());
  std::printf("%-58s %5s %10s %10s %8s %8s\n", "variant", "round", "default", "variant", "speedup",
              "GB/s");
  struct Row {
    std::string variant;
    int round;
    Measurement m;
  };
  // The stream bandwidth is probed before every variant (--stream-mib, median of 5); the "% stream"
  // column divides by the median of all probes of the run, printed at the end with its spread.
  std::vector<Row> rows;
  std::vector<double> probes;
  for (int r = 0; r < rounds; ++r) {
    for (const std::string& v : names) {
      probes.push_back(measure_stream_bandwidth(threads, stream_mib << 20).value);
      Measurement m = harness.measure(key, v);
      if (m.status != status::kOk) {
        std::printf("%-58s %5d %s: %s\n", v.c_str(), r + 1, m.status.c_str(), m.reason.c_str());
      } else {
        const double t = median(m.time_s), tb = median(m.baseline_time_s);
        std::printf("%-58s %5d %8.1fus %8.1fus %7.3fx %8.2f\n", v.c_str(), r + 1, tb * 1e6, t * 1e6,
                    1.0 / paired_ratio(m.time_s, m.baseline_time_s), wbytes / t / 1e9);
      }
      std::fflush(stdout);
      rows.push_back({v, r + 1, std::move(m)});
    }
  }
  const double stream = median(probes);
  std::printf("\nstream read, %d thread(s): median %.2f GB/s over %zu probes (%.2f..%.2f)\n",
              threads, stream, probes.size(), *std::min_element(probes.begin(), probes.end()),
              *std::max_element(probes.begin(), probes.end()));
  std::printf("%-58s %10s %8s %8s\n", "variant (all rounds)", "median", "GB/s", "%stream");
  for (const std::string& v : names) {
    std::vector<double> ts;
    for (const Row& row : rows) {
      if (row.variant == v && row.m.status == status::kOk) {
        ts.insert(ts.end(), row.m.time_s.begin(), row.m.time_s.end());
      }
    }
    if (ts.empty()) continue;
    const double gbs = wbytes / median(ts) / 1e9;
    std::printf("%-58s %8.1fus %8.2f %7.1f%%\n", v.c_str(), median(ts) * 1e6, gbs,
                100.0 * gbs / stream);
  }
  if (a.has("--json")) {
    json::Value out = json::Value::object();
    out.set("task", key.str());
    out.set("cpu", cpu_info().brand);
    out.set("baseline", base);
    out.set("weight_bytes", wbytes);
    out.set("threads", threads);
    out.set("stream_GBps_probes", json_numbers(probes));
    json::Value arr = json::Value::array();
    for (const Row& row : rows) {
      json::Value j = json::Value::object();
      j.set("variant", row.variant);
      j.set("round", row.round);
      j.set("status", row.m.status);
      j.set("reason", row.m.reason);
      j.set("time_s", json_numbers(row.m.time_s));
      j.set("baseline_time_s", json_numbers(row.m.baseline_time_s));
      arr.push_back(j);
    }
    out.set("rows", arr);
    write_json_file("--json", a.get("--json"), out);
  }
  int failed = 0;
  for (const Row& row : rows) failed += row.m.status != status::kOk;
  if (failed) {
    std::fprintf(stderr, "bench variants: %d measurement(s) failed (see above)\n", failed);
    return 1;
  }
  return 0;
}

CommandRegistrar reg({"bench variants",
                      "A/B of named kernel variants against the default, interleaved in one run",
                      run_bench_variants});

}  // namespace
}  // namespace tritune::cli
