#include "model/kv_cache.h"

#include <cstring>

#include "kernels/error.h"
#include "kernels/half.h"

namespace tritune {

const char* kv_type_name(KvType t) {
  return t == KvType::kF32 ? "f32" : "f16";
}

KvType parse_kv_type(const std::string& name) {
  if (name == "f32") return KvType::kF32;
  if (name == "f16") return KvType::kF16;
  throw Error("unknown KV cache type '" + name + "' (use f32 or f16)");
}

KvCache::KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t capacity, KvType type)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), capacity_(capacity), type_(type) {
  if (layers <= 0 || kv_heads <= 0 || head_dim <= 0 || capacity <= 0) {
    throw Error("KV cache: layers, kv_heads, head_dim and context must be positive (got " +
                std::to_string(layers) + ", " + std::to_string(kv_heads) + ", " +
                std::to_string(head_dim) + ", " + std::to_string(capacity) + ")");
  }
  const double elems = 2.0 * (double)layers * (double)kv_heads * (double)head_dim * capacity;
  if (elems * elem_bytes() > 64.0 * (1ull << 30)) {
    throw Error("KV cache of " + std::to_string(capacity) + " positions would need " +
                std::to_string((int64_t)(elems * elem_bytes() / (1 << 20))) +
                " MiB; lower the context (--ctx) or use --kv f16");
  }
  if (type == KvType::kF32) {
    f32_.assign((size_t)elems, 0.0f);
  } else {
    f16_.assign((size_t)elems, 0);
  }
}

int64_t KvCache::offset(int64_t layer, int64_t head, int64_t pos, bool v) const {
  return ((((layer * 2 + (v ? 1 : 0)) * kv_heads_ + head) * capacity_) + pos) * head_dim_;
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= capacity_ || layer < 0 || layer >= layers_) {
    throw Error("KV cache: position " + std::to_string(pos) + " is beyond the context of " +
                std::to_string(capacity_) + " (raise --ctx)");
  }
  for (int64_t h = 0; h < kv_heads_; ++h) {
    const int64_t ok = offset(layer, h, pos, false), ov = offset(layer, h, pos, true);
    if (type_ == KvType::kF32) {
      std::memcpy(&f32_[(size_t)ok], k + h * head_dim_, (size_t)head_dim_ * 4);
      std::memcpy(&f32_[(size_t)ov], v + h * head_dim_, (size_t)head_dim_ * 4);
    } else {
      for (int64_t d = 0; d < head_dim_; ++d) {
        f16_[(size_t)(ok + d)] = float_to_half(k[h * head_dim_ + d]);
        f16_[(size_t)(ov + d)] = float_to_half(v[h * head_dim_ + d]);
      }
    }
  }
}

const void* KvCache::key(int64_t layer, int64_t head, int64_t pos) const {
  const int64_t o = offset(layer, head, pos, false);
  return type_ == KvType::kF32 ? (const void*)&f32_[(size_t)o] : (const void*)&f16_[(size_t)o];
}

const void* KvCache::value(int64_t layer, int64_t head, int64_t pos) const {
  const int64_t o = offset(layer, head, pos, true);
  return type_ == KvType::kF32 ? (const void*)&f32_[(size_t)o] : (const void*)&f16_[(size_t)o];
}

static void read_row(const void* p, KvType t, int64_t n, float* out) {
  if (t == KvType::kF32) {
    std::memcpy(out, p, (size_t)n * 4);
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(p);
    for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
  }
}

void KvCache::read_key(int64_t layer, int64_t head, int64_t pos, float* out) const {
  read_row(key(layer, head, pos), type_, head_dim_, out);
}

void KvCache::read_value(int64_t layer, int64_t head, int64_t pos, float* out) const {
  read_row(value(layer, head, pos), type_, head_dim_, out);
}

}  // namespace tritune
