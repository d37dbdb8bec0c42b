#include "model/validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "kernels/error.h"
#include "model/ggml_types.h"
#include "model/transformer.h"

namespace tritune {

double mean_nll_from_logits(const float* logits, int64_t vocab,
                            const std::vector<int32_t>& tokens) {
  const int64_t n = (int64_t)tokens.size();
  if (n < 2) throw Error("perplexity: need at least 2 tokens");
  double nll = 0.0;
  for (int64_t t = 0; t + 1 < n; ++t) {
    const float* l = logits + t * vocab;
    double m = l[0];
    for (int64_t v = 1; v < vocab; ++v) m = std::max(m, (double)l[v]);
    double s = 0.0;
    for (int64_t v = 0; v < vocab; ++v) s += std::exp((double)l[v] - m);
    nll += -((double)l[tokens[(size_t)(t + 1)]] - m - std::log(s));
  }
  return nll / (double)(n - 1);
}

double perplexity_from_logits(const float* logits, int64_t vocab,
                              const std::vector<int32_t>& tokens) {
  return std::exp(mean_nll_from_logits(logits, vocab, tokens));
}

double ppl_rel_diff(double nll_a, double nll_b) {
  return std::fabs(std::expm1(nll_a - nll_b));
}

void count_flips(const QuantizedActs& a, const QuantizedActs& b, FlipCount* c) {
  if (a.tokens != b.tokens || a.k != b.k) {
    throw Error("count_flips: shapes differ (" + std::to_string(a.tokens) + "x" +
                std::to_string(a.k) + " vs " + std::to_string(b.tokens) + "x" +
                std::to_string(b.k) + ")");
  }
  for (int64_t t = 0; t < a.tokens; ++t) {
    const int8_t* ra = a.row(t);
    const int8_t* rb = b.row(t);
    for (int64_t j = 0; j < a.k; ++j) {
      const int d = std::abs((int)ra[j] - (int)rb[j]);
      c->flipped += d != 0;
      c->beyond_one += d > 1;
    }
    c->compared += a.k;
  }
}

namespace {

// The kernel path's quantized inputs, per (layer, site) one entry per call: a prompt longer
// than the transformer's micro-batch reaches each site once per micro-batch, and the reference
// run replays them in the same order.
struct Recorded {
  std::map<std::pair<int64_t, int>, std::vector<QuantizedActs>> acts;
  std::map<std::pair<int64_t, int>, size_t> next;  // replay position per key

