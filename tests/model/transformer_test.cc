// The transformer on tiny in-memory models: KV-cache decode equals full recompute, batched
// prefill equals token-by-token, kernel path agrees with the reference path, each linear layer
// is bit-exact against the format's integer reference, and bad inputs give clear errors.
#include "model/transformer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/error.h"
#include "kernels/memory_budget.h"
#include "kernels/thread_pool.h"
#include "model/float_model.h"
#include "model/validate.h"
#include "tests/model/tiny_model.h"

namespace tritune {
namespace {

using testing::make_tiny_model;
using testing::tiny_tokens;
using testing::TinySpec;

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, (double)std::fabs(x));
  return m;
}

double max_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

// All-position logits of one batched forward.
std::vector<float> all_logits(Transformer& tf, const std::vector<int32_t>& toks) {
  std::vector<float> out(toks.size() * (size_t)tf.hp().vocab);
  tf.reset();
  tf.forward(toks.data(), (int64_t)toks.size(), 0, out.data());
  return out;
}

class PathTest : public ::testing::TestWithParam<Path> {};

TEST_P(PathTest, BatchedPrefillEqualsTokenByToken) {
  auto w = make_tiny_model();
  Transformer tf(w, {GetParam(), 2, KvType::kF32, 0});
  const auto toks = tiny_tokens(12, w->hp.vocab);
  const int64_t V = w->hp.vocab;
  const std::vector<float> batched = all_logits(tf, toks);
  ASSERT_GT(max_abs(batched), 0.1);  // the model computes something
  tf.reset();
  for (size_t i = 0; i < toks.size(); ++i) {
    std::vector<float> one((size_t)V);
    tf.forward(&toks[i], 1, 0, one.data());
    // Same per-token arithmetic in the same order: only the kernel's GEMM-vs-GEMV variant
    // differs, and its integer sums are exact, so the logits agree to float noise.
    EXPECT_LE(max_diff(one.data(), batched.data() + i * V, V), 1e-4 * max_abs(batched))
        << "position " << i;
  }
  EXPECT_EQ(tf.pos(), 12);
}

// A prompt longer than the micro-batch runs as several batches: the logits of rows that span
// the boundaries (from row 250 of 549, micro-batches of 256) land at the right offsets and match
// a run in batches of 100 of the same tokens.
TEST_P(PathTest, LongPromptMicroBatchesMatchSmallerBatches) {
  TinySpec spec;
  spec.context = 600;
  auto w = make_tiny_model(spec);
  Transformer tf(w, {GetParam(), 2, KvType::kF32, 0});
  const int64_t n = 2 * Transformer::kMicroBatch + 37, from = 250, V = w->hp.vocab;
  const auto toks = tiny_tokens(n, V);
  std::vector<float> one_call((size_t)((n - from) * V), NAN);
  tf.reset();
  tf.forward(toks.data(), n, from, one_call.data());
  EXPECT_EQ(tf.pos(), n);
  ASSERT_TRUE(std::all_of(one_call.begin(), one_call.end(), [](float v) {
    return std::isfinite(v);
  })) << "a logits row was not written";
  ASSERT_GT(max_abs(one_call), 0.1);
  tf.reset();
  std::vector<float> step((size_t)(100 * V));
  for (int64_t c0 = 0; c0 < n; c0 += 100) {
    const int64_t c = std::min<int64_t>(100, n - c0);
    tf.forward(toks.data() + c0, c, 0, step.data());
    for (int64_t i = std::max(c0, from); i < c0 + c; ++i) {
      ASSERT_LE(max_diff(step.data() + (i - c0) * V, one_call.data() + (i - from) * V, V),
                1e-4 * max_abs(one_call))
          << "position " << i;
    }
  }
}

