#include "kernels/bench/kernel_bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>

#include "kernels/cache_dir.h"
#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/formats.h"
#include "kernels/i2s.h"
#include "kernels/roofline.h"
#include "kernels/stats.h"
#include "kernels/variant.h"

namespace tritune {

namespace {

using Clock = std::chrono::steady_clock;

// How many copies of `bytes` rotate through to defeat the last-level cache (cold) or 1 (warm).
int copies_for(int64_t bytes, bool cold) {
  if (!cold) return 1;
  const int64_t llc = std::max<int64_t>(cpu_info().l3_bytes, 8 << 20);
  return (int)std::max<int64_t>(2, (3 * llc + bytes - 1) / bytes);
}

// One operand set of a format: `copies` weight buffers, its activations, an output.
struct Operand {
  Format format;
  std::vector<I2SKernelWeights> i2s;
  std::vector<PackedWeights> fp;
  QuantizedActs qa;
  std::vector<float> x;
  std::vector<int32_t> raw;
  std::vector<float> y;
  const Variant* variant = nullptr;
  int64_t weight_bytes = 0;

  void run(int copy) {
    if (format == Format::kI2S) {
      const I2SKernelWeights& w = i2s[(size_t)copy];
      run_i2s(*variant, w, qa, raw.data(), w.n_pad());
    } else {
      const PackedWeights& w = fp[(size_t)copy];
      run_fp(*variant, w, x.data(), qa.tokens, y.data(), w.n);
    }
  }
};

std::unique_ptr<Operand> make_operand(Format f, int64_t n, int64_t k, int64_t T, bool cold,
                                      uint32_t seed) {
  auto op = std::make_unique<Operand>();
  op->format = f;
  std::mt19937 rng(seed);
  std::vector<float> x((size_t)(T * k));
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : x) v = nd(rng);
  op->x = x;
  if (f == Format::kI2S) {
    std::vector<int8_t> t((size_t)(n * k));
    std::uniform_int_distribution<int> u(-1, 1);
    for (auto& v : t) v = (int8_t)u(rng);
    I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 0.01f);
    op->weight_bytes = (int64_t)w.tiles.size();
    const int c = copies_for(op->weight_bytes, cold);
    for (int i = 0; i < c; ++i) op->i2s.push_back(w);
    op->qa = quantize_acts(x.data(), T, k, k, 16);
    op->raw.resize((size_t)(T * w.n_pad()));
    op->variant = &get_variant(lookup_variant("i2s", n, k, T, num_threads()));
  } else {
    std::vector<float> w((size_t)(n * k));
    for (auto& v : w) v = nd(rng) * 0.02f;
    PackedWeights p = format_traits(f).pack(w.data(), n, k);
    op->weight_bytes = (int64_t)p.data.size();
    const int c = copies_for(op->weight_bytes, cold);
    for (int i = 0; i < c; ++i) op->fp.push_back(p);
    op->qa.tokens = T;
    op->y.resize((size_t)(T * n));
    op->variant = &get_variant(lookup_variant(format_traits(f).name, n, k, T, num_threads()));
  }
  return op;
}

std::string shape_label(int64_t n, int64_t k) {
  return std::to_string(n) + "x" + std::to_string(k);
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> bitnet_2b4t_shapes() {
  return {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}};
}

RooflineInfo measure_roofline(const std::vector<int>& threads, bool verbose) {
  RooflineInfo r;
  for (int t : threads) {
    if (verbose) std::fprintf(stderr, "[roofline] measuring %d thread(s)...\n", t);
    const RooflineSample s = measure_stream_bandwidth(t);
    const RooflineSample p = measure_int8_peak(t);
    r.threads.push_back(t);
    r.stream_gbps.push_back(s.value);
    r.int8_peak_gops.push_back(p.value);
    r.stream_method = s.method;
    r.peak_method = p.method;
    if (verbose) {
      std::fprintf(stderr, "[roofline] %d thread(s): stream read %.1f GB/s, int8 peak %.0f GOP/s\n",
                   t, s.value, p.value);
    }
  }
  return r;
}

