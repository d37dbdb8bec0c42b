// Re-encoding the embedding and output head at load (`--embd-type`, requantize_embeddings):
// every row decodes close to the stored one, the tied/untied cases convert what they hold, the
// same type is left alone, impossible requests name the tensor and the fix; and
// compare_embeddings measures the change (none for an identical model, some for a coarser head).
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/error.h"
#include "model/convert.h"
#include "model/ggml_types.h"
#include "model/validate.h"
#include "tests/model/tiny_model.h"

namespace tritune {
namespace {

using testing::make_tiny_model;
using testing::tiny_tokens;
using testing::TinySpec;

std::vector<float> decode(const RawMatrix& m) {
  std::vector<float> f((size_t)(m.rows * m.cols));
  ggml::dequantize_rows(m.ggml_type, m.data, m.cols, m.rows, 0, m.rows, f.data());
  return f;
}

// Max |a - b| over each row, relative to the row's max |a|.
double max_row_error(const std::vector<float>& a, const std::vector<float>& b, int64_t cols) {
  double worst = 0;
  for (size_t r = 0; r < a.size() / (size_t)cols; ++r) {
    double amax = 0, err = 0;
    for (int64_t j = 0; j < cols; ++j) {
      amax = std::max(amax, (double)std::fabs(a[r * cols + j]));
      err = std::max(err, (double)std::fabs(a[r * cols + j] - b[r * cols + j]));
    }
    if (amax > 0) worst = std::max(worst, err / amax);
  }
  return worst;
}

TEST(Requantize, TiedEmbeddingToQ6kAndQ8) {
  TinySpec s;
  s.hidden = 256;  // one Q6_K block per row
  s.embd_type = kGgmlF32;
  for (uint32_t type : {(uint32_t)ggml::kQ6_K, (uint32_t)ggml::kQ8_0, (uint32_t)ggml::kF16}) {
    auto w = make_tiny_model(s);
    const std::vector<float> before = decode(w->tok_embd);
    const std::vector<std::string> notes = requantize_embeddings(*w, type, 2);
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_NE(notes[0].find(ggml::type_name(type)), std::string::npos) << notes[0];
    EXPECT_EQ(w->tok_embd.ggml_type, type);
    EXPECT_EQ(w->tok_embd.bytes, w->tok_embd.rows * ggml::row_bytes(type, s.hidden));
    EXPECT_EQ(w->tok_embd.data, w->tok_embd.owned.data());
    EXPECT_FALSE(w->tok_embd.file_mapped);
    EXPECT_EQ(w->output.rows, 0);  // still tied
    // Q6_K: within a step of a row's largest group (1/31 of its max); Q8_0 half a step (1/254)
    // plus the f16 rounding of the block scale over 127 steps (2^-11); f16 tiny.
    const double bound = type == ggml::kQ6_K   ? 1.05 / 31
                         : type == ggml::kQ8_0 ? 0.5 / 127 + 1.0 / 2048
                                               : 1e-3;
    EXPECT_LE(max_row_error(before, decode(w->tok_embd), s.hidden), bound) << notes[0];
    // Asking again for the type it now has changes nothing.
    const uint8_t* data = w->tok_embd.data;
    EXPECT_TRUE(requantize_embeddings(*w, type, 1).empty());
    EXPECT_EQ(w->tok_embd.data, data);
  }
}

// A table larger than one conversion chunk per thread (about 2^20 values): each thread converts
// its rows in several chunks, and every row of every chunk must be its own row re-encoded (8300
// rows of 256: 4096 rows per chunk, 2 or 3 chunks per thread on 1 and 2 threads).
TEST(Requantize, TablesOfSeveralChunksPerThreadKeepEveryRow) {
  TinySpec s;
  s.hidden = 256;
  s.vocab = 8300;
  s.embd_type = kGgmlF32;
  for (int threads : {1, 2}) {
    auto w = make_tiny_model(s);
    const std::vector<float> before = decode(w->tok_embd);
    ASSERT_EQ(requantize_embeddings(*w, ggml::kQ8_0, threads).size(), 1u);
    ASSERT_EQ(w->tok_embd.ggml_type, (uint32_t)ggml::kQ8_0);
    const std::vector<float> after = decode(w->tok_embd);
    // Q8_0: half a step (1/254 of a block's max) plus the f16 rounding of the block scale.
    const double bound = 0.5 / 127 + 1.0 / 2048;
    for (int64_t r = 0; r < s.vocab; ++r) {
      const std::vector<float> a(before.begin() + r * s.hidden,
                                 before.begin() + (r + 1) * s.hidden);
      const std::vector<float> b(after.begin() + r * s.hidden, after.begin() + (r + 1) * s.hidden);
      ASSERT_LE(max_row_error(a, b, s.hidden), bound)
          << "row " << r << ", " << threads << " threads";
    }
  }
}

// The load-time hint: a float head that is a large share of a token's bytes names the option and
// the bytes Q6_K would stream; a quantized or small head gets no note.
TEST(Requantize, FloatHeadNoteNamesTheFix) {
  TinySpec s;
  s.hidden = 256;
  s.embd_type = kGgmlF32;
  auto w = make_tiny_model(s);  // vocab 320 x 256 f32 = 327 KB against a few KB of layers
  const std::string note = float_head_note(*w);
  EXPECT_NE(note.find("F32"), std::string::npos) << note;
  EXPECT_NE(note.find("--embd-type q6_k"), std::string::npos) << note;
  EXPECT_NE(note.find("streams 0.1 MB"), std::string::npos) << note;  // 96 x 256 x 4 bytes
  requantize_embeddings(*w, ggml::kQ8_0, 1);
  EXPECT_EQ(float_head_note(*w), "") << "a Q8_0 head needs no hint";
  // Rows that Q6_K's 256-value blocks do not fit: the hint offers Q8_0.
  s.hidden = 128;
  auto w128 = make_tiny_model(s);
  const std::string n128 = float_head_note(*w128);
  EXPECT_NE(n128.find("--embd-type q8_0"), std::string::npos) << n128;
  // A float head under a quarter of the bytes: no note. Make the layers heavy by pretending.
  w128->layers[0].w_gate.data.resize(w128->tok_embd.bytes * 4);
  EXPECT_EQ(float_head_note(*w128), "");
}

TEST(Requantize, UntiedOutputConvertsToo) {
  TinySpec s;
  s.hidden = 256;
  s.tied = false;
  s.embd_type = kGgmlF16;
  s.output_type = kGgmlQ8_0;
  auto w = make_tiny_model(s);
  const std::vector<float> out_before = decode(w->output);
  const auto notes = requantize_embeddings(*w, ggml::kQ6_K, 3);
  EXPECT_EQ(notes.size(), 2u);
  EXPECT_EQ(w->tok_embd.ggml_type, (uint32_t)ggml::kQ6_K);
  EXPECT_EQ(w->output.ggml_type, (uint32_t)ggml::kQ6_K);
  EXPECT_LE(max_row_error(out_before, decode(w->output), s.hidden), 1.05 / 31);
  // More threads than rows' chunks, one thread: the same bytes.
  auto w1 = make_tiny_model(s);
  requantize_embeddings(*w1, ggml::kQ6_K, 1);
  EXPECT_EQ(w1->output.owned, w->output.owned);
  EXPECT_EQ(w1->tok_embd.owned, w->tok_embd.owned);
}

TEST(Requantize, ACopiedModelOwnsItsEmbedding) {
  // Re-encoding a copy (validate and the fuzz targets do) must not reach into the original:
  // RawMatrix copies point into their own bytes.
  TinySpec s;
  s.hidden = 256;
  auto w = make_tiny_model(s);
  const std::vector<uint8_t> original = w->tok_embd.owned;
  auto c = std::make_unique<ModelWeights>(*w);
  EXPECT_EQ(c->tok_embd.data, c->tok_embd.owned.data());
  EXPECT_NE(c->tok_embd.data, w->tok_embd.data);
  requantize_embeddings(*c, ggml::kQ6_K, 2);
  EXPECT_EQ(w->tok_embd.owned, original);
  EXPECT_EQ(w->tok_embd.data, w->tok_embd.owned.data());
  // Assignment, and a matrix that points outside `owned` (a mapping) keeps its pointer.
  RawMatrix mapped;
  static const uint8_t bytes[4] = {1, 2, 3, 4};
  mapped.data = bytes;
  mapped.bytes = 4;
  RawMatrix m2 = w->tok_embd;
  m2 = mapped;
  EXPECT_EQ(m2.data, bytes);
  RawMatrix m3;
  m3 = w->tok_embd;
  w.reset();
  EXPECT_EQ(m3.data, m3.owned.data());
  EXPECT_EQ(m3.owned, original);
}

TEST(Requantize, ImpossibleRequestsNameTheTensorAndTheFix) {
  TinySpec s;  // hidden 128: not a multiple of the Q6_K block
  auto w = make_tiny_model(s);
  w->tok_embd.name = "token_embd.weight";
  const uint32_t type_before = w->tok_embd.ggml_type;
  try {
    requantize_embeddings(*w, ggml::kQ6_K, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("token_embd.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("q8_0"), std::string::npos) << m;
  }
  EXPECT_EQ(w->tok_embd.ggml_type, type_before);  // untouched
  EXPECT_THROW(requantize_embeddings(*w, ggml::kTQ2_0, 2), Error);
  EXPECT_THROW(requantize_embeddings(*w, 99, 2), Error);
  // Q8_0 fits 128 (blocks of 32).
  EXPECT_EQ(requantize_embeddings(*w, ggml::kQ8_0, 2).size(), 1u);
}

TEST(Requantize, NonFiniteValuesAreRefusedWithTheTensorNamed) {
  // A damaged table (a NaN or an infinity) has no quantized code: refused, the model untouched.
  TinySpec s;
  s.hidden = 256;
  s.embd_type = kGgmlF32;
  for (uint32_t type : {(uint32_t)ggml::kQ6_K, (uint32_t)ggml::kQ8_0}) {
    for (float bad : {std::nanf(""), -INFINITY}) {
      auto w = make_tiny_model(s);
      w->tok_embd.name = "token_embd.weight";
      ASSERT_EQ(w->tok_embd.ggml_type, (uint32_t)ggml::kF32);
      float* f = reinterpret_cast<float*>(const_cast<uint8_t*>(w->tok_embd.data));
      f[3 * s.hidden + 5] = bad;
      const uint8_t* data = w->tok_embd.data;
      try {
        requantize_embeddings(*w, type, 2);
        FAIL() << "expected an error";
      } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("token_embd.weight"), std::string::npos) << m;
        EXPECT_NE(m.find(std::isnan(bad) ? "is NaN" : "is infinite"), std::string::npos) << m;
        EXPECT_NE(m.find(ggml::type_name(type)), std::string::npos) << m;
      }
      EXPECT_EQ(w->tok_embd.ggml_type, (uint32_t)ggml::kF32);
      EXPECT_EQ(w->tok_embd.data, data);
    }
  }
}

TEST(Requantize, CompareEmbeddingsMeasuresTheChange) {
  TinySpec s;
  s.hidden = 256;
  s.embd_type = kGgmlF32;
  std::shared_ptr<const ModelWeights> stored = make_tiny_model(s);
  const auto toks = tiny_tokens(24, s.vocab);
  // The same weights on both sides: no difference at all.
  const EmbeddingEffect same =
      compare_embeddings(stored, make_tiny_model(s), toks, 2, KvType::kF32);
  EXPECT_EQ(same.max_abs_diff, 0.0);
  EXPECT_EQ(same.top1_agreement, 1.0);
  EXPECT_EQ(same.ppl_rel_diff, 0.0);
  EXPECT_EQ(same.stored, "F32");
  // Q6_K: some difference, small against the logits; the types and sizes are reported.
  auto q6 = make_tiny_model(s);
  requantize_embeddings(*q6, ggml::kQ6_K, 2);
  const EmbeddingEffect e = compare_embeddings(stored, q6, toks, 2, KvType::kF32);
  EXPECT_EQ(e.stored, "F32");
  EXPECT_EQ(e.encoded, "Q6_K");
  EXPECT_EQ(e.stored_bytes, s.vocab * s.hidden * 4);
  EXPECT_EQ(e.encoded_bytes, s.vocab * 210);
  EXPECT_GT(e.max_abs_diff, 0.0);
  EXPECT_LT(e.max_abs_diff, 0.2 * e.max_abs_logit);
  EXPECT_GT(e.mean_abs_diff, 0.0);
  EXPECT_NEAR(e.ppl_encoded, e.ppl_stored, 0.2 * e.ppl_stored);
  // In the report: text and JSON.
  ValidateReport r;
  r.embedding = e;
  EXPECT_NE(r.to_text().find("F32 -> Q6_K"), std::string::npos) << r.to_text();
  EXPECT_NE(r.to_json().find("\"encoded\": \"Q6_K\""), std::string::npos) << r.to_json();
  // A model of another shape is refused.
  TinySpec other = s;
  other.vocab = s.vocab + 1;
  EXPECT_THROW(compare_embeddings(stored, make_tiny_model(other), toks, 1, KvType::kF32), Error);
}

}  // namespace
}  // namespace tritune
