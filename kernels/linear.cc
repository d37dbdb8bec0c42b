#include "kernels/linear.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "HalideRuntime.h"
#include "kernels/cpu_features.h"
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

// One token row. Conversion, division and product are each correctly rounded, so the
// vectorized clones give the scalar reference's floats exactly; the division makes the
// width matter (a prefill converts 512 x 22784 values per layer: 3.7% of its time with
// SSE2, `perf` on the 2B4T shape).
__attribute__((always_inline)) inline void dequant_row(const int32_t* r, int64_t n, float s,
                                                       float w, float* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = i2s_dequant(r[j], s, w);
}
TRITUNE_ISA_CLONES(void, dequant_row_k, (const int32_t* r, int64_t n, float s, float w, float* out),
                   (r, n, s, w, out), dequant_row)

int dequant_chunk(void*, int c, uint8_t* closure) {
  const Dequant& d = *reinterpret_cast<const Dequant*>(closure);
  const auto row = dequant_row_k_for(selected_isa());
  const int64_t t1 = std::min(d.tokens, (c + 1) * d.per);
  for (int64_t t = c * d.per; t < t1; ++t) {
    row(d.raw + t * d.ldr, d.n, d.scale[t], d.w_scale, d.y + t * d.ldy);
  }
  return 0;
}

// Float outputs of n rows from raw results (row stride ldr): a prefill's raw results (512 x 6912
// int32 = 14 MB) are converted on every thread of the kernels' pool, a decode's few thousand
// values on the calling thread.
void dequant(const int32_t* raw, int64_t ldr, const QuantizedActs& a, int64_t n, float w_scale,
             float* y, int64_t ldy) {
  Dequant job{raw, ldr, y, ldy, a.scale.data(), n, w_scale};
  const int chunks = a.tokens * n >= (1 << 16) ? (int)std::min<int64_t>(a.tokens, 64) : 1;
  job.per = (a.tokens + chunks - 1) / chunks;
  job.tokens = a.tokens;
  if (chunks == 1) {
    dequant_chunk(nullptr, 0, reinterpret_cast<uint8_t*>(&job));
  } else {
    halide_do_par_for(nullptr, dequant_chunk, 0, chunks, reinterpret_cast<uint8_t*>(&job));
  }
}

// The calling thread's buffer for raw int32 results (a prefill's are up to 512 x 13824 x 4
// bytes): one for every i2_s layer and group, so it is as large as the largest call, once.
std::vector<int32_t>& raw_scratch(size_t n) {
  thread_local std::vector<int32_t> raw;
  // Never shrunk: a resize back up would zero the regrown part (megabytes per prefill call,
  // as the q/k/v, o, gate/up and down sizes alternate).
  if (raw.size() < n) raw.resize(n);
  return raw;
}

std::shared_ptr<const I2SKernelWeights> own_store(const PackedWeights& p) {
  return std::make_shared<const I2SKernelWeights>(i2s_repack(p));
}

// An i2_s layer: its rows of a tile store (its own, or its group's).
class LinearI2S : public Linear {
 public:
  explicit LinearI2S(const PackedWeights& p) : LinearI2S(own_store(p), 0, p.n, p.scale) {}
  LinearI2S(std::shared_ptr<const I2SKernelWeights> st, int64_t tile0, int64_t n, float scale)
      : store_(std::move(st)),
        w_(tile_rows(*store_, tile0, n)),
        scale_(scale),
        variants_("i2s", n, store_->k) {}
  Format format() const override { return Format::kI2S; }
  int64_t n() const override { return w_.n; }
  int64_t k() const override { return w_.k; }
  int64_t weight_bytes() const override { return w_.bytes(); }
  const uint8_t* weight_data() const override { return w_.data; }
  int64_t weight_runs() const override { return w_.parts; }
  int64_t weight_run_stride() const override { return w_.part_stride; }
  int64_t act_align() const override { return 16; }
  int64_t raw_width() const override { return w_.n_pad(); }