TEST_P(PathTest, KvCacheDecodeEqualsFullRecompute) {
  auto w = make_tiny_model();
  Transformer tf(w, {GetParam(), 1, KvType::kF32, 0});
  Transformer fresh(w, {GetParam(), 1, KvType::kF32, 0});
  const auto toks = tiny_tokens(10, w->hp.vocab, 3);
  const int64_t V = w->hp.vocab;
  // Prefill 4, then decode one at a time; compare each step with a from-scratch run.
  std::vector<float> step((size_t)V);
  tf.forward(toks.data(), 4, 3, step.data());
  for (size_t i = 4; i <= toks.size(); ++i) {
    fresh.reset();
    const std::vector<float> full =
        fresh.forward_last(std::vector<int32_t>(toks.begin(), toks.begin() + (long)i));
    EXPECT_LE(max_diff(step.data(), full.data(), V), 1e-4 * max_abs(full)) << "prefix " << i;
    if (i < toks.size()) tf.forward(&toks[i], 1, 0, step.data());
  }
}

TEST_P(PathTest, F16KvCacheStaysClose) {
  auto w = make_tiny_model();
  Transformer a(w, {GetParam(), 1, KvType::kF32, 0});
  Transformer b(w, {GetParam(), 1, KvType::kF16, 0});
  const auto toks = tiny_tokens(16, w->hp.vocab, 5);
  const auto la = all_logits(a, toks), lb = all_logits(b, toks);
  EXPECT_LE(max_diff(la.data(), lb.data(), (int64_t)la.size()), 0.05 * max_abs(la));
}

INSTANTIATE_TEST_SUITE_P(Paths, PathTest, ::testing::Values(Path::kReference, Path::kKernel),
                         [](const auto& info) { return std::string(path_name(info.param)); });

struct HeadCase {
  uint32_t embd;
  bool tied;
  uint32_t output;
};

class KernelVsReference : public ::testing::TestWithParam<HeadCase> {};

TEST_P(KernelVsReference, LogitsAgree) {
  TinySpec s;
  s.embd_type = GetParam().embd;
  s.tied = GetParam().tied;
  s.output_type = GetParam().output;
  s.hidden = 256;  // Q6_K needs 256-wide rows
  s.heads = 8;
  auto w = make_tiny_model(s);
  const auto toks = tiny_tokens(24, w->hp.vocab, 11);
  ValidateOptions opt;
  opt.threads = 2;
  const ValidateReport r = validate_model(w, toks, opt);
  EXPECT_TRUE(r.pass()) << r.to_text();
  // Norms and attention follow the same canonical float order in both paths and the linear
  // layers are integer-exact, so no activation quantizes differently; only the head's
  // summation order differs (1e-4 of the largest logit is generous; measured ~1e-7).
  EXPECT_EQ(r.acts_flipped, 0) << r.to_text();
  EXPECT_EQ(r.top1_agreement, 1.0) << r.to_text();
  EXPECT_LE(r.max_abs_diff, 1e-4 * r.max_abs_logit) << r.to_text();
}

INSTANTIATE_TEST_SUITE_P(
    Heads, KernelVsReference,
    ::testing::Values(HeadCase{kGgmlF32, true, 0}, HeadCase{kGgmlF16, true, 0},
                      HeadCase{kGgmlBF16, true, 0}, HeadCase{kGgmlQ8_0, true, 0},
                      HeadCase{kGgmlF16, false, kGgmlQ6_K}, HeadCase{kGgmlF32, false, kGgmlQ8_0}),
    [](const auto& info) {
      return head_type_name(info.param.embd) +
             (info.param.tied ? std::string("_tied") : "_out_" + head_type_name(info.param.output));
    });

