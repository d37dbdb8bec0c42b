#include "kernels/linear.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "HalideRuntime.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/i2s.h"
#include "kernels/variant.h"

namespace tritune {

namespace {

// Resolves (and memoizes) the variant for a token bucket and thread count.
class VariantCache {
 public:
  VariantCache(std::string family, int64_t n, int64_t k) : family_(family), n_(n), k_(k) {}
  const Variant& get(int64_t tokens) const {
    const auto key = std::make_tuple(token_bucket(tokens), num_threads());
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return *it->second;
    const Variant& v = get_variant(lookup_variant(family_, n_, k_, tokens, num_threads()));
    cache_[key] = &v;
    return v;
  }
  std::string name(int64_t tokens) const { return get(tokens).name; }

 private:
  std::string family_;
  int64_t n_, k_;
  mutable std::mutex mu_;
  mutable std::map<std::tuple<int64_t, int>, const Variant*> cache_;
};

// y[t*ldy + j] = i2s_dequant(raw[t*ldr + j], scale[t], w_scale) for tokens [c*per, (c+1)*per).
struct Dequant {
  const int32_t* raw;
  int64_t ldr;
  float* y;
  int64_t ldy;
  const float* scale;
  int64_t n;
  float w_scale;
  int64_t per = 0, tokens = 0;
};

int dequant_chunk(void*, int c, uint8_t* closure) {
  const Dequant& d = *reinterpret_cast<const Dequant*>(closure);
  const int64_t t1 = std::min(d.tokens, (c + 1) * d.per);
  for (int64_t t = c * d.per; t < t1; ++t) {
    const int32_t* r = d.raw + t * d.ldr;
    float* out = d.y + t * d.ldy;
    const float s = d.scale[t];
    for (int64_t j = 0; j < d.n; ++j) out[j] = i2s_dequant(r[j], s, d.w_scale);
  }
  return 0;
}

class LinearI2S : public Linear {
 public:
  explicit LinearI2S(const PackedWeights& p) : w_(i2s_repack(p)), variants_("i2s", p.n, p.k) {}
  Format format() const override { return Format::kI2S; }
  int64_t n() const override { return w_.n; }
  int64_t k() const override { return w_.k; }
  int64_t weight_bytes() const override { return (int64_t)w_.tiles.size(); }
  const uint8_t* weight_data() const override { return w_.tiles.data(); }
  int64_t act_align() const override { return 16; }
  int64_t raw_width() const override { return w_.n_pad(); }

  void forward(const float* x, int64_t tokens, float* y, int64_t ldy) const override {
    forward_q(quantize_acts(x, tokens, w_.k, w_.k, 16), y, ldy);
  }
  void forward_q(const QuantizedActs& a, float* y, int64_t ldy) const override {
    thread_local std::vector<int32_t> raw;
    raw.resize((size_t)(a.tokens * w_.n_pad()));
    forward_raw(a, raw.data(), w_.n_pad());
    Dequant job{raw.data(), w_.n_pad(), y, ldy, a.scale.data(), w_.n, w_.scale};
    // A prefill's raw results (512 x 6912 int32 = 14 MB) are converted on every thread of the
    // kernels' pool; a decode's few thousand values on the calling thread.
    const int chunks = a.tokens * w_.n >= (1 << 16) ? (int)std::min<int64_t>(a.tokens, 64) : 1;
    job.per = (a.tokens + chunks - 1) / chunks;
    job.tokens = a.tokens;
    if (chunks == 1) {
      dequant_chunk(nullptr, 0, reinterpret_cast<uint8_t*>(&job));
    } else {
      halide_do_par_for(nullptr, dequant_chunk, 0, chunks, reinterpret_cast<uint8_t*>(&job));
    }
  }
  void forward_raw(const QuantizedActs& a, int32_t* raw, int64_t ldy) const override {
    run_i2s(variants_.get(a.tokens), w_, a, raw, ldy);
  }
  std::string variant_for(int64_t tokens) const override { return variants_.name(tokens); }

 private:
  I2SKernelWeights w_;
  VariantCache variants_;
};

class LinearFp : public Linear {
 public:
  explicit LinearFp(PackedWeights p)
      : w_(std::move(p)), variants_(format_traits(w_.format).name, w_.n, w_.k) {}
  Format format() const override { return w_.format; }
  int64_t n() const override { return w_.n; }
  int64_t k() const override { return w_.k; }
  int64_t weight_bytes() const override { return (int64_t)w_.data.size(); }
  const uint8_t* weight_data() const override { return w_.data.data(); }
  int64_t act_align() const override { return 1; }
  void forward(const float* x, int64_t tokens, float* y, int64_t ldy) const override {
    run_fp(variants_.get(tokens), w_, x, tokens, y, ldy);
  }
  void forward_q(const QuantizedActs&, float*, int64_t) const override {
    throw Error(std::string(format_traits(w_.format).name) +
                " layers take float activations (forward), not quantized ones");
  }
  void forward_raw(const QuantizedActs&, int32_t*, int64_t) const override {
    throw Error(std::string(format_traits(w_.format).name) + " layers have no integer path");
  }
  std::string variant_for(int64_t tokens) const override { return variants_.name(tokens); }

 private:
  PackedWeights w_;
  VariantCache variants_;
};

}  // namespace

std::unique_ptr<Linear> Linear::create(PackedWeights w, const std::string& name) {
  switch (w.format) {
    case Format::kI2S: {
      if (w.k > kI2SMaxK) {
        throw Error("Linear: " + (name.empty() ? std::string("i2_s layer") : name) + " has K=" +
                    std::to_string(w.k) + " input columns; the I2_S kernels take at most " +
                    std::to_string(kI2SMaxK) + " (int32 accumulator range)");
      }
      std::unique_ptr<Linear> l = std::make_unique<LinearI2S>(w);
      return l;
    }
    case Format::kF32:
    case Format::kF16:
      return std::make_unique<LinearFp>(std::move(w));
    default:
      throw Error("Linear: no kernel family for format " +
                  std::string(format_traits(w.format).name) +
                  (name.empty() ? "" : " (" + name + ")"));
  }
}

}  // namespace tritune
