#include "model/synthetic.h"

#include <cmath>

#include "kernels/error.h"
#include "model/ggml_types.h"
#include "model/tokenizer.h"

namespace tritune {

const std::vector<ModelShape>& model_shapes() {
  // bitnet.cpp's dummy shapes (utils/generate-dummy-bitnet-model.py: MHA, vocab 32002), the
  // 2B4T shape, bitnet_b1_58-large (700m) and -3B, and a tiny test shape. tiny's widths are
  // multiples of 256 so that every format (TQ blocks are 256 wide) can hold it.
  static const std::vector<ModelShape> k = {
      {"2b4t", 2560, 6912, 30, 20, 5, 128256, 4096, "bitnet-b1.58", 500000.0f,
       "BitNet b1.58 2B4T (microsoft/bitnet-b1.58-2B-4T), GQA 20/5"},
      {"125m", 768, 3072, 11, 12, 12, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 125M"},
      {"350m", 1024, 3072, 24, 16, 16, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 350M"},
      {"700m", 1536, 4096, 24, 16, 16, 32002, 2048, "bitnet", 10000.0f,
       "bitnet_b1_58-large (the papers' 700M)"},
      {"1b", 2048, 3584, 24, 32, 32, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 1B"},
      {"1.5b", 1536, 9216, 28, 32, 32, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 1.5B"},
      {"2.7b", 3072, 7680, 24, 32, 32, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 2.7B"},
      {"3b", 3200, 8640, 26, 32, 32, 32002, 2048, "bitnet", 10000.0f,
       "bitnet_b1_58-3B (K=3200/8640 do not fit the TQ block; 8640 not the I2_S block)"},
      {"3.8b", 3840, 8192, 24, 32, 32, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 3.8B"},
      {"7b", 4096, 12032, 32, 32, 32, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 7B"},
      {"13b", 5120, 13824, 40, 40, 40, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 13B"},
      {"30b", 6656, 16384, 60, 52, 52, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 30B"},
      {"70b", 8192, 24576, 80, 64, 64, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 70B"},
      {"100b", 8192, 45568, 72, 64, 64, 32002, 2048, "bitnet", 10000.0f, "bitnet.cpp dummy 100B"},
      {"tiny", 256, 512, 2, 4, 2, 320, 256, "bitnet-b1.58", 500000.0f,
       "test shape: 2 layers, GQA 4/2, head_dim 64"},
  };
  return k;
}

const ModelShape& find_shape(const std::string& name) {
  std::string known;
  for (const auto& s : model_shapes()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw Error("unknown model shape '" + name + "' (known: " + known + ")");
}

HParams shape_hparams(const ModelShape& s) {
  HParams hp;
  hp.arch = s.arch;
  hp.vocab = s.vocab;
  hp.hidden = s.hidden;
  hp.ffn = s.ffn;
  hp.layers = s.layers;
  hp.heads = s.heads;
  hp.kv_heads = s.kv_heads;
  hp.head_dim = s.hidden / s.heads;
  hp.context = s.context;
  hp.rms_eps = 1e-5f;
  hp.rope_theta = s.rope_theta;
  hp.activation = "relu2";
  return hp;
}

namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Stream of 64-bit values for one row of one tensor.
class Rng {
 public:
  explicit Rng(uint64_t s) : s_(s) {}
  uint64_t next() {
    s_ += 0x9e3779b97f4a7c15ull;
    uint64_t z = s_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

// Tensor roles for the per-tensor key.
enum Role : uint64_t { kEmbd = 1, kOutput = 2, kNorm = 3, kLinear = 4 };

class SyntheticSource : public ModelSource {
 public:
  SyntheticSource(const HParams& hp, uint64_t seed, bool untied)
      : hp_(hp), seed_(seed), untied_(untied), tok_(make_builtin_vocab((int)hp.vocab)) {
    const double target = 3.0 / std::sqrt((double)hp.hidden) / 24.0;
    embd_step_ = (float)std::ldexp(1.0, (int)std::lround(std::log2(target)));
  }

  const HParams& hparams() const override { return hp_; }
  const TokenizerData* tokenizer() const override { return &tok_; }
  bool has_output() const override { return untied_; }

  void matrix_rows(bool output, int64_t row0, int64_t count, float* out) const override {
    // Sum of four 16-bit uniforms, centred: variance 4 * 65536^2 / 12, so this factor gives a
    // standard deviation of 24 (quantized to integers, clamped to +-127).
    constexpr double kNormal = 24.0 * 1.7320508075688772 / 65536.0;
    const uint64_t key = tensor_key(output ? kOutput : kEmbd, 0, 0);
    for (int64_t r = 0; r < count; ++r) {
      Rng rng(mix(key ^ mix((uint64_t)(row0 + r))));
      float* y = out + r * hp_.hidden;
      for (int64_t c = 0; c < hp_.hidden; ++c) {
        // Sum of four uniforms ~ normal; small integer x power of two is exact in f16/bf16.
        const uint64_t v = rng.next();
        const int64_t s = (int64_t)(v & 0xffff) + (int64_t)((v >> 16) & 0xffff) +
                          (int64_t)((v >> 32) & 0xffff) + (int64_t)(v >> 48);
        long q = std::lround((double)(s - 131070) * kNormal);
        q = q < -127 ? -127 : (q > 127 ? 127 : q);
        y[c] = (float)q * embd_step_;
      }
    }
  }

  std::vector<float> norm(int64_t layer, NormId id) const override {
    const int64_t n = layer < 0 ? hp_.hidden : norm_size(hp_, id);
    Rng rng(tensor_key(kNorm, layer + 1, (uint64_t)id));
    std::vector<float> v((size_t)n);
    for (auto& x : v) x = 1.0f + (float)((int)(rng.next() % 13) - 6) / 64.0f;
    return v;
  }

  bool is_ternary(int64_t, Proj) const override { return true; }

  float scale(int64_t layer, Proj p) const override {
    const int64_t k = proj_shape(hp_, p).second;
    const double target = 1.0 / std::sqrt(2.0 * (double)k / 3.0);
    // A power of two near the target, varied per tensor so a loader that mixes up scales
    // fails the tests.
    const int e =
        (int)std::lround(std::log2(target)) - (int)(tensor_key(kLinear, layer, (uint64_t)p) & 1);
    return (float)std::ldexp(1.0, e);
  }

  void ternary_rows(int64_t layer, Proj p, int64_t row0, int64_t count,
                    int8_t* out) const override {
    const int64_t k = proj_shape(hp_, p).second;
    const uint64_t key = tensor_key(kLinear, layer, (uint64_t)p);
    for (int64_t r = 0; r < count; ++r) {
      Rng rng(mix(key ^ mix((uint64_t)(row0 + r))));
      int8_t* y = out + r * k;
      for (int64_t c = 0; c < k; c += 8) {
        uint64_t v = rng.next();
        for (int64_t j = c; j < c + 8 && j < k; ++j, v >>= 8) {
          y[j] = (int8_t)((((v & 0xff) * 3) >> 8) - 1);
        }
      }
    }
  }

  void float_rows(int64_t layer, Proj p, int64_t row0, int64_t count, float* out) const override {
    const int64_t k = proj_shape(hp_, p).second;
    std::vector<int8_t> t((size_t)(count * k));
    ternary_rows(layer, p, row0, count, t.data());
    const float s = scale(layer, p);
    for (size_t i = 0; i < t.size(); ++i) out[i] = (float)t[i] * s;
  }

 private:
  uint64_t tensor_key(uint64_t role, int64_t layer, uint64_t sub) const {
    return mix(mix(mix(seed_ ^ (role << 56)) ^ (uint64_t)layer) ^ sub);
  }

  HParams hp_;
  uint64_t seed_;
  bool untied_;
  TokenizerData tok_;
  float embd_step_;
};

}  // namespace

std::unique_ptr<ModelSource> synthetic_source(const HParams& hp, uint64_t seed,
                                              bool untied_output) {
  return std::make_unique<SyntheticSource>(hp, seed, untied_output);
}

WriteSummary write_synthetic_model(const SyntheticOptions& opt, const std::string& out) {
  HParams hp = shape_hparams(opt.shape);
  if (opt.layers > 0) hp.layers = opt.layers;
  if (hp.vocab < 266) {
    throw Error("make-model: vocabulary " + std::to_string(hp.vocab) +
                " is below the built-in tokenizer's minimum of 266");
  }
  const auto src = synthetic_source(hp, opt.seed, opt.untied_output);
  if (opt.format == "safetensors") {
    if (opt.embd_type != UINT32_MAX && opt.embd_type != ggml::kBF16) {
      throw Error(
          "make-model: the safetensors (HF) layout stores embeddings as BF16; drop "
          "--embd-type");
    }
    return write_hf_model(*src, out);
  }
  GgufModelOptions g;
  g.linear = parse_linear_format(opt.format);
  g.embd_type = opt.embd_type == UINT32_MAX ? (uint32_t)ggml::kF16 : opt.embd_type;
  g.arch = opt.arch;
  g.name = "tritune synthetic " + opt.shape.name + " (seed " + std::to_string(opt.seed) + ")";
  g.extra_metadata.emplace_back("tritune.synthetic.shape", gguf::Value::str(opt.shape.name));
  g.extra_metadata.emplace_back("tritune.synthetic.seed", gguf::Value::u64(opt.seed));
  return write_gguf_model(*src, out, g);
}

}  // namespace tritune
