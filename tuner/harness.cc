#include "tuner/harness.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/cpu_features.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/formats.h"
#include "kernels/i2s.h"
#include "kernels/variant.h"
#include "tuner/isolate.h"

namespace tritune {

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

Measurement fail(const char* st, std::string why) {
  Measurement m;
  m.status = st;
  m.reason = std::move(why);
  return m;
}

}  // namespace

const SearchSpace& space_for(const std::string& format, int64_t tokens) {
  const FormatTraits& f = find_format(format);
  const std::string op = op_for_tokens(tokens);
  for (const SearchSpace& s : all_spaces()) {
    if (s.format == f.name && s.op == op) return s;
  }
  throw Error("format " + format + " has no '" + op + "' search space (no generator family)");
}

std::string baseline_variant(const SearchSpace& space, Isa isa) {
  return default_variant(space.family, space.op, isa).name;
}

// Everything a task needs, prepared once in the parent (children inherit it copy-on-write).
struct KernelHarness::Workload {
  TaskKey key;
  Format format = Format::kI2S;
  // i2_s
  std::vector<I2SKernelWeights> iw;  // copies (cold rotation); [0] is the warm one
  QuantizedActs acts;
  std::vector<int32_t> raw;
  I2SKernelWeights check_w;
  std::vector<int32_t> check_ref;
  // f32 / f16
  std::vector<PackedWeights> fw;
  std::vector<float> x, y;
  PackedWeights check_fw;
  std::vector<float> check_fref;
  int64_t out_ld = 0;
  OpCounts work;
};

KernelHarness::KernelHarness(HarnessOptions o) : o_(std::move(o)) {
  // A measurement under impossible settings would be recorded as a failed (or NaN) candidate
  // and resumed as such forever: refuse the settings instead.
  const auto bad = [](const std::string& what, double v, const std::string& range) {
    char b[48];
    std::snprintf(b, sizeof b, "%g", v);
    throw Error(what + " " + b + ": must be in " + range);
  };
  if (o_.reps < 1 || o_.reps > 100000) bad("timing samples (--reps)", o_.reps, "1..100000");
  if (!(o_.min_sample_s >= 0) || o_.min_sample_s > 60) {  // 0: one call per sample
    bad("sample length (--min-sample-ms)", o_.min_sample_s * 1e3, "[0, 60000] ms");
  }
  if (!(o_.timeout_s > 0) || o_.timeout_s > 86400) {
    bad("per-candidate limit (--timeout)", o_.timeout_s, "(0, 86400] seconds");
  }
  if (o_.warmup < 0 || o_.warmup > 1000) bad("warm-up calls", o_.warmup, "0..1000");
  if (o_.energy_reps < 1 || o_.energy_reps > 1000) bad("energy samples", o_.energy_reps, "1..1000");
}
KernelHarness::~KernelHarness() = default;

KernelHarness::Workload& KernelHarness::workload(const TaskKey& t) {
  if (w_ && w_->key == t) return *w_;
  w_.reset();  // free the previous task's buffers first
  auto w = std::make_unique<Workload>();
  w->key = t;
  w->format = find_format(t.format).id;
  std::mt19937_64 rng(o_.seed);
  auto ternary = [&](int64_t n, int64_t k) {
    std::vector<int8_t> v((size_t)(n * k));
    for (auto& x : v) x = (int8_t)((int)(rng() % 3) - 1);
    return v;
  };
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x((size_t)(t.tokens * t.k));
  for (auto& v : x) v = gauss(rng);
  const int64_t llc =
      o_.llc_bytes > 0 ? o_.llc_bytes : std::max<int64_t>(cpu_info().l3_bytes, 8 << 20);
  auto copies_for = [&](int64_t bytes) -> int64_t {
    if (t.cache != "cold") return 1;
    int64_t c = (2 * llc + bytes - 1) / bytes + 1;
    c = std::min<int64_t>(c, std::max<int64_t>(1, o_.max_cold_bytes / bytes));
    return std::max<int64_t>(c, 2);
  };
  const int64_t check_n = std::min<int64_t>(t.n, o_.check_rows);
  if (w->format == Format::kI2S) {
    const auto tern = ternary(t.n, t.k);
    I2SKernelWeights base = i2s_tile_ternary(tern.data(), t.n, t.k, 0.5f);
    const int64_t copies = copies_for((int64_t)base.tiles.size());
    w->iw.assign((size_t)copies, base);
    w->acts = quantize_acts(x.data(), t.tokens, t.k, t.k, 16);
    w->out_ld = base.n_pad();
    w->raw.assign((size_t)(w->out_ld * t.tokens), 0);
    const auto ct = ternary(check_n, t.k);
    w->check_w = i2s_tile_ternary(ct.data(), check_n, t.k, 0.5f);
    w->check_ref.assign((size_t)(w->check_w.n_pad() * t.tokens), 0);
    i2s_ref_gemm_tiled(w->check_w, w->acts, w->check_ref.data(), w->check_w.n_pad());
  } else {
    const FormatTraits& f = format_traits(w->format);
    std::vector<float> dense((size_t)(t.n * t.k));
    for (auto& v : dense) v = gauss(rng) * 0.05f;
    PackedWeights p = f.pack(dense.data(), t.n, t.k);
    const int64_t copies = copies_for((int64_t)p.data.size());
    w->fw.assign((size_t)copies, p);
    w->x = x;
    w->out_ld = t.n;
    w->y.assign((size_t)(t.n * t.tokens), 0.0f);
    std::vector<float> cd((size_t)(check_n * t.k));
    for (auto& v : cd) v = gauss(rng) * 0.05f;
    w->check_fw = f.pack(cd.data(), check_n, t.k);
    w->check_fref.assign((size_t)(check_n * t.tokens), 0.0f);
    f.ref_gemm(w->check_fw, x.data(), t.tokens, w->check_fref.data());
  }
  w->work = op_counts(w->format, t.n, t.k, t.tokens);
  w_ = std::move(w);
  return *w_;
}

