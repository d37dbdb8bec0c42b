#include "kernels/linear.h"

#include <map>
#include <mutex>
#include <tuple>

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

class LinearI2S : public Linear {
 public:
  explicit LinearI2S(const PackedWeights& p) : w_(i2s_repack(p)), variants_("i2s", p.n, p.k) {}
  Format format() const override { return Format::kI2S; }
  int64_t n() const override { return w_.n; }
  int64_t k() const override { return w_.k; }
  int64_t weight_bytes() const override { return (int64_t)w_.tiles.size(); }
  int64_t act_align() const override { return 16; }
  int64_t raw_width() const override { return w_.n_pad(); }

  void forward(const float* x, int64_t tokens, float* y, int64_t ldy) const override {
    forward_q(quantize_acts(x, tokens, w_.k, w_.k, 16), y, ldy);
  }
  void forward_q(const QuantizedActs& a, float* y, int64_t ldy) const override {
    thread_local std::vector<int32_t> raw;
    raw.resize((size_t)(a.tokens * w_.n_pad()));
    forward_raw(a, raw.data(), w_.n_pad());
    for (int64_t t = 0; t < a.tokens; ++t) {
      const int32_t* r = raw.data() + t * w_.n_pad();
      float* out = y + t * ldy;
      const float s = a.scale[(size_t)t];
      for (int64_t j = 0; j < w_.n; ++j) out[j] = i2s_dequant(r[j], s, w_.scale);
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