void register_kernel_benchmarks(const KernelBenchOptions& opt, std::vector<KernelBenchRow>* rows) {
  for (const std::string& fname : opt.formats) {
    const Format f = find_format(fname).id;
    for (const auto& shape : opt.shapes) {
      // Plain locals: the lambdas below capture them (C++17 cannot capture structured bindings).
      const int64_t n = shape.first, k = shape.second;
      for (int64_t T : opt.tokens) {
        for (int threads : opt.threads) {
          for (int mode = 0; mode < 2; ++mode) {
            const bool cold = mode == 0;
            if ((cold && !opt.cold) || (!cold && !opt.warm)) continue;
            const std::string name = fname + "/" + shape_label(n, k) + "/T" + std::to_string(T) +
                                     "/threads:" + std::to_string(threads) +
                                     (cold ? "/cold" : "/warm");
            // Google Benchmark calls a case several times while it sizes the iteration count:
            // operands are built once per case (the previous case's are freed: cold buffers are
            // large) and the last call's row stays.
            auto fn = [=](benchmark::State& state) {
              static std::string current;
              static std::unique_ptr<Operand> cand_op, base_op;
              set_num_threads(threads);
              if (current != name) {
                cand_op.reset();
                base_op.reset();
                cand_op = make_operand(f, n, k, T, cold, 1);
                base_op = make_operand(Format::kF16, n, k, T, cold, 2);
                current = name;
              }
              Operand* cand = cand_op.get();
              Operand* base = base_op.get();
              const int cc = (int)std::max(cand->i2s.size(), cand->fp.size());
              const int bc = (int)base->fp.size();
              // Warm-up: one call each (first-touch, thread pool start).
              cand->run(0);
              base->run(0);
              // Roofline probes ride in the same loop (every iteration at first, then every
              // 16th): a cold 64 MiB stream read and the int8 dot-product loop on the same
              // thread pool, so the kernel's fractions of the roofline are same-run ratios.
              std::vector<double> ct, bt, stream, peak;
              int64_t it = 0;
              for (auto _ : state) {
                const auto t0 = Clock::now();
                cand->run((int)(it % cc));
                const auto t1 = Clock::now();
                base->run((int)(it % bc));
                const auto t2 = Clock::now();
                const double c = std::chrono::duration<double>(t1 - t0).count();
                ct.push_back(c);
                bt.push_back(std::chrono::duration<double>(t2 - t1).count());
                state.SetIterationTime(c);
                if (it < 10 || it % 16 == 0) {
                  stream.push_back(probe_stream_read(int64_t(64) << 20, threads));
                  peak.push_back(probe_int8_peak(2e9 * threads, threads));
                }
                ++it;
              }
              KernelBenchRow r;
              r.name = name;
              r.format = fname;
              r.cache = cold ? "cold" : "warm";
              r.n = n;
              r.k = k;
              r.tokens = T;
              r.threads = threads;
              r.variant = cand->variant->name;
              r.baseline_variant = base->variant->name;
              r.us = median_or(ct, 0) * 1e6;
              r.baseline_us = median_or(bt, 0) * 1e6;
              r.speedup = r.baseline_us / r.us;
              r.weight_gbps = (double)cand->weight_bytes / (r.us * 1e-6) / 1e9;
              r.gops = 2.0 * (double)n * (double)k * (double)T / (r.us * 1e-6) / 1e9;
              r.samples = (int64_t)ct.size();
              r.stream_gbps = median_or(stream, 0);
              r.peak_gops = median_or(peak, 0);
              r.bw_frac = r.stream_gbps > 0 ? r.weight_gbps / r.stream_gbps : 0;
              r.peak_frac = r.peak_gops > 0 ? r.gops / r.peak_gops : 0;
              state.counters["weight_GBps"] = r.weight_gbps;
              state.counters["GOPS"] = r.gops;
              state.counters["f16_us"] = r.baseline_us;
              state.counters["speedup_vs_f16"] = r.speedup;
              state.counters["bw_frac"] = r.bw_frac;
              state.counters["peak_frac"] = r.peak_frac;
              state.SetLabel(r.variant);
              auto same = std::find_if(rows->begin(), rows->end(),
                                       [&](const KernelBenchRow& o) { return o.name == r.name; });
              if (same != rows->end()) {
                *same = r;
              } else {
                rows->push_back(r);
              }
            };
            benchmark::RegisterBenchmark(name.c_str(), fn)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond)
                ->MinTime(opt.min_time);
          }
        }
      }
    }
  }
}

