#include "model/kv_cache.h"

#include <immintrin.h>

#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/memory_budget.h"

namespace tritune {

namespace {

TRITUNE_TARGET_PUSH("avx2,f16c")
// Eight floats to halves with F16C, rounding to nearest even like float_to_half. False (nothing
// written) if one is a NaN: F16C keeps NaN payload bits that float_to_half drops, so those go
// through the scalar code and every level stores the same bits.
bool to_half8(const float* x, uint16_t* h) {
  const __m256 v = _mm256_loadu_ps(x);
  if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) return false;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  return true;
}
TRITUNE_TARGET_POP

}  // namespace

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
  cap16_ = (capacity + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  const double elems = 2.0 * (double)layers * (double)kv_heads * (double)head_dim * (double)cap16_;
  // 64 GiB stands in for the machine's memory where /proc/meminfo does not say.
  const int64_t avail = available_memory_bytes();
  require_memory(elems * elem_bytes(),
                 "KV cache of " + std::to_string(capacity) + " positions (" +
                     std::to_string(layers) + " layers, " + std::to_string(kv_heads) +
                     " KV heads of " + std::to_string(head_dim) + ", " + kv_type_name(type) + ")",
                 std::string("lower the context (--ctx, or -p/-n where they set it)") +
                     (type == KvType::kF32 ? " or use --kv f16" : ""),
                 avail >= 0 ? avail : int64_t(64) << 30);
  if (type == KvType::kF32) {
    f32_.assign((size_t)elems, 0.0f);
  } else {
    f16_.assign((size_t)elems, 0);
  }
}

// Keys of (layer, head) occupy cap16_ * head_dim elements at the start of the layer's K half,
// values as many in its V half.
int64_t KvCache::key_offset(int64_t layer, int64_t head, int64_t pos) const {
  const int64_t base = ((layer * 2) * kv_heads_ + head) * cap16_ * head_dim_;
  return base + (pos / kKeyBlock) * head_dim_ * kKeyBlock + pos % kKeyBlock;
}

int64_t KvCache::value_offset(int64_t layer, int64_t head, int64_t pos) const {
  return (((layer * 2 + 1) * kv_heads_ + head) * cap16_ + pos) * head_dim_;
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= capacity_ || layer < 0 || layer >= layers_) {
    throw Error("KV cache: position " + std::to_string(pos) + " is beyond the context of " +
                std::to_string(capacity_) + " (raise --ctx)");
  }
  for (int64_t h = 0; h < kv_heads_; ++h) {
    const int64_t ok = key_offset(layer, h, pos), ov = value_offset(layer, h, pos);
    const float* kh = k + h * head_dim_;
    const float* vh = v + h * head_dim_;
    if (type_ == KvType::kF32) {
      for (int64_t d = 0; d < head_dim_; ++d) f32_[(size_t)(ok + d * kKeyBlock)] = kh[d];
      std::memcpy(&f32_[(size_t)ov], vh, (size_t)head_dim_ * 4);
    } else {
      // Eight dimensions at a time where F16C is there (a decode step stores 2 x 640 values
      // per layer; the scalar conversion was most of the rope+kv stage).
      int64_t d = 0;
      if (selected_isa() >= Isa::kAvx2) {
        uint16_t kb[8];
        for (; d + 8 <= head_dim_; d += 8) {
          if (!to_half8(kh + d, kb) || !to_half8(vh + d, &f16_[(size_t)(ov + d)])) break;
          for (int i = 0; i < 8; ++i) f16_[(size_t)(ok + (d + i) * kKeyBlock)] = kb[i];
        }
      }
      for (; d < head_dim_; ++d) {
        f16_[(size_t)(ok + d * kKeyBlock)] = float_to_half(kh[d]);
        f16_[(size_t)(ov + d)] = float_to_half(vh[d]);
      }
    }
  }
}

const void* KvCache::key_block(int64_t layer, int64_t head, int64_t block) const {
  const int64_t o = key_offset(layer, head, block * kKeyBlock);
  return type_ == KvType::kF32 ? (const void*)&f32_[(size_t)o] : (const void*)&f16_[(size_t)o];
}

const void* KvCache::value(int64_t layer, int64_t head, int64_t pos) const {
  const int64_t o = value_offset(layer, head, pos);
  return type_ == KvType::kF32 ? (const void*)&f32_[(size_t)o] : (const void*)&f16_[(size_t)o];
}

// Element i of a row at `o` with stride `step` (16 for keys, 1 for values), as float.
template <class F32, class F16>
static void read_row(const KvCache& c, const F32& f32, const F16& f16, int64_t o, int64_t step,
                     int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = c.type() == KvType::kF32 ? f32[(size_t)(o + i * step)]
                                      : half_to_float(f16[(size_t)(o + i * step)]);
  }
}

void KvCache::read_key(int64_t layer, int64_t head, int64_t pos, float* out) const {
  read_row(*this, f32_, f16_, key_offset(layer, head, pos), kKeyBlock, head_dim_, out);
}

void KvCache::read_value(int64_t layer, int64_t head, int64_t pos, float* out) const {
  read_row(*this, f32_, f16_, value_offset(layer, head, pos), 1, head_dim_, out);
}

}  // namespace tritune
