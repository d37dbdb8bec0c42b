// `tritune bench e2e`: end-to-end prompt processing (ppN) and generation (tgN) speed of the
// transformer, reported like llama-bench (mean +- sample stddev of per-repetition t/s), next to
// the roofline measured in the same run (streaming bandwidth -> expected time per generated
// token from the bytes it reads; int8 dot-product peak -> achieved fraction in prefill),
// resident memory, joules per token (with the meter's source) and, optionally, the same model
// with F16 weights.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "energy/measure.h"
#include "energy/probe.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/json.h"
#include "kernels/op_counts.h"
#include "kernels/roofline.h"
#include "kernels/stats.h"
#include "kernels/thread_pool.h"
#include "model/float_model.h"
#include "model/ggml_types.h"
#include "model/transformer.h"

namespace tritune::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Stat : MeanSd {
  std::vector<double> samples;
};

Stat stat_of(const std::vector<double>& v) {
  return {mean_sd(v), v};
}

struct BenchResult {
  Stat pp, tg;  // tokens per second
  double tg_joules_per_token = 0, pp_joules_per_token = 0;
  std::string energy_source;
  bool energy_estimated = false;
  std::string energy_error;  // why the figures stopped (a frozen counter), "" if they did not
  int64_t bytes_per_token = 0;      // tg, at the mean context (mean_kv_rows)
  int64_t weight_span_bytes = 0;    // of which the linear weights and the head
  double linear_ops_per_token = 0;  // 2 * sum(n * k)
  std::string kernels;
  ForwardProfile pp_prof, tg_prof;  // filled with --profile
  int64_t rss_running = 0;          // resident set after the runs, the Transformer still alive
  int64_t rss_running_file = 0;     // of which clean file-backed pages
  int64_t kv_bytes = 0;             // the KV cache, of the running figure
  std::array<int64_t, (size_t)Stage::kCount> stage_bytes{};  // weights per token per stage
  // Paired tokens: per token, its time over the bound of the probes right around it (the
  // stream read's, the in-place read's).
  std::vector<double> paired_ring, paired_inplace;
};

// The tg bandwidth probes, GB/s: {256 MiB stream read, in-place read of the token's weights}.
using TokenProbe = std::function<std::array<double, 2>(const Transformer&)>;

// The KV rows a tgN token reads on average after -d tokens: token i reads depth + i + 1.
double mean_kv_rows(int64_t depth, int64_t tg) {
  return (double)depth + (double)(tg + 1) / 2.0;
}

OpCounts linear_work(const ModelWeights& w, int64_t tokens) {
  OpCounts c;
  for (const auto& L : w.layers) {
    for (const PackedWeights* p : L.linears()) {
      c += op_counts(p->format, p->n, p->k, tokens);
    }
  }
  return c;
}

// What a forward pass of `tokens` tokens does beyond its linear layers, for the energy model
// (which charges the work it is told of): the output head for the last token (a multiply and an
// add per weight, int8 for a quantized head, f32 for a float one), attention over `attended`
// cached rows in all (a multiply and an add per element of Q.K and of P.V, f32), and the bytes
// it reads: the head, one embedding row per token and the KV rows.
OpCounts beyond_linear_work(const Transformer& tf, int64_t tokens, double attended) {
  const HParams& hp = tf.weights().hp;
  const OutputHead* head = tf.kernel_head();
  OpCounts c;
  const double h = (double)hp.hidden, v = (double)hp.vocab;
  const double head_macs = v * h;
  const bool int8_head = head && (double)head->weight_bytes() < 2.0 * head_macs;
  (int8_head ? c.int8_mul : c.fp32_mul) += head_macs;
  (int8_head ? c.int8_add : c.fp32_add) += head_macs;
  c.macs += head_macs;
  const RawMatrix& emb = tf.weights().tok_embd;
  const double emb_row = (double)emb.bytes / (double)std::max<int64_t>(1, emb.rows);
  const double kv_row = (double)(tf.bytes_per_token(1) - tf.bytes_per_token(0));
  c.bytes_weights += (head ? (double)head->weight_bytes() : 0.0) + emb_row * (double)tokens;
  c.bytes_acts += h + 4.0 * v + kv_row * attended;
  const double attn_macs = 2.0 * (double)hp.heads * (double)tf.kv_cache().head_dim() * attended;
  c.fp32_mul += attn_macs;
  c.fp32_add += attn_macs;
  c.macs += attn_macs;
  return c;
}