  void forward(const float* x, int64_t tokens, float* y, int64_t ldy) const override {
    forward_q(quantize_acts(x, tokens, w_.k, w_.k, 16), y, ldy);
  }
  void forward_q(const QuantizedActs& a, float* y, int64_t ldy) const override {
    std::vector<int32_t>& raw = raw_scratch((size_t)(a.tokens * w_.n_pad()));
    forward_raw(a, raw.data(), w_.n_pad());
    dequant(raw.data(), w_.n_pad(), a, w_.n, scale_, y, ldy);
  }
  void forward_raw(const QuantizedActs& a, int32_t* raw, int64_t ldy) const override {
    run_i2s(variants_.get(a.tokens), w_, a, raw, ldy);
  }
  std::string variant_for(int64_t tokens) const override { return variants_.name(tokens); }

 private:
  std::shared_ptr<const I2SKernelWeights> store_;
  I2STiles w_;
  float scale_;
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

struct LinearGroup::Impl {
  explicit Impl(std::shared_ptr<I2SKernelWeights> st)
      : store(std::move(st)), variants("i2s", store->n, store->k) {}
  std::shared_ptr<I2SKernelWeights> store;  // every member's tiles, n = their padded rows
  std::vector<int64_t> tile0, n;            // per member: first row tile, rows
  std::vector<float> scale;
  VariantCache variants;  // for the whole store: one call
};

std::shared_ptr<LinearGroup> LinearGroup::create(std::vector<PackedWeights*> members) {
  if (members.size() < 2) return nullptr;
  const int64_t k = members[0]->k;
  int64_t n16 = 0;
  for (const PackedWeights* p : members) {
    // Anything unusual runs (and is refused with its own error) as a layer on its own.
    if (p->k != k || k > kI2SMaxK || !i2s_storage_problem(*p).empty()) return nullptr;
    n16 += (p->n + 15) / 16;
  }
  auto st = std::make_shared<I2SKernelWeights>(i2s_alloc(n16 * 16, k, 1.0f));
  auto impl = std::make_shared<Impl>(st);
  int64_t t0 = 0;
  for (PackedWeights* p : members) {
    i2s_repack_into(*p, *st, t0);  // checked above: cannot throw
    impl->tile0.push_back(t0);
    impl->n.push_back(p->n);
    impl->scale.push_back(p->scale);
    t0 += (p->n + 15) / 16;
    p->data = WeightBytes();  // repacked: the storage bytes are released
  }
  return std::shared_ptr<LinearGroup>(new LinearGroup(impl));
}

LinearGroup::LinearGroup(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

int LinearGroup::size() const {
  return (int)impl_->n.size();
}
int64_t LinearGroup::n() const {
  return impl_->store->n;
}
int64_t LinearGroup::k() const {
  return impl_->store->k;
}

std::unique_ptr<Linear> LinearGroup::member(int i) const {
  if (i < 0 || i >= size()) throw Error("LinearGroup: no member " + std::to_string(i));
  return std::make_unique<LinearI2S>(impl_->store, impl_->tile0[(size_t)i], impl_->n[(size_t)i],
                                     impl_->scale[(size_t)i]);
}

void LinearGroup::forward_q(const QuantizedActs& a, const std::vector<float*>& ys) const {
  if ((int)ys.size() != size()) throw Error("LinearGroup: one output per member");
  const I2SKernelWeights& w = *impl_->store;
  std::vector<int32_t>& raw = raw_scratch((size_t)(a.tokens * w.n_pad()));
  run_i2s(impl_->variants.get(a.tokens), w, a, raw.data(), w.n_pad());
  for (int i = 0; i < size(); ++i) {
    const int64_t n = impl_->n[(size_t)i];
    dequant(raw.data() + impl_->tile0[(size_t)i] * 16, w.n_pad(), a, n, impl_->scale[(size_t)i],
            ys[(size_t)i], n);
  }
}

std::string LinearGroup::variant_for(int64_t tokens) const {
  return impl_->variants.name(tokens);
}

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
