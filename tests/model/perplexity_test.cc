// Strided-window perplexity: one window equals the all-position logits; with overlap every
// token after the first is scored exactly once; bad options are refused.
#include "model/perplexity.h"

#include <gtest/gtest.h>

#include "kernels/error.h"
#include "model/validate.h"
#include "tests/model/tiny_model.h"

namespace tritune {
namespace {

TEST(Perplexity, OneWindowEqualsFullForward) {
  auto w = testing::make_tiny_model();
  Transformer tf(w, {Path::kKernel, 2, KvType::kF32, 0});
  const auto toks = testing::tiny_tokens(30, w->hp.vocab);
  std::vector<float> logits(toks.size() * (size_t)w->hp.vocab);
  tf.forward(toks.data(), 30, 0, logits.data());
  const double want = perplexity_from_logits(logits.data(), w->hp.vocab, toks);
  PerplexityOptions opt;
  opt.ctx = 40;
  const PerplexityResult r = perplexity(tf, toks, opt);
  EXPECT_EQ(r.windows, 1);
  EXPECT_EQ(r.scored, 29);
  EXPECT_NEAR(r.ppl, want, 1e-9 * want);
  EXPECT_GT(r.ppl, 1.0);
}

TEST(Perplexity, StridedWindowsScoreEveryTokenOnce) {
  auto w = testing::make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 0});
  const auto toks = testing::tiny_tokens(50, w->hp.vocab, 4);
  PerplexityOptions opt;
  opt.ctx = 16;
  opt.stride = 6;
  int64_t rows = 0;
  opt.on_logits = [&](const float*, int64_t n) { rows += n; };
  const PerplexityResult r = perplexity(tf, toks, opt);
  EXPECT_EQ(r.scored, 49);
  EXPECT_EQ(rows, 49);
  EXPECT_EQ(r.windows, 7);  // windows start at 0, 6, ..., 36 (the one at 36 reaches 50)
  // Less context than one full window, so not the same number, but the same ballpark.
  opt.ctx = 50;
  opt.on_logits = nullptr;
  const PerplexityResult full = perplexity(tf, toks, opt);
  EXPECT_NE(r.ppl, full.ppl);
  EXPECT_NEAR(std::log(r.ppl), std::log(full.ppl), 0.5);
}

TEST(Perplexity, DefaultStrideIsHalfTheWindow) {
  auto w = testing::make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 0});
  const auto toks = testing::tiny_tokens(50, w->hp.vocab, 4);
  PerplexityOptions opt;
  opt.ctx = 16;  // stride 0: ctx / 2 = 8
  const PerplexityResult def = perplexity(tf, toks, opt);
  // Windows start at 0, 8, 16, 24, 32 and 40 (the one at 40 reaches the 50th token).
  EXPECT_EQ(def.windows, 6);
  EXPECT_EQ(def.scored, 49);
  opt.stride = 8;
  const PerplexityResult eight = perplexity(tf, toks, opt);
  EXPECT_EQ(eight.windows, 6);
  EXPECT_EQ(def.ppl, eight.ppl);
}

TEST(Perplexity, RejectsBadOptions) {
  auto w = testing::make_tiny_model();
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 32});
  const auto toks = testing::tiny_tokens(40, w->hp.vocab);
  PerplexityOptions opt;
  opt.ctx = 64;  // beyond the context of 32
  EXPECT_THROW(perplexity(tf, toks, opt), Error);
  opt.ctx = 16;
  opt.stride = 17;
  EXPECT_THROW(perplexity(tf, toks, opt), Error);
  // A window of one position has no target to score: refused, not a perplexity of 0 / 0.
  opt.ctx = 1;
  opt.stride = 0;
  EXPECT_THROW(perplexity(tf, toks, opt), Error);
  opt.stride = 0;
  EXPECT_THROW(perplexity(tf, {1}, opt), Error);
}

// Weights that are finite but overflow float in the forward pass (an output norm of 3e38) give
// NaN logits: an error naming where, not "perplexity nan" with success.
TEST(Perplexity, NonFiniteLogitsAreAnError) {
  auto w = testing::make_tiny_model();
  w->output_norm.assign(w->output_norm.size(), 3e38f);
  Transformer tf(w, {Path::kKernel, 1, KvType::kF32, 0});
  const auto toks = testing::tiny_tokens(20, w->hp.vocab);
  PerplexityOptions opt;
  opt.ctx = 16;
  try {
    perplexity(tf, toks, opt);
    ADD_FAILURE() << "perplexity of NaN logits returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at position 0 is"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(the model produced invalid values)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tritune