// An untied model's logits come from output.weight, not from the token embedding: with output
// = -token_embd (f32, so the negation is exact) the body is unchanged and every logit is the
// exact negation of the tied model's; with output = 0 every logit is exactly 0.
TEST(Transformer, UntiedOutputHeadIsTheOneUsed) {
  auto tied = make_tiny_model();
  ASSERT_EQ(tied->output.rows, 0);
  ASSERT_EQ(tied->tok_embd.ggml_type, kGgmlF32);
  auto untied = std::make_shared<ModelWeights>(*tied);
  untied->tok_embd.data = untied->tok_embd.owned.data();
  untied->output = tied->tok_embd;
  untied->output.name = "output.weight";
  RawMatrix& out = untied->output;
  out.data = out.owned.data();
  std::vector<float> w((size_t)(out.rows * out.cols));
  std::memcpy(w.data(), out.owned.data(), out.owned.size());
  for (float& x : w) x = -x;
  std::memcpy(out.owned.data(), w.data(), out.owned.size());
  const auto toks = tiny_tokens(6, tied->hp.vocab, 9);
  for (Path p : {Path::kReference, Path::kKernel}) {
    SCOPED_TRACE(path_name(p));
    Transformer a(tied, {p, 1, KvType::kF32, 0});
    Transformer b(untied, {p, 1, KvType::kF32, 0});
    const std::vector<float> la = a.forward_last(toks), lb = b.forward_last(toks);
    ASSERT_GT(max_abs(la), 0.1);
    for (size_t i = 0; i < la.size(); ++i) ASSERT_EQ(lb[i], -la[i]) << "logit " << i;
  }
  std::memset(out.owned.data(), 0, out.owned.size());
  for (Path p : {Path::kReference, Path::kKernel}) {
    SCOPED_TRACE(path_name(p));
    Transformer b(untied, {p, 1, KvType::kF32, 0});
    EXPECT_EQ(max_abs(b.forward_last(toks)), 0.0);
  }
}