  void rewind() { next.clear(); }
  const QuantizedActs& replay(int64_t layer, QuantSite site) {
    const std::pair<int64_t, int> key{layer, (int)site};
    auto it = acts.find(key);
    size_t& i = next[key];
    if (it == acts.end() || i >= it->second.size()) {
      throw Error("validate: kernel run did not record the input of blk." + std::to_string(layer) +
                  " site " + std::to_string((int)site) + " call " + std::to_string(i));
    }
    return it->second[i++];
  }
};

std::vector<float> run_all(Transformer& tf, const std::vector<int32_t>& tokens) {
  std::vector<float> logits(tokens.size() * (size_t)tf.hp().vocab);
  tf.reset();
  tf.forward(tokens.data(), (int64_t)tokens.size(), 0, logits.data());
  return logits;
}

int64_t argmax(const float* v, int64_t n) {
  return std::max_element(v, v + n) - v;
}

// Max and mean |a - b|, max |b|, the top-1 agreement and both perplexities of two runs'
// logits over `tokens` (one row of V per token).
struct LogitDiff {
  double max_abs = 0, mean_abs = 0, max_abs_logit = 0, top1 = 0;
  double ppl_a = 0, ppl_b = 0, ppl_rel_diff = 0;  // |ppl_a / ppl_b - 1|
};
LogitDiff diff_logits(const std::vector<float>& a, const std::vector<float>& b, int64_t V,
                      const std::vector<int32_t>& tokens) {
  const int64_t n = (int64_t)tokens.size();
  LogitDiff d;
  double sum = 0;
  for (int64_t i = 0; i < n * V; ++i) {
    const double x = std::fabs((double)a[(size_t)i] - b[(size_t)i]);
    d.max_abs = std::max(d.max_abs, x);
    d.max_abs_logit = std::max(d.max_abs_logit, (double)std::fabs(b[(size_t)i]));
    sum += x;
  }
  d.mean_abs = sum / (double)(n * V);
  int64_t agree = 0;
  for (int64_t t = 0; t < n; ++t) {
    agree += argmax(a.data() + t * V, V) == argmax(b.data() + t * V, V);
  }
  d.top1 = (double)agree / (double)n;
  const double nll_a = mean_nll_from_logits(a.data(), V, tokens);
  const double nll_b = mean_nll_from_logits(b.data(), V, tokens);
  d.ppl_a = std::exp(nll_a);
  d.ppl_b = std::exp(nll_b);
  d.ppl_rel_diff = ppl_rel_diff(nll_a, nll_b);
  return d;
}

const RawMatrix& head_matrix(const ModelWeights& w) {
  return w.output.rows > 0 ? w.output : w.tok_embd;
}

}  // namespace

EmbeddingEffect compare_embeddings(std::shared_ptr<const ModelWeights> stored,
                                   std::shared_ptr<const ModelWeights> encoded,
                                   const std::vector<int32_t>& tokens, int threads, KvType kv) {
  if (tokens.size() < 2) throw Error("validate: need at least 2 tokens");
  if (stored->hp.vocab != encoded->hp.vocab || stored->hp.hidden != encoded->hp.hidden) {
    throw Error("compare_embeddings: the two models differ in shape");
  }
  const int64_t n = (int64_t)tokens.size(), V = stored->hp.vocab;
  TransformerOptions topt;
  topt.threads = threads;
  topt.kv = kv;
  topt.context = n;
  topt.path = Path::kKernel;
  std::vector<float> ls, le;
  {
    Transformer tf(stored, topt);
    ls = run_all(tf, tokens);
  }
  {
    Transformer tf(encoded, topt);
    le = run_all(tf, tokens);
  }
  EmbeddingEffect e;
  e.stored = ggml::type_name(head_matrix(*stored).ggml_type);
  e.encoded = ggml::type_name(head_matrix(*encoded).ggml_type);
  e.stored_bytes = head_matrix(*stored).bytes;
  e.encoded_bytes = head_matrix(*encoded).bytes;
  const LogitDiff d = diff_logits(le, ls, V, tokens);
  e.top1_agreement = d.top1;
  e.max_abs_diff = d.max_abs;
  e.mean_abs_diff = d.mean_abs;
  e.max_abs_logit = d.max_abs_logit;
  e.ppl_encoded = d.ppl_a;
  e.ppl_stored = d.ppl_b;
  e.ppl_rel_diff = d.ppl_rel_diff;
  return e;
}

ValidateReport validate_model(std::shared_ptr<const ModelWeights> weights,
                              const std::vector<int32_t>& tokens, const ValidateOptions& opt) {
  if (tokens.size() < 2) throw Error("validate: need at least 2 tokens");
  const int64_t n = (int64_t)tokens.size();
  TransformerOptions topt;
  topt.threads = opt.threads;
  topt.kv = opt.kv;
  topt.context = n;

  ValidateReport r;
  r.tokens = n;
  r.vocab = weights->hp.vocab;

  // 1. Kernel path, recording the quantized inputs.
  topt.path = Path::kKernel;
  Transformer ker(weights, topt);
  Recorded rec;
  ForwardHooks record;
  record.on_quant = [&](int64_t layer, QuantSite site, QuantizedActs& a) {
    if (opt.tamper_before_record) opt.tamper_before_record(layer, (int)site, a);
    rec.acts[{layer, (int)site}].push_back(a);
    if (opt.tamper_after_record) opt.tamper_after_record(layer, (int)site, a);
  };
  ker.set_hooks(record);
  const std::vector<float> lk = run_all(ker, tokens);
  ker.set_hooks({});
  if (!opt.logits_out.empty()) {
    FILE* f = std::fopen(opt.logits_out.c_str(), "wb");
    const bool wrote = f && std::fwrite(lk.data(), 4, lk.size(), f) == lk.size();
    if ((f && std::fclose(f) != 0) || !wrote) {
      throw Error("cannot write logits to '" + opt.logits_out + "'");
    }
  }

  // 2. Reference path, free-running.
  topt.path = Path::kReference;
  Transformer ref(weights, topt);
  FlipCount free_run;
  ForwardHooks compare;
  compare.on_quant = [&](int64_t layer, QuantSite site, QuantizedActs& a) {
    count_flips(a, rec.replay(layer, site), &free_run);
  };
  ref.set_hooks(compare);
  rec.rewind();
  const std::vector<float> lr = run_all(ref, tokens);

  r.acts_compared = free_run.compared;
  r.acts_flipped = free_run.flipped;
  r.flips_beyond_one = free_run.beyond_one;
  const int64_t V = r.vocab;
  const LogitDiff d = diff_logits(lk, lr, V, tokens);
  r.max_abs_diff = d.max_abs;
  r.mean_abs_diff = d.mean_abs;
  r.max_abs_logit = d.max_abs_logit;
  r.top1_agreement = d.top1;
  r.ppl_kernel = d.ppl_a;
  r.ppl_reference = d.ppl_b;
  r.ppl_rel_diff = d.ppl_rel_diff;

  // 3. Reference path forced onto the kernel's quantized inputs, with the per-layer check.
  const double tol = opt.forced_rel_tol * std::max(1.0, r.max_abs_logit);
  if (opt.forced) {
    r.forced_run = true;
    ForwardHooks force;
    FlipCount forced;
    force.on_quant = [&](int64_t layer, QuantSite site, QuantizedActs& a) {
      const QuantizedActs& k = rec.replay(layer, site);
      count_flips(a, k, &forced);
      a = k;
    };
    force.on_raw = [&](int64_t layer, LinearId id, const QuantizedActs& a, const int32_t* raw) {
      const Linear* L = ker.kernel_linear(layer, id);
      const int64_t ld = (L->n() + 63) / 64 * 64;
      std::vector<int32_t> got((size_t)(a.tokens * ld));
      L->forward_raw(a, got.data(), ld);
      ++r.linear_checks;
      for (int64_t t = 0; t < a.tokens; ++t) {
        for (int64_t j = 0; j < L->n(); ++j) {
          if (got[(size_t)(t * ld + j)] != raw[t * L->n() + j]) {
            if (r.linear_mismatches++ == 0) {
              r.first_mismatch = "blk." + std::to_string(layer) + "." + linear_name(id) +
                                 " token " + std::to_string(t) + " row " + std::to_string(j) +
                                 ": kernel " + std::to_string(got[(size_t)(t * ld + j)]) +
                                 ", reference " + std::to_string(raw[t * L->n() + j]);
            }
            t = a.tokens;
            break;
          }
        }
      }
    };
    ref.set_hooks(force);
    rec.rewind();
    const std::vector<float> lf = run_all(ref, tokens);
    r.forced_flips = forced.flipped;
    r.forced_beyond_one = forced.beyond_one;
    double fs = 0;
    for (int64_t i = 0; i < n * V; ++i) {
      const double d = std::fabs((double)lk[(size_t)i] - lf[(size_t)i]);
      r.forced_max_abs_diff = std::max(r.forced_max_abs_diff, d);
      fs += d;
    }
    r.forced_mean_abs_diff = fs / (double)(n * V);
  }

  // Verdict.
  char buf[256];
  if (r.top1_agreement < opt.min_top1) {
    std::snprintf(buf, sizeof buf, "top-1 agreement %.4f below %.4f", r.top1_agreement,
                  opt.min_top1);
    r.failures.push_back(buf);
  }
  if (!(r.ppl_rel_diff <= opt.max_ppl_rel)) {
    std::snprintf(buf, sizeof buf, "perplexity differs by %.4f%% (limit %.4f%%)",
                  100 * r.ppl_rel_diff, 100 * opt.max_ppl_rel);
    r.failures.push_back(buf);
  }
  if (r.forced_beyond_one > 0) {
    r.failures.push_back(std::to_string(r.forced_beyond_one) +
                         " quantized activations differ by more than one rounding step from "
                         "the same upstream state: not tie flips");
  }
  if (r.acts_flipped == 0 && !(r.max_abs_diff <= tol)) {
    std::snprintf(buf, sizeof buf,
                  "no activation flipped, yet logits differ by %.3g (float-order tolerance "
                  "%.3g): a bug outside the quantizer",
                  r.max_abs_diff, tol);
    r.failures.push_back(buf);
  }
  if (r.forced_run && !(r.forced_max_abs_diff <= tol)) {
    std::snprintf(buf, sizeof buf,
                  "with identical quantized inputs the logits still differ by %.3g (tolerance "
                  "%.3g): a difference the tie flips do not explain",
                  r.forced_max_abs_diff, tol);
    r.failures.push_back(buf);
  }
  if (r.linear_mismatches > 0) {
    r.failures.push_back(std::to_string(r.linear_mismatches) +
                         " linear layer calls not bit-exact; first: " + r.first_mismatch);
  }
  return r;
}

std::string ValidateReport::to_text() const {
  std::ostringstream o;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "tokens            %lld (vocab %lld)\n"
                "logit |diff|      max %.6g  mean %.6g  (max |logit| %.4g)\n"
                "top-1 agreement   %.2f%%\n"
                "perplexity        kernel %.6f  reference %.6f  (diff %.4f%%)\n"
                "activation flips  %lld of %lld quantized activations (%lld by more than 1)\n",
                (long long)tokens, (long long)vocab, max_abs_diff, mean_abs_diff, max_abs_logit,
                100 * top1_agreement, ppl_kernel, ppl_reference, 100 * ppl_rel_diff,
                (long long)acts_flipped, (long long)acts_compared, (long long)flips_beyond_one);
  o << buf;
  if (forced_run) {
    std::snprintf(buf, sizeof buf,
                  "forced x_q        logit |diff| max %.6g  mean %.6g  (%lld float-noise flips, "
                  "%lld beyond one step)\n"
                  "linear layers     %lld calls bit-exact checked, %lld mismatches\n",
                  forced_max_abs_diff, forced_mean_abs_diff, (long long)forced_flips,
                  (long long)forced_beyond_one, (long long)linear_checks,
                  (long long)linear_mismatches);
    o << buf;
  }
  if (embedding) {
    const EmbeddingEffect& e = *embedding;
    std::snprintf(buf, sizeof buf,
                  "embedding         %s -> %s (head %.1f -> %.1f MB), kernel path each, "
                  "informational:\n"
                  "                  top-1 agreement %.2f%%, logit |diff| max %.6g mean %.6g, "
                  "perplexity %.6f -> %.6f (%+.4f%%)\n",
                  e.stored.c_str(), e.encoded.c_str(), (double)e.stored_bytes / 1e6,
                  (double)e.encoded_bytes / 1e6, 100 * e.top1_agreement, e.max_abs_diff,
                  e.mean_abs_diff, e.ppl_stored, e.ppl_encoded,
                  100 * (e.ppl_encoded / e.ppl_stored - 1.0));
    o << buf;
  }
  if (pass()) {
    o << "PASS\n";
  } else {
    for (const auto& f : failures) o << "FAIL: " << f << "\n";
  }
  return o.str();
}