std::string bench_provenance_json(const RooflineInfo& roof) {
  const CpuInfo& c = cpu_info();
  std::ostringstream os;
  std::string commit = "unknown";
  {
    const std::string cmd =
        std::string("git -C '") + TRITUNE_SOURCE_DIR + "' rev-parse --short HEAD 2>/dev/null";
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[64] = {0};
      if (std::fgets(buf, sizeof buf, p)) {
        commit = buf;
        while (!commit.empty() && (commit.back() == '\n' || commit.back() == ' ')) {
          commit.pop_back();
        }
      }
      pclose(p);
    }
  }
  os << "{\"commit\": \"" << commit << "\", \"cpu\": \"" << c.brand << "\", \"vendor\": \""
     << c.vendor << "\", \"family\": " << c.family << ", \"model\": " << c.model
     << ", \"logical_cpus\": " << c.logical_cpus << ", \"isa\": \"" << isa_name(selected_isa())
     << "\", \"halide_target\": \"" << isa_halide_target(selected_isa())
     << "\", \"halide_version\": \"" << halide_version_string() << "\", \"kernel_source_hash\": \""
     << kernel_source_hash() << "\", \"roofline\": [";
  for (size_t i = 0; i < roof.threads.size(); ++i) {
    os << (i ? ", " : "") << "{\"threads\": " << roof.threads[i]
       << ", \"stream_read_GBps\": " << roof.stream_gbps[i]
       << ", \"int8_peak_GOPS\": " << roof.int8_peak_gops[i] << "}";
  }
  os << "], \"stream_method\": \"" << roof.stream_method << "\", \"peak_method\": \""
     << roof.peak_method << "\"}";
  return os.str();
}

std::string rows_to_json(const std::vector<KernelBenchRow>& rows) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const KernelBenchRow& r = rows[i];
    os << (i ? ",\n " : "\n ") << "{\"name\": \"" << r.name << "\", \"format\": \"" << r.format
       << "\", \"n\": " << r.n << ", \"k\": " << r.k << ", \"tokens\": " << r.tokens
       << ", \"threads\": " << r.threads << ", \"cache\": \"" << r.cache << "\", \"variant\": \""
       << r.variant << "\", \"baseline_variant\": \"" << r.baseline_variant
       << "\", \"median_us\": " << r.us << ", \"f16_median_us\": " << r.baseline_us
       << ", \"speedup_vs_f16\": " << r.speedup << ", \"weight_GBps\": " << r.weight_gbps
       << ", \"GOPS\": " << r.gops << ", \"stream_read_GBps\": " << r.stream_gbps
       << ", \"bw_frac\": " << r.bw_frac << ", \"int8_peak_GOPS\": " << r.peak_gops
       << ", \"peak_frac\": " << r.peak_frac << ", \"samples\": " << r.samples << "}";
  }
  os << "\n]";
  return os.str();
}

std::string rows_to_table(const std::vector<KernelBenchRow>& rows) {
  std::ostringstream os;
  char line[512];
  os << "| format | N x K | tokens | threads | cache | us (median) | f16 us | speedup | weight "
        "GB/s "
        "| % stream BW | GOP/s | % int8 peak |\n"
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const KernelBenchRow& r : rows) {
    std::snprintf(line, sizeof line,
                  "| %s | %lldx%lld | %lld | %d | %s | %.1f | %.1f | %.2fx | %.1f | %.0f%% | %.0f "
                  "| %.0f%% |\n",
                  r.format.c_str(), (long long)r.n, (long long)r.k, (long long)r.tokens, r.threads,
                  r.cache.c_str(), r.us, r.baseline_us, r.speedup, r.weight_gbps, 100 * r.bw_frac,
                  r.gops, 100 * r.peak_frac);
    os << line;
  }
  return os.str();
}

}  // namespace tritune