// The whole forward pass against an independent double-precision transcription of BitNet
// b1.58 (HF modeling_bitnet): per layer x += Wo subnorm(attn(rope(Wq h), rope(Wk h), Wv h)) with
// h = norm(x), then x += Wd subnorm(relu(Wg h)^2 * Wu h) with h = norm(x); logits = E norm(x).
// RMSNorm y = w * x / sqrt(mean(x^2) + eps); RoPE rotates the halves (i, i + D/2) by pos *
// theta^(-2i/D); causal softmax attention scaled by 1/sqrt(D), q head h on kv head h / (H/KV).
// Float linear layers (no activation quantization), so only float rounding differs.
TEST(Transformer, MatchesAnIndependentDoublePrecisionForward) {
  TinySpec spec;
  spec.linear_format = Format::kF32;
  auto w = make_tiny_model(spec);
  const HParams& hp = w->hp;
  const int64_t H = hp.hidden, F = hp.ffn, D = hp.head_dim, NH = hp.heads, KVH = hp.kv_heads;
  const int64_t V = hp.vocab, G = NH / KVH;
  const auto toks = tiny_tokens(7, V, 13);
  const int64_t T = (int64_t)toks.size();
  using Vec = std::vector<double>;
  auto norm = [&](const Vec& x, const std::vector<float>& g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / (double)x.size() + (double)hp.rms_eps);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = (double)g[i] * x[i] * r;
    return y;
  };
  auto matvec = [](const PackedWeights& p, const Vec& x) {
    std::vector<float> m((size_t)(p.n * p.k));
    format_traits(p.format).unpack(p, m.data());
    Vec y((size_t)p.n, 0.0);
    for (int64_t r = 0; r < p.n; ++r) {
      for (int64_t c = 0; c < p.k; ++c) {
        y[(size_t)r] += (double)m[(size_t)(r * p.k + c)] * x[(size_t)c];
      }
    }
    return y;
  };
  auto rope = [&](Vec& v, int64_t heads, int64_t pos) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < D / 2; ++i) {
        const double a = pos * std::pow((double)hp.rope_theta, -2.0 * (double)i / (double)D);
        double& x0 = v[(size_t)(h * D + i)];
        double& x1 = v[(size_t)(h * D + i + D / 2)];
        const double y0 = x0 * std::cos(a) - x1 * std::sin(a);
        const double y1 = x1 * std::cos(a) + x0 * std::sin(a);
        x0 = y0;
        x1 = y1;
      }
    }
  };
  const float* E = reinterpret_cast<const float*>(w->tok_embd.data);
  std::vector<Vec> x((size_t)T, Vec((size_t)H));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < H; ++i) x[(size_t)t][(size_t)i] = E[toks[(size_t)t] * H + i];
  }
  for (const LayerWeights& L : w->layers) {
    std::vector<Vec> q, k, v;
    for (int64_t t = 0; t < T; ++t) {
      const Vec h = norm(x[(size_t)t], L.attn_norm);
      q.push_back(matvec(L.wq, h));
      k.push_back(matvec(L.wk, h));
      v.push_back(matvec(L.wv, h));
      rope(q.back(), NH, t);
      rope(k.back(), KVH, t);
    }
    for (int64_t t = 0; t < T; ++t) {
      Vec o((size_t)(NH * D), 0.0);
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t kh = h / G;
        Vec s((size_t)(t + 1));
        double m = -1e300, sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t e = 0; e < D; ++e) {
            d += q[(size_t)t][(size_t)(h * D + e)] * k[(size_t)j][(size_t)(kh * D + e)];
          }
          s[(size_t)j] = d / std::sqrt((double)D);
          m = std::max(m, s[(size_t)j]);
        }
        for (double& e : s) sum += (e = std::exp(e - m));
        for (int64_t j = 0; j <= t; ++j) {
          for (int64_t e = 0; e < D; ++e) {
            o[(size_t)(h * D + e)] += s[(size_t)j] / sum * v[(size_t)j][(size_t)(kh * D + e)];
          }
        }
      }
      const Vec a = matvec(L.wo, norm(o, L.attn_sub_norm));
      for (int64_t i = 0; i < H; ++i) x[(size_t)t][(size_t)i] += a[(size_t)i];
    }
    for (int64_t t = 0; t < T; ++t) {
      const Vec h = norm(x[(size_t)t], L.ffn_norm);
      const Vec g = matvec(L.w_gate, h), u = matvec(L.w_up, h);
      Vec act((size_t)F);
      for (int64_t i = 0; i < F; ++i) {
        const double r = std::max(g[(size_t)i], 0.0);
        act[(size_t)i] = r * r * u[(size_t)i];
      }
      const Vec d = matvec(L.w_down, norm(act, L.ffn_sub_norm));
      for (int64_t i = 0; i < H; ++i) x[(size_t)t][(size_t)i] += d[(size_t)i];
    }
  }
  std::vector<double> want((size_t)(T * V));
  double peak = 0;
  for (int64_t t = 0; t < T; ++t) {
    const Vec h = norm(x[(size_t)t], w->output_norm);
    for (int64_t r = 0; r < V; ++r) {
      double y = 0;
      for (int64_t i = 0; i < H; ++i) y += (double)E[r * H + i] * h[(size_t)i];
      want[(size_t)(t * V + r)] = y;
      peak = std::max(peak, std::fabs(y));
    }
  }
  ASSERT_GT(peak, 0.1);
  for (Path p : {Path::kReference, Path::kKernel}) {
    SCOPED_TRACE(path_name(p));
    Transformer tf(w, {p, 2, KvType::kF32, 0});
    const std::vector<float> got = all_logits(tf, toks);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-4 * peak) << "token " << i / V << " logit " << i % V;
    }
  }
}

TEST(Transformer, FloatFormatModelRunsBothPaths) {
  TinySpec s;
  s.linear_format = Format::kF16;
  auto w = make_tiny_model(s);
  Transformer ref(w, {Path::kReference, 1, KvType::kF32, 0});
  Transformer ker(w, {Path::kKernel, 1, KvType::kF32, 0});
  const auto toks = tiny_tokens(8, w->hp.vocab);
  const auto lr = all_logits(ref, toks), lk = all_logits(ker, toks);
  EXPECT_LE(max_diff(lr.data(), lk.data(), (int64_t)lr.size()), 5e-4 * max_abs(lr));
}