// Takes the model's linear weights over (Transformer::consume): resident once.
BenchResult bench_model(
    std::shared_ptr<ModelWeights> w, int threads, KvType kv, int64_t pp, int64_t tg, int64_t depth,
    int reps, EnergyMeter* meter, bool profile,
    const std::function<void(bool pp, bool after, const Transformer&)>* probe = nullptr,
    const TokenProbe* token_probe = nullptr, int64_t paired = 0) {
  TransformerOptions o;
  o.path = Path::kKernel;
  o.threads = threads;
  o.kv = kv;
  o.context = std::max<int64_t>(pp, depth + tg) + 1;
  OpCounts pp_work = linear_work(*w, std::max<int64_t>(pp, 1));
  OpCounts tg_work = linear_work(*w, 1) * (double)tg;
  double ops_per_token = 0;
  for (const auto& L : w->layers) {
    for (const PackedWeights* p : L.linears()) {
      ops_per_token += 2.0 * (double)p->n * (double)p->k;
    }
  }
  auto tfp = Transformer::consume(w, o);
  Transformer& tf = *tfp;
  const int64_t V = w->hp.vocab;
  std::vector<float> logits((size_t)V);
  BenchResult r;
  r.kernels = tf.describe();
  // Token i of tgN reads depth + i + 1 KV rows (its own included): the mean is depth + (tg + 1)
  // / 2, and bytes_per_token is linear in the rows, so the mean is that of the two ends.
  r.bytes_per_token = (tf.bytes_per_token(depth) + tf.bytes_per_token(depth + tg + 1)) / 2;
  // Token i of a prompt attends to i + 1 rows.
  pp_work += beyond_linear_work(tf, std::max<int64_t>(pp, 1), (double)pp * (double)(pp + 1) / 2.0);
  tg_work += beyond_linear_work(tf, 1, mean_kv_rows(depth, tg)) * (double)tg;
  r.stage_bytes = tf.stage_weight_bytes();
  for (int64_t b : r.stage_bytes) r.weight_span_bytes += b;
  r.kv_bytes = tf.kv_cache().bytes();
  r.linear_ops_per_token = ops_per_token;
  // Warm-up (llama-bench runs one too): page in the weights, spin up both pools.
  {
    const auto toks = random_tokens(std::max<int64_t>(1, std::min<int64_t>(pp, 16)), V, 99);
    tf.reset();
    if (pp > 0)
      tf.forward(toks.data(), (int64_t)toks.size(), (int64_t)toks.size() - 1, logits.data());
    tf.reset();
    for (int i = 0; i < std::min<int64_t>(tg, 4); ++i) tf.forward(&toks[0], 1, 0, logits.data());
  }
  std::vector<double> pp_rates, tg_rates;
  double pp_j = 0, tg_j = 0, pp_tok = 0, tg_tok = 0;
  // Closes an energy window into *sum. A frozen counter ends the energy figures, not the
  // benchmark.
  const auto close_energy_window = [&](const OpCounts& work, double* sum) {
    if (!meter) return;
    meter->add_work(work);
    meter->stop();
    try {
      const EnergyReading e = meter->results();
      require_counter_advanced(e, meter->update_interval_seconds());
      *sum += e.primary_joules();
      r.energy_source = meter->source();
      r.energy_estimated = meter->estimated();
    } catch (const Error& e) {
      r.energy_error = e.what();
      meter = nullptr;
    }
  };
  // The context tgN starts from (-d), filled by an untimed prompt after a reset.
  const auto start_tg = [&](uint64_t seed) {
    tf.reset();
    if (depth > 0) {
      const auto fill = random_tokens(depth, V, seed + 200);
      tf.forward(fill.data(), depth, depth - 1, logits.data());
    }
    return random_tokens(1, V, seed + 100)[0];
  };
  const auto next_token = [&] {  // argmax, not timed (llama-bench excludes sampling)
    return (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  for (int rep = 0; rep < reps; ++rep) {
    if (pp > 0) {
      const auto toks = random_tokens(pp, V, (uint64_t)rep + 1);
      tf.reset();
      if (probe) (*probe)(true, false, tf);
      if (meter) meter->start();
      if (profile) tf.set_profile(&r.pp_prof);
      const auto t0 = Clock::now();
      tf.forward(toks.data(), pp, pp - 1, logits.data());
      tf.set_profile(nullptr);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      close_energy_window(pp_work, &pp_j);
      if (probe) (*probe)(true, true, tf);
      pp_tok += (double)pp;
      pp_rates.push_back((double)pp / s);
    }
    if (tg > 0) {
      int32_t tok = start_tg((uint64_t)rep);
      if (probe) (*probe)(false, false, tf);
      double s = 0;
      if (meter) meter->start();
      for (int64_t i = 0; i < tg; ++i) {
        if (profile) tf.set_profile(&r.tg_prof);
        const auto t0 = Clock::now();
        tf.forward(&tok, 1, 0, logits.data());
        tf.set_profile(nullptr);
        s += std::chrono::duration<double>(Clock::now() - t0).count();
        tok = next_token();
      }
      close_energy_window(tg_work, &tg_j);
      if (probe) (*probe)(false, true, tf);
      tg_tok += (double)tg;
      tg_rates.push_back((double)tg / s);
    }
  }
  // Paired tokens: the first `paired` tokens of a tgN run once more, each timed between two
  // probes of its own and compared with the better of them. A repetition's probes are seconds
  // apart, and on a shared host the bandwidth moves within seconds; around a single token the
  // bound and the token see the same machine.
  if (token_probe && tg > 0) {
    int32_t tok = start_tg((uint64_t)reps);
    for (int64_t i = 0; i < std::min(paired, tg); ++i) {
      const std::array<double, 2> before = (*token_probe)(tf);
      const auto t0 = Clock::now();
      tf.forward(&tok, 1, 0, logits.data());
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      const std::array<double, 2> after = (*token_probe)(tf);
      tok = next_token();
      const double bytes = (double)tf.bytes_per_token(depth + i + 1);  // KV incl. its own row
      r.paired_ring.push_back(time_over_bound(s, bytes, before[0], after[0]));
      r.paired_inplace.push_back(time_over_bound(s, bytes, before[1], after[1]));
    }
  }
  // The model's resident memory: weights in kernel layouts, head, KV cache and activation
  // buffers, read while they are all alive; the stream probe's ring is not the model's.
  release_probe_buffers();
  r.rss_running = resident_bytes();
  r.rss_running_file = resident_file_bytes();
  if (!pp_rates.empty()) r.pp = stat_of(pp_rates);
  if (!tg_rates.empty()) r.tg = stat_of(tg_rates);
  if (pp_tok > 0) r.pp_joules_per_token = pp_j / pp_tok;
  if (tg_tok > 0) r.tg_joules_per_token = tg_j / tg_tok;
  return r;
}

// Per-stage milliseconds per token of pp and tg, with shares of the forward() time; for the
// stages that stream weights, the tg rate (their bytes per token over their time) and, when the
// in-place read was probed, that rate as a fraction of it.
void print_profile(const ForwardProfile& pp, const ForwardProfile& tg,
                   const std::array<int64_t, (size_t)Stage::kCount>& bytes, double inplace_gbs) {
  std::printf(
      "\nwhere the time goes (ms per token, share of forward time; tg threads' wait at the ends "
      "of parallel loops, ms per token in all; tg weight rate):\n");
  std::printf("| %-10s | %16s | %16s | %10s | %18s |\n", "stage", "pp", "tg", "tg wait",
              "tg GB/s (in place)");
  std::printf("| %s | %s | %s | %s | %s |\n", std::string(10, '-').c_str(),
              std::string(16, '-').c_str(), std::string(16, '-').c_str(),
              std::string(10, '-').c_str(), std::string(18, '-').c_str());
  auto cell = [](const ForwardProfile& p, double sec) {
    char b[64] = "-";
    if (p.tokens > 0 && p.total_seconds > 0) {
      std::snprintf(b, sizeof b, "%8.4f (%4.1f%%)", 1e3 * sec / (double)p.tokens,
                    100 * sec / p.total_seconds);
    }
    return std::string(b);
  };
  auto rate = [&](int i) {
    char b[64] = "";
    const double sec = tg.seconds[i];
    if (bytes[(size_t)i] > 0 && tg.tokens > 0 && sec > 0) {
      const double gbs = (double)bytes[(size_t)i] * (double)tg.tokens / sec / 1e9;
      if (inplace_gbs > 0) {
        std::snprintf(b, sizeof b, "%6.2f (%4.0f%%)", gbs, 100 * gbs / inplace_gbs);
      } else {
        std::snprintf(b, sizeof b, "%6.2f", gbs);
      }
    }
    return std::string(b);
  };
  auto wait = [&](double sec) {
    char b[32] = "-";
    if (tg.tokens > 0 && tg.pool_loops > 0) {
      std::snprintf(b, sizeof b, "%8.4f", 1e3 * sec / (double)tg.tokens);
    }
    return std::string(b);
  };
  double pp_sum = 0, tg_sum = 0;
  for (int i = 0; i < (int)Stage::kCount; ++i) {
    std::printf("| %-10s | %16s | %16s | %10s | %18s |\n", stage_name((Stage)i),
                cell(pp, pp.seconds[i]).c_str(), cell(tg, tg.seconds[i]).c_str(),
                wait(tg.tail_seconds[i]).c_str(), rate(i).c_str());
    pp_sum += pp.seconds[i];
    tg_sum += tg.seconds[i];
  }
  std::printf("| %-10s | %16s | %16s | %10s | %18s |\n", "other",
              cell(pp, pp.total_seconds - pp_sum).c_str(),
              cell(tg, tg.total_seconds - tg_sum).c_str(), "", "");
  std::printf("| %-10s | %16s | %16s | %10s | %18s |\n", "total",
              cell(pp, pp.total_seconds).c_str(), cell(tg, tg.total_seconds).c_str(),
              wait(tg.pool_tail_seconds()).c_str(), "");
  // Inside the stage times: threads that finished their share of a parallel loop early wait
  // for the slowest (one core slowed by a neighbour leaves the other idle; a coarse task grain
  // makes that wait longer).
  for (const auto& [name, p] :
       {std::pair<const char*, const ForwardProfile*>{"pp", &pp}, {"tg", &tg}}) {
    if (p->tokens <= 0 || p->pool_loops <= 0) continue;
    std::printf(
        "%s thread pool: %.1f parallel loops per token; threads waited %.4f ms per token "
        "in all at the loops' ends; idle workers prefetched %.2f MB of weights per token\n",
        name, (double)p->pool_loops / (double)p->tokens,
        1e3 * p->pool_tail_seconds() / (double)p->tokens,
        1e-6 * (double)p->idle_prefetch_bytes / (double)p->tokens);
  }
}

std::string profile_json(const ForwardProfile& p) {
  std::string s = "{\"tokens\": " + std::to_string(p.tokens) +
                  ", \"seconds\": " + std::to_string(p.total_seconds) +
                  ", \"pool_loops\": " + std::to_string(p.pool_loops) +
                  ", \"pool_tail_seconds\": " + std::to_string(p.pool_tail_seconds()) +
                  ", \"idle_prefetch_bytes\": " + std::to_string(p.idle_prefetch_bytes);
  std::string tails;
  for (int i = 0; i < (int)Stage::kCount; ++i) {
    tails += std::string(i ? ", " : "") + "\"" + stage_name((Stage)i) +
             "\": " + std::to_string(p.tail_seconds[i]);
  }
  s += ", \"pool_tail_seconds_by_stage\": {" + tails + "}";
  for (int i = 0; i < (int)Stage::kCount; ++i) {
    s += ", \"" + std::string(stage_name((Stage)i)) + "\": " + std::to_string(p.seconds[i]);
  }
  return s + "}";
}

// {"qkv": bytes, ...} for the stages that stream weights.
std::string stage_bytes_json(const std::array<int64_t, (size_t)Stage::kCount>& bytes) {
  std::string s;
  for (int i = 0; i < (int)Stage::kCount; ++i) {
    if (bytes[(size_t)i] <= 0) continue;
    s += std::string(s.empty() ? "" : ", ") + "\"" + stage_name((Stage)i) +
         "\": " + std::to_string(bytes[(size_t)i]);
  }
  return "{" + s + "}";
}

void print_row(const std::string& model, double size_gib, double params_b, int threads,
               const std::string& test, const Stat& s) {
  char ts[64];
  std::snprintf(ts, sizeof ts, "%.2f ± %.2f", s.mean, s.sd);
  std::printf("| %-26s | %9.2f GiB | %8.2f B | %-12s | %7d | %12s | %20s |\n", model.c_str(),
              size_gib, params_b, "CPU tritune", threads, test.c_str(), ts);
}

int run_bench_e2e(const std::vector<std::string>& argv) {
  Args a("bench e2e",
         "End-to-end speed like llama-bench: ppP (one prompt of P tokens, last logits only) and\n"
         "tgN (N tokens one at a time from a fresh context, or after -d tokens; sampling not\n"
         "timed), R repetitions, mean ± sample stddev of per-repetition t/s; plus the roofline\n"
         "measured in the same run (around every repetition: the int8 peak for pp; for tg a\n"
         "256 MiB stream read and an in-place read of the weights a token streams), resident\n"
         "memory, joules per token, and optionally the same model in F16.");
  a.option("-m", "FILE", "model file");
  a.option("-p", "N", "prompt tokens (0: skip pp)", "512");
  a.option("-n", "N", "generated tokens (0: skip tg)", "128");
  a.option("-d", "N",
           "depth: tokens already in the context when tgN starts (llama-bench's -d; an untimed "
           "prompt fills it)",
           "0");
  a.option("-r", "N", "repetitions", "5");
  a.option("-t", "N", "threads", "2");
  a.option("--kv", "TYPE", "KV cache type: f16 (llama-bench's default) or f32", "f16");
  a.option("--paired", "N",
           "paired tokens: run the first N tokens of tgN once more, each between two probes of "
           "its own, and report the median of their per-token ratios to the bound (0: skip; "
           "needs the roofline)",
           "32");
  a.option("--embd-type", "T", kEmbdTypeHelp);
  a.flag("--compare-f16", "also run the same weights as F16 (linear layers and head)");
  a.flag("--no-roofline", "skip the bandwidth / in-place read / int8 peak measurements");
  a.flag("--no-energy", "skip the energy meter");
  a.flag("--profile", "time each stage of the forward pass (table, or \"profile\" in JSON)");
  a.flag("--json", "print the results as one JSON object");
  if (!a.parse(argv)) return 0;
  const int threads = apply_threads(a.get_int("-t"));
  const int64_t pp = positions_arg("-p", a.get_int("-p"), 0),
                tg = positions_arg("-n", a.get_int("-n"), 0),
                depth = positions_arg("-d", a.get_int("-d"), 0);
  const int reps = (int)a.get_int("-r");
  const int64_t paired = a.get_int("--paired");
  if (pp == 0 && tg == 0) throw Error("-p and -n must be >= 0, not both 0");
  if (reps < 1 || reps > 1000) throw Error("-r must be in 1..1000");
  if (paired < 0 || paired > 100000) throw Error("--paired must be in 0..100000");
  if (depth > 0 && tg == 0) throw Error("-d must be >= 0 and needs tg (-n > 0)");
  const KvType kv = parse_kv_type(a.get("--kv"));
  const LoadedModel m = load_for_run(a.get("-m"), embd_type_arg(a), threads);
  if (std::max(pp, depth + tg) > m.weights->hp.context) {
    std::fprintf(stderr,
                 "note: -p/-d/-n reach %lld positions, beyond the model's context of %lld: the "
                 "timings stand, the outputs mean nothing\n",
                 (long long)std::max(pp, depth + tg), (long long)m.weights->hp.context);
  }
  if (a.has("--paired") && paired > 0 && (a.has("--no-roofline") || tg == 0)) {
    std::fprintf(stderr, "note: --paired %lld needs the roofline probes and tg (-n > 0): no paired "
                         "tokens in this run\n", (long long)paired);
  }
  const int64_t rss_loaded = resident_bytes();

  std::unique_ptr<EnergyMeter> meter;
  std::string energy_note;
  if (!a.has("--no-energy")) {
    ProbeOutcome po;
    meter = make_best_meter(probe_options_from_env(), &po);
    energy_note = po.summary;
  }
  const int64_t params = parameter_count(*m.weights);
  const std::string label = model_label(*m.weights);
  // The roofline is probed right before and right after every timed repetition (stream
  // bandwidth around each tg repetition, the int8 peak around each pp one), on the kernels' own
  // thread pool, and each repetition is compared with the better of its two probes (the
  // stricter bound): on a shared machine both drift by tens of percent within a minute, and a
  // probe can land on a moment a neighbour takes a core, so only interleaved ratios mean
  // anything.
  // Two bandwidth probes: the stream probe's ring (256 MiB reads of a 512 MiB buffer), and the
  // token's own weights read in place (same bytes, pages and order as a decode step, no compute
  // between the loads): the time a token cannot beat on this machine at this moment.
  std::vector<double> bw_probes, inplace_probes, peak_probes;
  // The two tg probes: {stream read, in-place read}, GB/s (around a repetition or a paired token).
  const TokenProbe token_probe = [&](const Transformer& tf) {
    return std::array<double, 2>{probe_stream_read(int64_t(256) << 20, threads),
                                 probe_read_spans(tf.weight_spans(), threads)};
  };
  const std::function<void(bool, bool, const Transformer&)> probe = [&](bool is_pp, bool after,
                                                                        const Transformer& tf) {
    if (is_pp) {
      keep_better_probe(peak_probes, probe_int8_peak(2e10, threads), after);
      return;
    }
    const std::array<double, 2> gbs = token_probe(tf);
    keep_better_probe(bw_probes, gbs[0], after);
    keep_better_probe(inplace_probes, gbs[1], after);
  };
  const bool roof = !a.has("--no-roofline");
  const BenchResult r =
      bench_model(m.weights, threads, kv, pp, tg, depth, reps, meter.get(), a.has("--profile"),
                  roof ? &probe : nullptr, roof && paired > 0 ? &token_probe : nullptr, paired);
  const int64_t rss_run = r.rss_running;
  // The peak also covers the load, the kernel layouts built from it and the probes' ring.
  const int64_t rss_peak = peak_resident_bytes();
  // The F16 copy comes from a second load (the benchmark took the first one's linear weights
  // over), after the resident-memory reading so it does not count there.
  BenchResult f16;
  std::shared_ptr<ModelWeights> fm;
  if (a.has("--compare-f16")) {
    fm = to_float_model(*load_for_run(a.get("-m")).weights, Format::kF16);
    f16 = bench_model(fm, threads, kv, pp, tg, depth, reps, meter.get(), false);
  }

  const double params_b = (double)params / 1e9;
  const double gib = (double)m.weights->file_bytes / (1u << 30);
  // Roofline figures: medians of the probes, and medians of the per-repetition ratios.
  const double bw_gbs = median_or(bw_probes, 0), peak_gops = median_or(peak_probes, 0);
  const double tg_s = r.tg.mean > 0 ? 1.0 / r.tg.mean : 0;
  const double tg_bound_s = bw_gbs > 0 ? (double)r.bytes_per_token / (bw_gbs * 1e9) : 0;
  const double inplace_gbs = median_or(inplace_probes, 0);
  const double tg_inplace_bound_s =
      inplace_gbs > 0 ? (double)r.bytes_per_token / (inplace_gbs * 1e9) : 0;
  // Per repetition: its time per token over the bound of its own probes.
  const auto tg_ratios_of = [&](const std::vector<double>& probes) {
    std::vector<double> v;
    for (size_t i = 0; i < probes.size() && i < r.tg.samples.size(); ++i) {
      // probes[i] is already the better of the two around repetition i.
      v.push_back(
          time_over_bound(1.0 / r.tg.samples[i], (double)r.bytes_per_token, probes[i], probes[i]));
    }
    return v;
  };
  std::vector<double> tg_ratios = tg_ratios_of(bw_probes), pp_fracs;
  const double tg_inplace_ratio = median_or(tg_ratios_of(inplace_probes), 0);
  for (size_t i = 0; i < peak_probes.size() && i < r.pp.samples.size(); ++i) {
    pp_fracs.push_back(r.pp.samples[i] * r.linear_ops_per_token / 1e9 / peak_probes[i]);
  }
  const double tg_ratio = median_or(tg_ratios, 0), pp_frac = median_or(pp_fracs, 0);
  const double paired_ratio = median_or(r.paired_ring, 0),
               paired_inplace_ratio = median_or(r.paired_inplace, 0);
  const double pp_gops = r.pp.mean * r.linear_ops_per_token / 1e9;

  if (a.has("--json")) {
    const std::string energy_error_json =
        r.energy_error.empty() ? "null" : json::quote(r.energy_error);
    std::printf(
        "{\"model\": %s, \"file\": %s, \"file_bytes\": %lld, \"params\": %lld, "
        "\"threads\": %d, \"isa\": \"%s\", \"pp\": %lld, \"tg\": %lld, \"depth\": %lld, "
        "\"reps\": %d, "
        "\"pp_tps_mean\": %.4f, \"pp_tps_sd\": %.4f, \"tg_tps_mean\": %.4f, \"tg_tps_sd\": %.4f, "
        "\"bytes_per_token\": %lld, \"stream_gbs\": %.3f, \"tg_bound_s\": %.6f, "
        "\"tg_s_per_token\": %.6f, \"tg_bound_ratio\": %.4f, \"inplace_gbs\": %.3f, "
        "\"tg_inplace_bound_s\": %.6f, \"tg_inplace_bound_ratio\": %.4f, "
        "\"int8_peak_gops\": %.2f, "
        "\"pp_linear_gops\": %.2f, \"pp_peak_fraction\": %.4f, "
        "\"kv\": \"%s\", \"kv_bytes\": %lld, "
        "\"rss_loaded\": %lld, \"rss_run\": %lld, \"rss_run_file\": %lld, \"rss_peak\": %lld, "
        "\"tg_j_per_token\": %.6g, "
        "\"pp_j_per_token\": %.6g, \"energy_source\": \"%s\", \"energy_estimated\": %s, "
        "\"energy_error\": %s, "
        "\"pool_schedule\": \"%s\", \"pool_spin_us\": %lld, \"pool_idle_prefetch_bytes\": %lld, "
        "\"tg_paired_tokens\": %zu, "
        "\"tg_paired_bound_ratio\": %.4f, \"tg_paired_inplace_bound_ratio\": %.4f",
        json::quote(label).c_str(), json::quote(m.weights->path).c_str(),
        (long long)m.weights->file_bytes, (long long)params, threads, isa_name(selected_isa()),
        (long long)pp, (long long)tg, (long long)depth, reps, r.pp.mean, r.pp.sd, r.tg.mean,
        r.tg.sd, (long long)r.bytes_per_token, bw_gbs, tg_bound_s, tg_s, tg_ratio, inplace_gbs,
        tg_inplace_bound_s, tg_inplace_ratio, peak_gops, pp_gops, pp_frac, kv_type_name(kv),
        (long long)r.kv_bytes, (long long)rss_loaded, (long long)rss_run,
        (long long)r.rss_running_file, (long long)rss_peak, r.tg_joules_per_token,
        r.pp_joules_per_token, r.energy_source.c_str(), r.energy_estimated ? "true" : "false",
        energy_error_json.c_str(), pool_schedule_name(pool_schedule()), (long long)pool_spin_us(),
        (long long)pool_idle_prefetch_bytes(), r.paired_ring.size(), paired_ratio,
        paired_inplace_ratio);
    // What ran: the head's stored type (after --embd-type) and every layer's kernel.
    const RawMatrix& head = m.weights->output.rows > 0 ? m.weights->output : m.weights->tok_embd;
    std::printf(", \"head_type\": %s, \"kernels\": %s",
                json::quote(ggml::type_name(head.ggml_type)).c_str(),
                json::quote(r.kernels).c_str());
    if (fm) {
      std::printf(
          ", \"f16_pp_tps_mean\": %.4f, \"f16_pp_tps_sd\": %.4f, "
          "\"f16_tg_tps_mean\": %.4f, \"f16_tg_tps_sd\": %.4f",
          f16.pp.mean, f16.pp.sd, f16.tg.mean, f16.tg.sd);
    }
    if (a.has("--profile")) {
      std::printf(", \"profile\": {\"pp\": %s, \"tg\": %s, \"tg_stage_weight_bytes\": %s}",
                  profile_json(r.pp_prof).c_str(), profile_json(r.tg_prof).c_str(),
                  stage_bytes_json(r.stage_bytes).c_str());
    }
    std::printf("}\n");
    return 0;
  }
  std::printf("| %-26s | %13s | %10s | %-12s | %7s | %12s | %20s |\n", "model", "size", "params",
              "backend", "threads", "test", "t/s");
  std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", std::string(26, '-').c_str(),
              std::string(13, '-').c_str(), std::string(10, '-').c_str(),
              std::string(12, '-').c_str(), std::string(7, '-').c_str(),
              std::string(12, '-').c_str(), std::string(20, '-').c_str());
  const std::string pps = "pp" + std::to_string(pp),
                    tgs = "tg" + std::to_string(tg) +
                          (depth > 0 ? " @ d" + std::to_string(depth) : "");
  if (pp > 0) print_row(label, gib, params_b, threads, pps, r.pp);
  if (tg > 0) print_row(label, gib, params_b, threads, tgs, r.tg);
  if (fm) {
    const std::string fl = label + " (as f16)";
    const double fgib = (double)params * 2 / (1u << 30);
    if (pp > 0) print_row(fl, fgib, params_b, threads, pps, f16.pp);
    if (tg > 0) print_row(fl, fgib, params_b, threads, tgs, f16.tg);
  }
  std::printf("\nkernels (%s):\n%s", isa_name(selected_isa()), r.kernels.c_str());
  std::printf(
      "thread pool: %d threads, %s schedule, workers spin %lld us between loops and prefetch up "
      "to %lld KiB of the next GEMV's weights meanwhile\n",
      threads, pool_schedule_name(pool_schedule()), (long long)pool_spin_us(),
      (long long)(pool_idle_prefetch_bytes() >> 10));
  if (a.has("--profile")) print_profile(r.pp_prof, r.tg_prof, r.stage_bytes, inplace_gbs);
  std::printf(
      "\nbytes read per generated token   %.1f MB (weights, head, one embedding row, KV "
      "at context %.1f, the mean of the tg tokens)\n",
      r.bytes_per_token / 1e6, mean_kv_rows(depth, tg));
  if (bw_gbs > 0 && tg > 0) {
    std::printf(
        "streaming bandwidth (same run)    %.2f GB/s median over %zu repetitions (%.2f..%.2f), "
        "the better of 256 MiB reads before and after each tg repetition\n",
        bw_gbs, bw_probes.size(), *std::min_element(bw_probes.begin(), bw_probes.end()),
        *std::max_element(bw_probes.begin(), bw_probes.end()));
    std::printf(
        "in-place read (same run)          %.2f GB/s median (%.2f..%.2f): the %.1f MB of weights a "
        "token reads, where they live, in decode order, the better of reads before and after "
        "each tg repetition\n",
        inplace_gbs, *std::min_element(inplace_probes.begin(), inplace_probes.end()),
        *std::max_element(inplace_probes.begin(), inplace_probes.end()),
        (double)r.weight_span_bytes / 1e6);
    std::printf(
        "tg time per token                 %.2f ms measured vs %.2f ms at streaming bandwidth: "
        "%.2fx the bound; vs %.2f ms reading its bytes in place: %.2fx (medians of "
        "per-repetition ratios)\n",
        tg_s * 1e3, tg_bound_s * 1e3, tg_ratio, tg_inplace_bound_s * 1e3, tg_inplace_ratio);
  }
  if (!r.paired_ring.empty()) {
    std::printf(
        "tg paired tokens                  %.2fx the bound at streaming bandwidth (quartiles "
        "%.2f..%.2f), %.2fx reading its bytes in place (%.2f..%.2f): medians over %zu tokens, "
        "each timed between two probes of its own and compared with the better one\n",
        paired_ratio, quantile_or(r.paired_ring, 0.25, 0), quantile_or(r.paired_ring, 0.75, 0),
        paired_inplace_ratio, quantile_or(r.paired_inplace, 0.25, 0),
        quantile_or(r.paired_inplace, 0.75, 0), r.paired_ring.size());
  }
  if (peak_gops > 0 && pp > 0) {
    std::printf(
        "int8 dot-product peak (same run)  %.1f GOP/s median over %zu repetitions (%.1f..%.1f), "
        "the better of probes before and after each pp repetition\n",
        peak_gops, peak_probes.size(), *std::min_element(peak_probes.begin(), peak_probes.end()),
        *std::max_element(peak_probes.begin(), peak_probes.end()));
    std::printf(
        "pp linear-layer throughput        %.1f GOP/s = %.1f%% of the peak (median of "
        "per-repetition ratios)\n",
        pp_gops, 100 * pp_frac);
  }
  std::printf(
      "resident memory                   %.1f MB after load, %.1f MB running (%.2fx the %.1f MB "
      "file; of it %.1f MB %s KV cache and %.1f MB clean file pages: embedding rows, "
      "libraries); peak %.1f MB (VmHWM%s)\n",
      rss_loaded / 1e6, rss_run / 1e6,
      m.weights->file_bytes > 0 ? (double)rss_run / (double)m.weights->file_bytes : 0.0,
      m.weights->file_bytes / 1e6, r.kv_bytes / 1e6, kv_type_name(kv), r.rss_running_file / 1e6,
      rss_peak / 1e6, roof ? ", with the 512 MiB stream-probe ring" : "");
  if (!r.energy_error.empty()) {
    std::printf("energy                            none: %s\n", r.energy_error.c_str());
  } else if (meter) {
    std::printf("energy                            tg %.4f J/token, pp %.4f J/token (%s%s)\n",
                r.tg_joules_per_token, r.pp_joules_per_token, r.energy_source.c_str(),
                r.energy_estimated ? ", estimated" : ", measured");
    if (!energy_note.empty())
      std::printf("                                  %s\n", energy_note.c_str());
  }
  if (fm) {
    std::printf("vs f16 (same run)                 tg %.2fx, pp %.2fx\n",
                f16.tg.mean > 0 ? r.tg.mean / f16.tg.mean : 0,
                f16.pp.mean > 0 ? r.pp.mean / f16.pp.mean : 0);
  }
  return 0;
}

CommandRegistrar reg({"bench e2e",
                      "end-to-end pp/tg tokens/s like llama-bench, roofline, memory, J/token",
                      run_bench_e2e});

}  // namespace
}  // namespace tritune::cli
