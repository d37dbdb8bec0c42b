// The key/value cache of the transformer: per layer and kv head, `capacity` positions of
// head_dim values, stored as f32 or f16. Values are rows ([layer][kv_head][pos][dim]); keys are
// blocks of kKeyBlock positions stored dimension-major ([layer][kv_head][pos / 16][dim][16]), so
// the attention kernel computes 16 scores per vector FMA without transposing anything.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/huge_pages.h"

namespace tritune {

enum class KvType { kF32, kF16 };
const char* kv_type_name(KvType t);
KvType parse_kv_type(const std::string& name);  // "f32" | "f16"; throws Error otherwise

class KvCache {
 public:
  static constexpr int64_t kKeyBlock = 16;

  KvCache() = default;
  // Throws Error if the cache would be absurdly large (> 64 GiB) or a dimension is not positive.
  KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t capacity, KvType type);

  KvType type() const { return type_; }
  int64_t capacity() const { return capacity_; }
  int64_t bytes() const { return (int64_t)(f32_.size() * 4 + f16_.size() * 2); }
  int64_t head_dim() const { return head_dim_; }
  int64_t elem_bytes() const { return type_ == KvType::kF32 ? 4 : 2; }

  // Stores the k and v vectors of all kv heads (kv_heads * head_dim floats each) at `pos`.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // Keys of positions 16*block .. 16*block+15 of one kv head: head_dim x 16 elements, element
  // (d, i) at d * 16 + i (positions not stored yet read as 0). float* or uint16_t* (f16).
  const void* key_block(int64_t layer, int64_t head, int64_t block) const;
  // The value row (head_dim elements) of one kv head at one position: float* or uint16_t*.
  // The rows of one kv head are consecutive: position p + i is head_dim * i elements further.
  const void* value(int64_t layer, int64_t head, int64_t pos) const;
  // Reads one row as floats.
  void read_key(int64_t layer, int64_t head, int64_t pos, float* out) const;
  void read_value(int64_t layer, int64_t head, int64_t pos, float* out) const;

 private:
  int64_t key_offset(int64_t layer, int64_t head, int64_t pos) const;  // element (pos, d=0)
  int64_t value_offset(int64_t layer, int64_t head, int64_t pos) const;
  int64_t layers_ = 0, kv_heads_ = 0, head_dim_ = 0, capacity_ = 0;
  int64_t cap16_ = 0;  // capacity rounded up to whole key blocks
  KvType type_ = KvType::kF32;
  // On huge pages like the weights: a decode step reads a layer's cache once per token, after
  // a token's worth of weights evicted it from every cache and TLB.
  std::vector<float, HugePageAllocator<float>> f32_;
  std::vector<uint16_t, HugePageAllocator<uint16_t>> f16_;
};

}  // namespace tritune