// Identical int8 inputs give identical integer results: the kernel's forward_raw against the
// format's integer reference, for every linear layer of the model.
TEST(Transformer, EveryLinearLayerIsBitExact) {
  auto w = make_tiny_model();
  Transformer ker(w, {Path::kKernel, 1, KvType::kF32, 0});
  std::mt19937_64 rng(9);
  for (int64_t l = 0; l < w->hp.layers; ++l) {
    for (int i = 0; i < (int)LinearId::kCount; ++i) {
      const Linear* L = ker.kernel_linear(l, (LinearId)i);
      ASSERT_NE(L, nullptr);
      for (int64_t tokens : {1, 3, 8}) {
        std::vector<float> x = testing::random_floats(rng, tokens * L->k(), 1.0f);
        const QuantizedActs a = quantize_acts(x.data(), tokens, L->k(), L->k(), L->act_align());
        const int64_t ld = (L->n() + 63) / 64 * 64;
        std::vector<int32_t> got((size_t)(tokens * ld)), want((size_t)(tokens * L->n()));
        L->forward_raw(a, got.data(), ld);
        const PackedWeights& p = i == 0   ? w->layers[l].wq
                                 : i == 1 ? w->layers[l].wk
                                 : i == 2 ? w->layers[l].wv
                                 : i == 3 ? w->layers[l].wo
                                 : i == 4 ? w->layers[l].w_gate
                                 : i == 5 ? w->layers[l].w_up
                                          : w->layers[l].w_down;
        format_traits(p.format).ref_gemm_int(p, a, want.data());
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t j = 0; j < L->n(); ++j) {
            ASSERT_EQ(got[(size_t)(t * ld + j)], want[(size_t)(t * L->n() + j)])
                << "layer " << l << " " << linear_name((LinearId)i) << " token " << t << " row "
                << j;
          }
        }
      }
    }
  }
}

TEST(Transformer, RejectsBadInput) {
  auto w = make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 8});
  std::vector<float> logits((size_t)w->hp.vocab);
  const int32_t bad = (int32_t)w->hp.vocab;
  try {
    tf.forward(&bad, 1, 0, logits.data());
    FAIL() << "token outside the vocabulary accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos);
  }
  const auto toks = tiny_tokens(9, w->hp.vocab);
  EXPECT_THROW(tf.forward(toks.data(), 9, 9, nullptr), Error);        // context 8
  EXPECT_THROW(tf.forward(toks.data(), 2, 5, logits.data()), Error);  // logits_from > n

  auto broken = make_tiny_model();
  broken->layers[1].attn_sub_norm.resize(3);
  try {
    Transformer t2(broken, {Path::kReference, 1, KvType::kF32, 0});
    FAIL() << "wrong norm size accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.1.attn_sub_norm.weight"), std::string::npos);
  }
  auto swapped = make_tiny_model();
  std::swap(swapped->layers[0].wq, swapped->layers[0].w_gate);
  EXPECT_THROW(Transformer(swapped, {Path::kKernel, 1, KvType::kF32, 0}), Error);
  auto odd_heads = make_tiny_model();
  odd_heads->hp.kv_heads = 3;
  EXPECT_THROW(Transformer(odd_heads, {Path::kKernel, 1, KvType::kF32, 0}), Error);
  auto unsupported = make_tiny_model();
  unsupported->tok_embd.ggml_type = 12;  // Q4_K
  try {
    Transformer t3(unsupported, {Path::kKernel, 1, KvType::kF32, 0});
    FAIL() << "unsupported embedding type accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos);
  }
  auto truncated = make_tiny_model();
  truncated->tok_embd.bytes -= 1;
  EXPECT_THROW(Transformer(truncated, {Path::kKernel, 1, KvType::kF32, 0}), Error);
}

