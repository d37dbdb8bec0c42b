// tritune validate's accounting on tiny models: a clean model passes with float-noise
// differences only; a simulated tie flip is counted and explained (the forced run agrees); a
// simulated kernel bug fails loudly even though top-1 and perplexity barely move.
#include "model/validate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/error.h"
#include "kernels/json.h"
#include "model/transformer.h"
#include "tests/model/tiny_model.h"

namespace tritune {
namespace {

using testing::make_tiny_model;
using testing::tiny_tokens;

// Quantized inputs per token of every layer: qkv, o, gate/up, down.
int64_t acts_per_token(const HParams& hp) {
  return hp.layers * (hp.hidden + hp.heads * hp.head_dim + hp.hidden + hp.ffn);
}

TEST(Validate, CleanModelPasses) {
  auto w = make_tiny_model();
  const auto toks = tiny_tokens(20, w->hp.vocab);
  ValidateOptions opt;
  opt.threads = 2;
  const ValidateReport r = validate_model(w, toks, opt);
  EXPECT_TRUE(r.pass()) << r.to_text();
  const HParams& hp = w->hp;
  EXPECT_EQ(r.acts_compared, 20 * acts_per_token(hp));  // every input of every layer and token
  EXPECT_EQ(r.linear_checks, hp.layers * 7);
  EXPECT_EQ(r.linear_mismatches, 0);
  EXPECT_EQ(r.forced_beyond_one, 0);
  EXPECT_GT(r.max_abs_logit, 1.0);
  EXPECT_LE(r.forced_max_abs_diff, 1e-4 * r.max_abs_logit);
  EXPECT_NEAR(r.ppl_kernel, r.ppl_reference, 1e-3 * r.ppl_reference);
  EXPECT_NE(r.to_json().find("\"pass\": true"), std::string::npos);
}

// A text longer than the transformer's micro-batch reaches each quantization site once per
// micro-batch; every call's inputs are recorded and replayed in order (the last one used to
// overwrite the others, and the check failed with "count_flips: shapes differ").
TEST(Validate, TextsLongerThanAMicroBatchAreComparedCallByCall) {
  testing::TinySpec spec;
  spec.context = Transformer::kMicroBatch + 40;
  auto w = make_tiny_model(spec);
  const int64_t n = Transformer::kMicroBatch + 9;
  const auto toks = tiny_tokens(n, w->hp.vocab);
  ValidateOptions opt;
  opt.threads = 2;
  const ValidateReport r = validate_model(w, toks, opt);
  EXPECT_TRUE(r.pass()) << r.to_text();
  const HParams& hp = w->hp;
  EXPECT_EQ(r.acts_compared, n * acts_per_token(hp));
  EXPECT_EQ(r.linear_checks, 2 * hp.layers * 7);  // each linear layer once per micro-batch
  EXPECT_EQ(r.linear_mismatches, 0);
}

// Moves one activation of layer 0's down_proj input by one step before the kernel run records
// it, as a float rounding difference flipping a tie would.
void flip_one(int64_t layer, int site, QuantizedActs& a) {
  if (layer == 0 && site == (int)QuantSite::kDown) {
    int8_t& q = a.q[(size_t)(3 * a.k_stride + 5)];
    const int step = q < 127 ? 1 : -1;
    q = (int8_t)(q + step);
    a.sum[3] += step;  // kernels use the per-token sum: keep it consistent
  }
}

TEST(Validate, TieFlipIsCountedAndExplained) {
  auto w = make_tiny_model();
  const auto toks = tiny_tokens(20, w->hp.vocab);
  ValidateOptions opt;
  opt.tamper_before_record = flip_one;
  const ValidateReport r = validate_model(w, toks, opt);
  // The free reference run saw the flip (and what it propagated into later inputs of token 3).
  EXPECT_GE(r.acts_flipped, 1);
  EXPECT_GT(r.max_abs_diff, 1e-5 * r.max_abs_logit);
  // Forced onto the kernel's inputs the reference agrees again and counts the flipped element
  // as a one-step difference of its own quantization.
  EXPECT_GE(r.forced_flips, 1);
  EXPECT_EQ(r.forced_beyond_one, 0);
  EXPECT_LE(r.forced_max_abs_diff, 1e-4 * r.max_abs_logit);
  EXPECT_TRUE(r.pass()) << r.to_text();
}

TEST(Validate, KernelBugFailsLoudly) {
  auto w = make_tiny_model();
  const auto toks = tiny_tokens(20, w->hp.vocab);
  ValidateOptions opt;
  // The kernel computes with a slightly wrong scale that the recording does not show.
  opt.tamper_after_record = [](int64_t layer, int site, QuantizedActs& a) {
    if (layer == 1 && site == (int)QuantSite::kO) {
      for (auto& s : a.scale) s *= 1.002f;
    }
  };
  const ValidateReport r = validate_model(w, toks, opt);
  EXPECT_FALSE(r.pass()) << r.to_text();
  EXPECT_GT(r.forced_max_abs_diff, 1e-4 * r.max_abs_logit);
  EXPECT_NE(r.to_text().find("FAIL"), std::string::npos);
  EXPECT_NE(r.to_json().find("\"pass\": false"), std::string::npos);
}

TEST(Validate, LargeQuantizationDifferenceIsNotATie) {
  auto w = make_tiny_model();
  const auto toks = tiny_tokens(12, w->hp.vocab);
  ValidateOptions opt;
  opt.tamper_before_record = [](int64_t layer, int site, QuantizedActs& a) {
    if (layer == 0 && site == (int)QuantSite::kQKV) {
      const int8_t to = (int8_t)(a.q[0] > 0 ? -100 : 100);
      a.sum[0] += to - a.q[0];
      a.q[0] = to;
    }
  };
  const ValidateReport r = validate_model(w, toks, opt);
  EXPECT_EQ(r.forced_beyond_one, 1);
  EXPECT_FALSE(r.pass());
}

TEST(Validate, CountFlips) {
  QuantizedActs a = quantize_acts(std::vector<float>{1, -2, 3, 0.5f, 7, 8}.data(), 2, 3, 3, 4);
  QuantizedActs b = a;
  b.q[1] += 1;  // token 0, element 1: one step
  b.q[4] -= 3;  // token 1, element 0: three steps
  b.q[3] = 99;  // token 0 padding: not compared
  FlipCount c;
  count_flips(a, b, &c);
  EXPECT_EQ(c.compared, 6);
  EXPECT_EQ(c.flipped, 2);
  EXPECT_EQ(c.beyond_one, 1);
  // Two steps are already more than one rounding step (a tie flip moves by one).
  b = a;
  b.q[2] -= 2;  // token 0, element 2 (127, the row's absmax, to 125)
  FlipCount two;
  count_flips(a, b, &two);
  EXPECT_EQ(two.flipped, 1);
  EXPECT_EQ(two.beyond_one, 1);
  QuantizedActs other = quantize_acts(std::vector<float>{1, 2}.data(), 1, 2, 2);
  EXPECT_THROW(count_flips(a, other, &c), Error);
}

// The report's figures follow from their definitions over the two runs' logits, computed here
// on their own: the kernel path's logits (--logits-out) and a free reference run, max and mean
// of |kernel - reference| over every logit (n x V of them), top-1 agreement per token; the JSON
// carries the same numbers under their own names, and a bar equal to the agreement is met.
TEST(Validate, ReportFollowsFromTheLogitsOfBothRuns) {
  auto w = make_tiny_model();
  const int64_t n = 20, V = w->hp.vocab;
  const auto toks = tiny_tokens(n, V);
  const std::string path = ::testing::TempDir() + "/validate_report_logits.f32";
  ValidateOptions opt;
  opt.threads = 2;
  opt.logits_out = path;
  const ValidateReport r = validate_model(w, toks, opt);
  std::vector<float> lk((size_t)(n * V));
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fread(lk.data(), 4, lk.size(), f), lk.size());
    EXPECT_EQ(std::fgetc(f), EOF);  // exactly n rows of V floats
    std::fclose(f);
  }
  std::remove(path.c_str());
  std::vector<float> lr((size_t)(n * V));
  {
    Transformer ref(w, {Path::kReference, 2, KvType::kF32, n});
    ref.forward(toks.data(), n, 0, lr.data());
  }
  double mx = 0, sum = 0;
  int64_t agree = 0;
  for (int64_t i = 0; i < n * V; ++i) {
    const double d = std::fabs((double)lk[(size_t)i] - (double)lr[(size_t)i]);
    mx = std::max(mx, d);
    sum += d;
  }
  for (int64_t t = 0; t < n; ++t) {
    const float* a = lk.data() + t * V;
    const float* b = lr.data() + t * V;
    agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
  }
  ASSERT_GT(mx, 0.0);  // the two paths sum in different orders
  EXPECT_DOUBLE_EQ(r.max_abs_diff, mx);
  EXPECT_NEAR(r.mean_abs_diff, sum / (double)(n * V), 1e-9 * mx);
  EXPECT_LT(r.mean_abs_diff, r.max_abs_diff);
  EXPECT_DOUBLE_EQ(r.top1_agreement, (double)agree / (double)n);
  // JSON: the same figures under their names.
  const json::Value j = json::parse(r.to_json(), "validate json");
  EXPECT_EQ(j.at("tokens").as_int64(), n);
  EXPECT_EQ(j.at("vocab").as_int64(), V);
  EXPECT_EQ(j.at("acts_compared").as_int64(), n * acts_per_token(w->hp));
  EXPECT_EQ(j.at("acts_flipped").as_int64(), r.acts_flipped);
  EXPECT_EQ(j.at("flips_beyond_one").as_int64(), r.flips_beyond_one);
  EXPECT_EQ(j.at("forced_flips").as_int64(), r.forced_flips);
  EXPECT_EQ(j.at("forced_beyond_one").as_int64(), 0);
  EXPECT_EQ(j.at("linear_checks").as_int64(), w->hp.layers * 7);
  EXPECT_EQ(j.at("linear_mismatches").as_int64(), 0);
  EXPECT_NEAR(j.at("max_abs_diff").as_double(), mx, 1e-8 * mx);
  EXPECT_NEAR(j.at("mean_abs_diff").as_double(), sum / (double)(n * V), 1e-8 * mx);
  EXPECT_NEAR(j.at("top1_agreement").as_double(), (double)agree / (double)n, 1e-6);
  // "minimum top-1 agreement": an agreement equal to the bar meets it.
  opt.logits_out.clear();
  opt.min_top1 = (double)agree / (double)n;
  const ValidateReport at_bar = validate_model(w, toks, opt);
  EXPECT_TRUE(at_bar.pass()) << at_bar.to_text();
  opt.min_top1 = std::nextafter((double)agree / (double)n, 2.0);
  if (agree < n) {
    EXPECT_FALSE(validate_model(w, toks, opt).pass());
  }
}

