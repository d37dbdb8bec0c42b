// Tiny BitNet models built in memory for the transformer tests (no loader, no files): random
// ternary linear layers packed with the format registry, f32/f16/q8_0/q6_k embeddings.
#pragma once
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/formats.h"
#include "kernels/half.h"
#include "kernels/i2s.h"
#include "model/head.h"
#include "model/weights.h"

namespace tritune::testing {

struct TinySpec {
  int64_t vocab = 96, hidden = 128, ffn = 256, layers = 2, heads = 4, kv_heads = 2;
  int64_t context = 64;
  float theta = 10000.0f;
  uint32_t embd_type = kGgmlF32;  // tok_embd (and the head when tied)
  bool tied = true;
  uint32_t output_type = kGgmlQ8_0;  // when not tied
  Format linear_format = Format::kI2S;
  uint64_t seed = 1;
};

inline std::vector<float> random_floats(std::mt19937_64& rng, int64_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Encodes a dense matrix in a head/embedding type. Q6_K is built from random codes (any bit
// pattern is a valid block) scaled to roughly `scale`, since the tests only need valid data.
inline RawMatrix make_raw(std::mt19937_64& rng, const std::string& name, int64_t rows, int64_t cols,
                          uint32_t type, float scale) {
  RawMatrix m;
  m.name = name;
  m.rows = rows;
  m.cols = cols;
  m.ggml_type = type;
  const std::vector<float> w = random_floats(rng, rows * cols, scale);
  if (type == kGgmlF32) {
    m.owned.resize(w.size() * 4);
    std::memcpy(m.owned.data(), w.data(), m.owned.size());
  } else if (type == kGgmlF16 || type == kGgmlBF16) {
    m.owned.resize(w.size() * 2);
    for (size_t i = 0; i < w.size(); ++i) {
      uint16_t h;
      if (type == kGgmlF16) {
        h = float_to_half(w[i]);
      } else {
        uint32_t b;
        std::memcpy(&b, &w[i], 4);
        h = (uint16_t)(b >> 16);
      }
      std::memcpy(&m.owned[2 * i], &h, 2);
    }
  } else if (type == kGgmlQ8_0) {
    m.owned.resize(w.size() / 32 * 34);
    for (size_t b = 0; b < w.size() / 32; ++b) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w[b * 32 + i]));
      const float d = amax / 127.0f;
      const uint16_t dh = float_to_half(d);
      std::memcpy(&m.owned[b * 34], &dh, 2);
      for (int i = 0; i < 32; ++i) {
        m.owned[b * 34 + 2 + i] = (uint8_t)(int8_t)std::lround(d > 0 ? w[b * 32 + i] / d : 0);
      }
    }
  } else if (type == kGgmlQ6_K) {
    m.owned.resize(w.size() / 256 * 210);
    for (size_t b = 0; b < w.size() / 256; ++b) {
      uint8_t* blk = &m.owned[b * 210];
      for (int i = 0; i < 208; ++i) blk[i] = (uint8_t)rng();
      for (int i = 192; i < 208; ++i) blk[i] = (uint8_t)(int8_t)((int)(rng() % 64) - 32);
      const uint16_t dh = float_to_half(scale / 32.0f / 16.0f);
      std::memcpy(blk + 208, &dh, 2);
    }
  }
  m.data = m.owned.data();
  m.bytes = (int64_t)m.owned.size();
  return m;
}

inline PackedWeights make_linear(std::mt19937_64& rng, int64_t n, int64_t k, Format f) {
  std::vector<int8_t> t((size_t)(n * k));
  for (auto& x : t) x = (int8_t)((int)(rng() % 3) - 1);
  const float scale = 1.0f / std::sqrt((float)k) * (1.0f + (float)(rng() % 100) / 200.0f);
  if (f == Format::kI2S) return i2s_pack_ternary(t.data(), n, k, scale);
  std::vector<float> w(t.size());
  for (size_t i = 0; i < t.size(); ++i) w[i] = t[i] * scale;
  return format_traits(f).pack(w.data(), n, k);
}

inline std::vector<float> make_norm(std::mt19937_64& rng, int64_t n) {
  std::vector<float> v = random_floats(rng, n, 0.1f);
  for (auto& x : v) x += 1.0f;
  return v;
}

inline std::shared_ptr<ModelWeights> make_tiny_model(const TinySpec& s = TinySpec()) {
  std::mt19937_64 rng(s.seed);
  auto m = std::make_shared<ModelWeights>();
  m->path = "tiny";
  HParams& hp = m->hp;
  hp.arch = "bitnet-b1.58";
  hp.vocab = s.vocab;
  hp.hidden = s.hidden;
  hp.ffn = s.ffn;
  hp.layers = s.layers;
  hp.heads = s.heads;
  hp.kv_heads = s.kv_heads;
  hp.head_dim = s.hidden / s.heads;
  hp.context = s.context;
  hp.rope_theta = s.theta;
  // Scale 0.2: logits of a few units, so perplexities stay finite and meaningful.
  m->tok_embd = make_raw(rng, "token_embd.weight", s.vocab, s.hidden, s.embd_type, 0.2f);
  if (!s.tied) {
    m->output = make_raw(rng, "output.weight", s.vocab, s.hidden, s.output_type, 0.2f);
  }
  m->output_norm = make_norm(rng, s.hidden);
  const int64_t D = hp.head_dim, q = s.heads * D, kv = s.kv_heads * D;
  for (int64_t l = 0; l < s.layers; ++l) {
    LayerWeights L;
    L.attn_norm = make_norm(rng, s.hidden);
    L.attn_sub_norm = make_norm(rng, q);
    L.ffn_norm = make_norm(rng, s.hidden);
    L.ffn_sub_norm = make_norm(rng, s.ffn);
    L.wq = make_linear(rng, q, s.hidden, s.linear_format);
    L.wk = make_linear(rng, kv, s.hidden, s.linear_format);
    L.wv = make_linear(rng, kv, s.hidden, s.linear_format);
    L.wo = make_linear(rng, s.hidden, q, s.linear_format);
    L.w_gate = make_linear(rng, s.ffn, s.hidden, s.linear_format);
    L.w_up = make_linear(rng, s.ffn, s.hidden, s.linear_format);
    L.w_down = make_linear(rng, s.hidden, s.ffn, s.linear_format);
    m->layers.push_back(std::move(L));
  }
  return m;
}

// Deterministic pseudo-random token ids.
inline std::vector<int32_t> tiny_tokens(int64_t n, int64_t vocab, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t((size_t)n);
  for (auto& x : t) x = (int32_t)(rng() % (uint64_t)vocab);
  return t;
}

}  // namespace tritune::testing