TEST(Transformer, ConsumingKernelPathGivesTheSameLogits) {
  auto shared = make_tiny_model();
  auto owned = make_tiny_model();  // same seed: same weights
  Transformer ref(shared, {Path::kKernel, 1, KvType::kF32, 0});
  auto tf = Transformer::consume(owned, {Path::kKernel, 1, KvType::kF32, 0});
  EXPECT_TRUE(owned->layers[0].wq.data.empty());  // moved into the Linear
  EXPECT_EQ(owned->layers[0].wq.n, shared->layers[0].wq.n);
  const auto toks = tiny_tokens(6, shared->hp.vocab);
  const auto a = all_logits(ref, toks), b = all_logits(*tf, toks);
  EXPECT_EQ(a, b);
  // The consumed weights cannot feed the reference path, and say why.
  try {
    Transformer r2(owned, {Path::kReference, 1, KvType::kF32, 0});
    FAIL() << "reference path accepted consumed weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("consume"), std::string::npos);
  }
  EXPECT_THROW(Transformer::consume(make_tiny_model(), {Path::kReference, 1, KvType::kF32, 0}),
               Error);
}

// q/k/v and gate/up as one kernel call each (LinearGroup) give exactly the logits of the
// layers run one by one, prefill and decode, copied or consumed weights; TRITUNE_FUSE=0 and
// TransformerOptions::fuse turn it off, and describe() says which it is.
TEST(Transformer, FusedSitesGiveTheSameLogitsAsSeparateLayers) {
  auto w = make_tiny_model();
  TransformerOptions fused{Path::kKernel, 2, KvType::kF32, 0};
  TransformerOptions apart = fused;
  apart.fuse = false;
  Transformer a(w, fused), b(w, apart);
  EXPECT_NE(a.describe().find("fused"), std::string::npos) << a.describe();
  EXPECT_EQ(b.describe().find("fused"), std::string::npos) << b.describe();
  const auto toks = tiny_tokens(9, w->hp.vocab);
  EXPECT_EQ(all_logits(a, toks), all_logits(b, toks));
  // The members are slices of one buffer: in each part of K, k follows q, v follows k, up
  // follows gate.
  for (int64_t l = 0; l < w->hp.layers; ++l) {
    for (auto [x, y] :
         {std::pair{LinearId::kQ, LinearId::kK}, std::pair{LinearId::kK, LinearId::kV},
          std::pair{LinearId::kGate, LinearId::kUp}}) {
      const Linear* lx = a.kernel_linear(l, x);
      EXPECT_EQ(lx->weight_data() + lx->weight_bytes() / lx->weight_runs(),
                a.kernel_linear(l, y)->weight_data());
    }
  }
  auto consumed = Transformer::consume(make_tiny_model(), fused);
  EXPECT_EQ(all_logits(*consumed, toks), all_logits(b, toks));
  setenv("TRITUNE_FUSE", "0", 1);
  Transformer c(w, fused);
  unsetenv("TRITUNE_FUSE");
  EXPECT_EQ(c.describe().find("fused"), std::string::npos) << c.describe();
  EXPECT_EQ(all_logits(c, toks), all_logits(b, toks));
}

// Decode names each GEMV's weights to the pool's idle workers and the calling thread's tail
// (kernels/thread_pool.h): prefetches only, so the logits are the same with them off, and the
// workers did prefetch while the calling thread ran the small stages.
TEST(Transformer, DecodePrefetchHintsLeaveTheLogitsAlone) {
  auto w = make_tiny_model();
  TransformerOptions opt{Path::kKernel, 2, KvType::kF32, 0};
  Transformer tf(w, opt);
  const auto toks = tiny_tokens(12, w->hp.vocab);
  auto decode = [&] {
    std::vector<float> out(toks.size() * (size_t)w->hp.vocab);
    tf.reset();
    for (size_t i = 0; i < toks.size(); ++i) {
      tf.forward(&toks[i], 1, 0, out.data() + i * (size_t)w->hp.vocab);
    }
    return out;
  };
  const int64_t cap = pool_idle_prefetch_bytes();
  set_pool_idle_prefetch_bytes(0);
  const PoolStats off0 = pool_stats();
  const std::vector<float> plain = decode();
  EXPECT_EQ(pool_stats().idle_prefetch_bytes, off0.idle_prefetch_bytes);
  set_pool_idle_prefetch_bytes(512 << 10);
  const std::vector<float> hinted = decode();
  set_pool_idle_prefetch_bytes(cap);
  EXPECT_EQ(hinted, plain);
  // The hints stay valid pointers into live weights; a hint left behind by a destroyed model
  // is harmless (prefetches never fault): run another model after this one is gone.
  {
    Transformer other(make_tiny_model(), opt);
    other.forward(&toks[0], 1, 0, std::vector<float>((size_t)w->hp.vocab).data());
  }
  decode();
}