TEST(Validate, PerplexityFromLogits) {
  // Uniform logits over 4 tokens: perplexity 4 whatever the targets.
  std::vector<float> logits(3 * 4, 0.5f);
  EXPECT_NEAR(perplexity_from_logits(logits.data(), 4, {0, 1, 2}), 4.0, 1e-9);
  // Certain predictions: perplexity ~1.
  std::vector<float> sure(2 * 3, -100.0f);
  sure[0 * 3 + 2] = 100.0f;
  sure[1 * 3 + 1] = 100.0f;
  EXPECT_NEAR(perplexity_from_logits(sure.data(), 3, {0, 2, 1}), 1.0, 1e-9);
  EXPECT_THROW(perplexity_from_logits(sure.data(), 3, {0}), Error);
  // Extreme logits (a damaged head): both perplexities overflow, their ratio does not.
  std::vector<float> wild(2 * 3, 0.0f);
  wild[0 * 3 + 0] = 1.8e10f;  // the target is token 2, 1.8e10 below the top
  wild[1 * 3 + 0] = 1.8e10f;
  const double a = mean_nll_from_logits(wild.data(), 3, {0, 2, 2});
  EXPECT_NEAR(a, 1.8e10, 1e4);
  EXPECT_TRUE(std::isinf(perplexity_from_logits(wild.data(), 3, {0, 2, 2})));
  EXPECT_EQ(ppl_rel_diff(a, a), 0.0);
  EXPECT_NEAR(ppl_rel_diff(a + 0.01, a), std::expm1(0.01), 1e-5);  // a's ulp: 4e-6
  EXPECT_NEAR(ppl_rel_diff(std::log(4.0), std::log(5.0)), 0.2, 1e-12);
}

}  // namespace
}  // namespace tritune
