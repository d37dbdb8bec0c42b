// The non-linear pieces of a BitNet b1.58 decoder layer (peers.md §3.4), each twice: a scalar
// reference (plain float loops, obviously correct) and a vectorized kernel-path version
// (compiled for AVX-512/AVX2 and chosen at run time, plain C++ otherwise). Both follow one
// canonical float order (reductions as 16 interleaved partial sums, no FMA contraction), so
// they are bit-identical: the float inputs of every activation quantizer agree between the
// paths and no rounding tie can flip (tests/model/ops_test.cc checks this at every ISA level).
#pragma once
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/parallel.h"

namespace tritune {

// y = w * (x * r), r = 1 / sqrt(mean(x^2) + eps) (HF BitNetRMSNorm, fp32). y may alias x.
void rmsnorm_ref(const float* x, const float* w, int64_t n, float eps, float* y);
void rmsnorm_fast(const float* x, const float* w, int64_t n, float eps, float* y);

// cos/sin of pos * theta^(-2i/dim) for i < dim/2 (computed in double, stored as float), one
// row per position. Both paths use the same table, so RoPE is bit-identical between them.
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(int64_t dim, int64_t positions, double theta);
  int64_t dim() const { return dim_; }
  int64_t positions() const { return positions_; }
  const float* cos_row(int64_t pos) const { return cos_.data() + pos * (dim_ / 2); }
  const float* sin_row(int64_t pos) const { return sin_.data() + pos * (dim_ / 2); }

 private:
  int64_t dim_ = 0, positions_ = 0;
  std::vector<float> cos_, sin_;
};

// NEOX RoPE (HF rotate_half) on `heads` vectors of rope.dim() floats at position pos:
// out[i] = a*cos - b*sin, out[i+d/2] = b*cos + a*sin with a = v[i], b = v[i+d/2].
void apply_rope(float* v, int64_t heads, int64_t pos, const RopeTable& rope);

// e^x for the softmax, in a fixed sequence of float operations (Cephes-style polynomial; input
// clamped to [-87, 88]; about 2 ulp) that the vectorized attention repeats bit for bit.
float exp_canonical(float x);

// Causal grouped-query attention of T tokens at positions pos0..pos0+T-1 against the cache
// (which already holds them): q [T][heads*D], out [T][heads*D]; q head h reads kv head
// h / (heads / kv_heads); softmax(q k^T / sqrt(D)) v in the canonical order spelled out in
// model/attention.cc (fma chains, exp_canonical, a 16-lane sum), identical in both versions.
struct AttentionShape {
  int64_t heads, kv_heads, head_dim;
};
void attention_ref(const float* q, int64_t tokens, int64_t pos0, const AttentionShape& s,
                   const KvCache& cache, int64_t layer, float* out, ThreadPool* pool);
void attention_fast(const float* q, int64_t tokens, int64_t pos0, const AttentionShape& s,
                    const KvCache& cache, int64_t layer, float* out, ThreadPool& pool);

// out[i] = relu(g[i])^2 * u[i]
void relu2_gate(const float* g, const float* u, int64_t n, float* out);

}  // namespace tritune