TEST(Transformer, FloatModelCopyHoldsTheSameWeights) {
  auto w = make_tiny_model();
  auto f = to_float_model(*w, Format::kF16);
  EXPECT_EQ(f->layers[1].w_down.format, Format::kF16);
  EXPECT_EQ(f->tok_embd.ggml_type, kGgmlF16);
  const PackedWeights& a = w->layers[1].w_down;
  const PackedWeights& b = f->layers[1].w_down;
  std::vector<float> wa((size_t)(a.n * a.k)), wb(wa.size());
  format_traits(a.format).unpack(a, wa.data());
  format_traits(b.format).unpack(b, wb.data());
  for (size_t i = 0; i < wa.size(); ++i) ASSERT_NEAR(wa[i], wb[i], 1e-3 * std::fabs(wa[i]));
  Transformer ker(f, {Path::kKernel, 2, KvType::kF32, 0});
  Transformer ref(f, {Path::kReference, 2, KvType::kF32, 0});
  const auto toks = tiny_tokens(8, w->hp.vocab);
  const auto lk = all_logits(ker, toks), lr = all_logits(ref, toks);
  EXPECT_LE(max_diff(lk.data(), lr.data(), (int64_t)lk.size()), 5e-4 * max_abs(lr));
  EXPECT_THROW(to_float_model(*w, Format::kI2S), Error);
  // A copy that cannot fit is refused before any of it is made: shapes claiming 2 x 10^12
  // weights (no data behind them; nothing reads it).
  if (available_memory_bytes() >= 0) {
    ModelWeights big;
    big.path = "big.gguf";
    big.hp = w->hp;
    big.layers.resize(1);
    big.layers[0].wq.n = big.layers[0].wq.k = 1000000;
    big.layers[0].w_up.n = big.layers[0].w_up.k = 1000000;
    try {
      to_float_model(big, Format::kF16);
      ADD_FAILURE() << "an 8 TB copy was attempted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("the f16 copy of 'big.gguf' would need 7.28 TiB"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Transformer, BytesPerTokenCountsWeightsHeadAndCache) {
  auto w = make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 0});
  int64_t ternary = 0;
  for (int64_t l = 0; l < w->hp.layers; ++l) {
    for (int i = 0; i < (int)LinearId::kCount; ++i) {
      ternary += tf.kernel_linear(l, (LinearId)i)->weight_bytes();
    }
  }
  const int64_t head = w->tok_embd.bytes;
  const int64_t kv_per_pos = 2 * w->hp.layers * w->hp.kv_heads * w->hp.head_dim * 4;
  EXPECT_EQ(tf.bytes_per_token(10), ternary + head + head / w->hp.vocab + 10 * kv_per_pos);
}

// An F16 cache (bench e2e's default, llama-bench's) reads 2 bytes per K or V element: K and
// V, per layer, per KV head, head_dim elements, per position of the context.
TEST(Transformer, BytesPerTokenCountsAnF16CacheAtTwoBytesPerElement) {
  auto w = make_tiny_model();
  Transformer f16(w, {Path::kKernel, 1, KvType::kF16, 0});
  Transformer f32(w, {Path::kKernel, 1, KvType::kF32, 0});
  const int64_t elems_per_pos = 2 * w->hp.layers * w->hp.kv_heads * w->hp.head_dim;
  EXPECT_EQ(f16.bytes_per_token(7) - f16.bytes_per_token(0), 7 * elems_per_pos * 2);
  EXPECT_EQ(f32.bytes_per_token(7) - f32.bytes_per_token(0), 7 * elems_per_pos * 4);
  // The weights, the head and the embedding row do not depend on the cache type.
  EXPECT_EQ(f16.bytes_per_token(0), f32.bytes_per_token(0));
}