Measurement KernelHarness::measure(const TaskKey& task, const std::string& variant) {
  return measure(task, variant, o_.reps);
}

Measurement KernelHarness::measure(const TaskKey& task, const std::string& variant, int reps) {
  if (reps < 1) throw Error("KernelHarness::measure: reps must be >= 1");
  Workload& w = workload(task);  // in the parent: shared with every child
  (void)w;
  if (!o_.isolate) {
    try {
      return measure_here(task, variant, reps);
    } catch (const std::exception& e) {
      return fail(status::kRuntime, e.what());
    }
  }
  return run_isolated([&] { return measure_here(task, variant, reps); }, o_.timeout_s);
}

Measurement KernelHarness::measure_here(const TaskKey& t, const std::string& name, int reps) {
  Workload& w = workload(t);
  set_num_threads(t.threads);
  const SearchSpace& space = space_for(t.format, t.tokens);
  const std::string base_name = baseline_variant(space, selected_isa());
  Measurement m;
  m.baseline_variant = base_name;

  const double c0 = now_s();
  const Variant* cand = nullptr;
  try {
    cand = &get_variant(name);
  } catch (const std::exception& e) {
    return fail(status::kCompile, e.what());
  }
  m.compile_s = now_s() - c0;
  const Variant& base = get_variant(base_name);

  // Correctness on the small input.
  if (w.format == Format::kI2S) {
    std::vector<int32_t> out(w.check_ref.size(), 0x7fffffff);
    const int64_t ld = w.check_w.n_pad();
    run_i2s(*cand, w.check_w, w.acts, out.data(), ld);
    int64_t bad = 0, first_t = -1, first_n = -1;
    for (int64_t tk = 0; tk < t.tokens; ++tk) {
      for (int64_t n = 0; n < w.check_w.n; ++n) {
        if (out[tk * ld + n] != w.check_ref[tk * ld + n]) {
          if (bad++ == 0) first_t = tk, first_n = n;
        }
      }
    }
    if (bad) {
      return fail(status::kCorrectness,
                  std::to_string(bad) + " of " + std::to_string(w.check_w.n * t.tokens) +
                      " outputs differ from i2s_ref_gemm_tiled; first raw[t=" +
                      std::to_string(first_t) + "][n=" + std::to_string(first_n) +
                      "] = " + std::to_string(out[first_t * ld + first_n]) + ", reference " +
                      std::to_string(w.check_ref[first_t * ld + first_n]));
    }
  } else {
    const int64_t cn = w.check_fw.n;
    std::vector<float> out((size_t)(cn * t.tokens), NAN);
    run_fp(*cand, w.check_fw, w.x.data(), t.tokens, out.data(), cn);
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      max_ref = std::max(max_ref, (double)std::fabs(w.check_fref[i]));
      const double e = std::fabs((double)out[i] - w.check_fref[i]);
      max_err = std::isfinite(e) ? std::max(max_err, e) : INFINITY;
    }
    const double tol = 1e-4 * (max_ref + 1.0);  // f32 accumulation-order differences
    if (!(max_err <= tol)) {
      return fail(status::kCorrectness, "max |y - ref| = " + std::to_string(max_err) +
                                            " > tolerance " + std::to_string(tol));
    }
  }

  // Timing: one call on weight copy c.
  size_t copy = 0;
  auto call = [&](const Variant& v) {
    if (w.format == Format::kI2S) {
      run_i2s(v, w.iw[copy], w.acts, w.raw.data(), w.out_ld);
      copy = (copy + 1) % w.iw.size();
    } else {
      run_fp(v, w.fw[copy], w.x.data(), t.tokens, w.y.data(), w.out_ld);
      copy = (copy + 1) % w.fw.size();
    }
  };
  // Warm-up: one pass over every weight copy per variant (a fresh child's first touch of each
  // copy is slow: page-table and TLB fills), then `warmup` calls more.
  const int64_t copies = (int64_t)(w.format == Format::kI2S ? w.iw.size() : w.fw.size());
  for (int64_t i = 0; i < copies + o_.warmup; ++i) {
    call(base);
    call(*cand);
  }
  // Calls per sample from the slower of the two (so neither sample is too short).
  auto once = [&](const Variant& v) {
    const double s = now_s();
    call(v);
    return now_s() - s;
  };
  const double per_call = std::max(once(base), once(*cand));
  const int64_t calls = std::max<int64_t>(1, (int64_t)std::ceil(o_.min_sample_s / per_call));
  auto sample = [&](const Variant& v) {
    const double s = now_s();
    for (int64_t i = 0; i < calls; ++i) call(v);
    return (now_s() - s) / (double)calls;
  };
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {  // ABBA: the order alternates so a trend hits both alike
      m.baseline_time_s.push_back(sample(base));
      m.time_s.push_back(sample(*cand));
    } else {
      m.time_s.push_back(sample(*cand));
      m.baseline_time_s.push_back(sample(base));
    }
  }
  if (o_.objective != Objective::kTime) {
    if (!o_.energy) throw Error("objective energy/edp needs an energy meter (none given)");
    for (int r = 0; r < o_.energy_reps; ++r) {
      EnergySample b = o_.energy([&] { call(base); }, w.work);
      EnergySample c = o_.energy([&] { call(*cand); }, w.work);
      m.baseline_energy_j.push_back(b.joules_per_call);
      m.energy_j.push_back(c.joules_per_call);
      m.energy_source = c.source + (c.estimated ? " (estimated)" : "");
    }
  }
  return m;
}

}  // namespace tritune
