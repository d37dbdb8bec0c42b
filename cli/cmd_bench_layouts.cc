// `tritune bench layouts`: a paired comparison of I2_S kernel layouts (K split into parts,
// kernels/i2s.h), optionally with other variants, in one process. `bench variants` compares
// schedules on one layout; a layout change alters the weights themselves, so each config here
// gets its own copies of the same ternary matrix, enough of them to rotate through a model-sized
// working set, and the configs are timed in alternating order (ABC CBA ...). Speedups are the
// median of per-round ratios to the first config. Every config's result must equal the first
// one's, bit for bit (the layouts hold the same weights).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/i2s.h"
#include "kernels/json.h"
#include "kernels/quantize.h"
#include "kernels/roofline.h"
#include "kernels/stats.h"
#include "kernels/thread_pool.h"
#include "kernels/variant.h"
#include "tuner/record.h"
#include "tuner/shapes.h"

namespace tritune::cli {
namespace {

struct Config {
  std::string label;  // as given
  const Variant* variant = nullptr;
  int64_t parts = 0;
  PoolSchedule schedule = PoolSchedule::kRanges;
  std::vector<I2SKernelWeights> copies;
  std::vector<double> time_s;  // one sample per round: mean time per call over all copies
};

// "2" (the default variant on 2 parts) or "VARIANT@2", optionally followed by ":guided" or
// ":ranges" (the pool's schedule, kernels/thread_pool.h; default: the process's).
Config parse_config(std::string item, const std::string& op, int64_t k16) {
  Config c;
  c.label = item;
  c.schedule = pool_schedule();
  const auto colon = item.find(':');
  if (colon != std::string::npos) {
    if (!parse_pool_schedule(item.substr(colon + 1), &c.schedule)) {
      throw Error("'" + c.label + "': the schedule after ':' is guided or ranges");
    }
    item = item.substr(0, colon);
  }
  const auto at = item.find('@');
  const std::string parts = at == std::string::npos ? item : item.substr(at + 1);
  char* end = nullptr;
  c.parts = std::strtoll(parts.c_str(), &end, 10);
  if (parts.empty() || *end != '\0' || c.parts < 1 || k16 % c.parts != 0) {
    throw Error("'" + item + "': parts must be a number >= 1 that divides the " +
                std::to_string(k16) + " column tiles of K");
  }
  std::string name = at == std::string::npos ? default_variant("i2s", op, selected_isa()).name
                                             : item.substr(0, at);
  if (name.find("__") == std::string::npos) name += "__" + std::string(isa_name(selected_isa()));
  c.variant = &get_variant(name);
  if (c.variant->spec.family != "i2s" || c.variant->spec.op != op) {
    throw Error(name + " is not an i2s " + op + " variant");
  }
  return c;
}

int run_bench_layouts(const std::vector<std::string>& argv) {
  Args a("bench layouts",
         "Paired comparison of I2_S kernel layouts (K in parts, kernels/i2s.h) and variants in\n"
         "one process: each config streams its own copies of the same weights (cold: a\n"
         "rotation of --cold-mib MiB), configs alternate every round, and the speedup is the\n"
         "median of per-round ratios to the first config (with its quartiles). Results must\n"
         "be bit-identical across configs.");
  a.option("--configs", "LIST",
           "comma-separated configs: PARTS (this CPU's default variant) or VARIANT@PARTS, either "
           "optionally followed by :guided or :ranges (the thread pool's schedule)",
           "1,2,4");
  a.option("--shape", "NxK", "problem shape (N outputs x K inputs)", "13824x2560");
  a.option("--tokens", "T", "tokens (1 = GEMV)", "1");
  a.option("-t", "N", "threads", "2");
  a.option("--cold-mib", "N", "size of each config's rotation of weight copies in MiB (0: one copy, warm)", "800");
  a.option("--rounds", "N", "rounds, 2..10000 (each times every config once)", "40");
  a.option("--json", "FILE", "write every sample as JSON");
  if (!a.parse(argv)) return 0;
  if (a.has("--json")) check_output_file("--json", a.get("--json"));
  const auto shapes = parse_shapes(a.get("--shape"));
  if (shapes.size() != 1) throw Error("--shape takes one NxK shape");
  const int64_t n = shapes[0].first, k = shapes[0].second, tokens = a.get_int("--tokens");
  if (tokens < 1 || tokens > 4096) throw Error("--tokens must be in 1..4096");
  const int threads = apply_threads(a.get_int("-t"));
  const int64_t mib = a.get_int("--cold-mib"), rounds = a.get_int("--rounds");
  if (mib < 0 || mib > 16384) throw Error("--cold-mib must be in 0..16384");
  note_if_cached("--cold-mib", mib << 20);
  if (rounds < 2 || rounds > 10000) throw Error("--rounds must be in 2..10000");
  const std::string op = tokens > 1 ? "gemm" : "gemv";
  const int64_t k16 = (k + 15) / 16;

  std::vector<Config> cfgs;
  for (const std::string& item : a.get_list("--configs"))
    cfgs.push_back(parse_config(item, op, k16));
  if (cfgs.empty()) throw Error("--configs is empty");
  const int64_t wbytes = n * k16 * 16 / 4;
  const int64_t ncopies = std::max<int64_t>(1, (mib << 20) / std::max<int64_t>(1, wbytes));
  require_shape_fits(n, k, {"i2_s"}, (int64_t)cfgs.size() * ncopies);  // every config's copies
  std::mt19937 rng(7);
  std::vector<int8_t> t((size_t)(n * k));
  for (auto& v : t) v = (int8_t)((int)(rng() % 3) - 1);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x((size_t)(tokens * k));
  for (auto& v : x) v = gauss(rng);
  const QuantizedActs acts = quantize_acts(x.data(), tokens, k, k, 16);
  std::printf("i2_s %s %lldx%lld, %lld token(s), %d thread(s): %lld cop%s of %.1f MB per config\n",
              op.c_str(), (long long)n, (long long)k, (long long)tokens, threads,
              (long long)ncopies, ncopies == 1 ? "y" : "ies", (double)wbytes / 1e6);
  std::fflush(stdout);
  for (Config& c : cfgs) {
    for (int64_t i = 0; i < ncopies; ++i)
      c.copies.push_back(i2s_tile_ternary(t.data(), n, k, 1.0f, c.parts));
  }

  // Every config must compute the same integers.
  const int64_t ld = (n + 15) / 16 * 16;
  std::vector<int32_t> want((size_t)(ld * tokens)), got(want.size());
  run_i2s(*cfgs[0].variant, cfgs[0].copies[0], acts, want.data(), ld);
  for (const Config& c : cfgs) {
    run_i2s(*c.variant, c.copies[0], acts, got.data(), ld);
    for (int64_t tok = 0; tok < tokens; ++tok) {
      if (!std::equal(got.begin() + tok * ld, got.begin() + tok * ld + n,
                      want.begin() + tok * ld)) {
        throw Error(c.label + " computes other results than " + cfgs[0].label);
      }
    }
  }

  const PoolSchedule schedule0 = pool_schedule();
  std::vector<double> probes = {probe_stream_read(256 << 20, threads)};
  int64_t shift = 0;
  for (int64_t r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < cfgs.size(); ++i) {
      Config& c = cfgs[r % 2 ? cfgs.size() - 1 - i : i];
      set_pool_schedule(c.schedule);
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t j = 0; j < ncopies; ++j) {
        run_i2s(*c.variant, c.copies[(size_t)((j + shift) % ncopies)], acts, got.data(), ld);
      }
      c.time_s.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / ncopies);
    }
    shift += 3;
  }
  set_pool_schedule(schedule0);
  probes.push_back(probe_stream_read(256 << 20, threads));
  const double stream = median_or(probes, 0);

  std::printf("%-71s %10s %8s %8s %18s\n", "config", "median", "GB/s", "%stream", "vs first (IQR)");
  for (const Config& c : cfgs) {
    std::vector<double> ratio;
    for (size_t i = 0; i < c.time_s.size(); ++i) ratio.push_back(cfgs[0].time_s[i] / c.time_s[i]);
    const double med = median_or(c.time_s, 0), gbs = (double)wbytes / med / 1e9;
    std::printf(
        "%-71s %8.1fus %8.2f %7.1f%% %7.3fx (%.3f..%.3f)\n",
        (c.variant->name + " @" + std::to_string(c.parts) + " " + pool_schedule_name(c.schedule))
            .c_str(),
        med * 1e6, gbs, 100.0 * gbs / stream, median_or(ratio, 0), quantile_or(ratio, 0.25, 0),
        quantile_or(ratio, 0.75, 0));
  }
  std::printf("stream read (4 streams per thread), %d thread(s): %.2f GB/s before, %.2f after\n",
              threads, probes[0], probes[1]);
  if (a.has("--json")) {
    json::Value out = json::Value::object();
    out.set("op", op);
    out.set("n", n);
    out.set("k", k);
    out.set("tokens", tokens);
    out.set("threads", threads);
    out.set("copies", ncopies);
    out.set("weight_bytes", wbytes);
    out.set("stream_GBps_probes", json_numbers(probes));
    json::Value arr = json::Value::array();
    for (const Config& c : cfgs) {
      json::Value j = json::Value::object();
      j.set("variant", c.variant->name);
      j.set("parts", c.parts);
      j.set("schedule", pool_schedule_name(c.schedule));
      j.set("time_s", json_numbers(c.time_s));
      arr.push_back(j);
    }
    out.set("configs", arr);
    write_json_file("--json", a.get("--json"), out);
  }
  return 0;
}

CommandRegistrar reg({"bench layouts",
                      "paired A/B of I2_S kernel layouts (K in parts) and variants in one process",
                      run_bench_layouts});

}  // namespace
}  // namespace tritune::cli