// The spans `bench e2e` reads in place: every linear layer in decode order, then the head, each
// exactly the bytes the kernels stream.
TEST(Transformer, WeightSpansAreTheBytesADecodeStepStreams) {
  auto w = make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 0});
  const std::vector<ByteSpan> spans = tf.weight_spans();
  const int n = (int)LinearId::kCount;
  int64_t sum = 0;
  size_t at = 0;
  for (int64_t l = 0; l < w->hp.layers; ++l) {
    for (int i = 0; i < n; ++i) {
      const Linear* L = tf.kernel_linear(l, (LinearId)i);
      // A layer in parts of K (kernels/i2s.h) is one span per part.
      for (int64_t s = 0; s < L->weight_runs(); ++s) {
        ASSERT_LT(at, spans.size());
        const ByteSpan& sp = spans[at++];
        EXPECT_EQ(sp.data, L->weight_data() + s * L->weight_run_stride())
            << "layer " << l << " " << linear_name((LinearId)i) << " part " << s;
        EXPECT_EQ(sp.bytes, L->weight_bytes() / L->weight_runs());
        sum += sp.bytes;
      }
    }
  }
  ASSERT_EQ(at + 1, spans.size());
  EXPECT_EQ(spans.back().data, tf.kernel_head()->weight_data());
  EXPECT_EQ(spans.back().bytes, tf.kernel_head()->weight_bytes());
  sum += spans.back().bytes;
  const int64_t kv_per_pos = 2 * w->hp.layers * w->hp.kv_heads * w->hp.head_dim * 4;
  EXPECT_EQ(tf.bytes_per_token(3), sum + w->tok_embd.bytes / w->hp.vocab + 3 * kv_per_pos);
  Transformer ref(w, {Path::kReference, 1, KvType::kF32, 0});
  EXPECT_TRUE(ref.weight_spans().empty());
}

// The bytes `bench e2e --profile` divides each stage's time into: the stage's own linear layers
// (or the head), summing to the spans' total, nothing for the stages that stream no weights.
TEST(Transformer, StageWeightBytesSplitTheSpansByStage) {
  auto w = make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 0});
  const auto b = tf.stage_weight_bytes();
  auto bytes_of = [&](std::initializer_list<LinearId> ids) {
    int64_t n = 0;
    for (int64_t l = 0; l < w->hp.layers; ++l) {
      for (LinearId id : ids) n += tf.kernel_linear(l, id)->weight_bytes();
    }
    return n;
  };
  EXPECT_EQ(b[(size_t)Stage::kQkv], bytes_of({LinearId::kQ, LinearId::kK, LinearId::kV}));
  EXPECT_EQ(b[(size_t)Stage::kO], bytes_of({LinearId::kO}));
  EXPECT_EQ(b[(size_t)Stage::kGateUp], bytes_of({LinearId::kGate, LinearId::kUp}));
  EXPECT_EQ(b[(size_t)Stage::kDown], bytes_of({LinearId::kDown}));
  EXPECT_EQ(b[(size_t)Stage::kHead], tf.kernel_head()->weight_bytes());
  int64_t total = 0, spans = 0;
  for (int64_t x : b) total += x;
  for (const ByteSpan& s : tf.weight_spans()) spans += s.bytes;
  EXPECT_EQ(total, spans);
  EXPECT_EQ(b[(size_t)Stage::kAttention], 0);
  EXPECT_EQ(b[(size_t)Stage::kNorm], 0);
  Transformer ref(w, {Path::kReference, 1, KvType::kF32, 0});
  for (int64_t x : ref.stage_weight_bytes()) EXPECT_EQ(x, 0);
}

}  // namespace
}  // namespace tritune