std::string ValidateReport::to_json() const {
  std::ostringstream o;
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "{\"tokens\": %lld, \"vocab\": %lld, \"max_abs_diff\": %.9g, \"mean_abs_diff\": %.9g, "
      "\"max_abs_logit\": %.9g, \"top1_agreement\": %.6f, \"ppl_kernel\": %.9g, "
      "\"ppl_reference\": %.9g, \"ppl_rel_diff\": %.9g, \"acts_compared\": %lld, "
      "\"acts_flipped\": %lld, \"flips_beyond_one\": %lld, \"forced_run\": %s, "
      "\"forced_max_abs_diff\": %.9g, \"forced_mean_abs_diff\": %.9g, \"forced_flips\": %lld, "
      "\"forced_beyond_one\": %lld, \"linear_checks\": %lld, \"linear_mismatches\": %lld, "
      "\"pass\": %s, \"failures\": [",
      (long long)tokens, (long long)vocab, max_abs_diff, mean_abs_diff, max_abs_logit,
      top1_agreement, ppl_kernel, ppl_reference, ppl_rel_diff, (long long)acts_compared,
      (long long)acts_flipped, (long long)flips_beyond_one, forced_run ? "true" : "false",
      forced_max_abs_diff, forced_mean_abs_diff, (long long)forced_flips,
      (long long)forced_beyond_one, (long long)linear_checks, (long long)linear_mismatches,
      pass() ? "true" : "false");
  o << buf;
  for (size_t i = 0; i < failures.size(); ++i) {
    o << (i ? ", " : "") << "\"";
    for (char c : failures[i]) {
      if (c == '"' || c == '\\') o << '\\';
      o << c;
    }
    o << "\"";
  }
  o << "]";
  if (embedding) {
    const EmbeddingEffect& e = *embedding;
    std::snprintf(buf, sizeof buf,
                  ", \"embedding\": {\"stored\": \"%s\", \"encoded\": \"%s\", "
                  "\"stored_bytes\": %lld, \"encoded_bytes\": %lld, \"top1_agreement\": %.6f, "
                  "\"max_abs_diff\": %.9g, \"mean_abs_diff\": %.9g, \"max_abs_logit\": %.9g, "
                  "\"ppl_stored\": %.9g, \"ppl_encoded\": %.9g, \"ppl_rel_diff\": %.9g}",
                  e.stored.c_str(), e.encoded.c_str(), (long long)e.stored_bytes,
                  (long long)e.encoded_bytes, e.top1_agreement, e.max_abs_diff, e.mean_abs_diff,
                  e.max_abs_logit, e.ppl_stored, e.ppl_encoded, e.ppl_rel_diff);
    o << buf;
  }
  o << "}";
  return o.str();
}

}  // namespace tritune
