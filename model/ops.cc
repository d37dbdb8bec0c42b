#include "model/ops.h"

// No a*b+c contraction into FMA in this file: the ISA clones below must round exactly like the
// scalar references (GCC contracts by default in C++ whenever the target has FMA).
#pragma GCC optimize("fp-contract=off")
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (a known false
// positive); the pragma must precede <immintrin.h>.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/half.h"

namespace tritune {

// ---- canonical float reductions --------------------------------------------------------------
// Every sum over a vector (RMSNorm's sum of squares, attention's q.k) is defined as 16
// interleaved partial sums (element i goes to lane i % 16, in order) combined pairwise
// (lane j += lane j + w for w = 8, 4, 2, 1). The references below spell it out in scalar code;
// the kernel path's clones vectorize the same order. Both paths therefore produce the same
// floats before every activation quantizer, and no rounding tie can flip between them.
namespace {

float canonical_sum(const float* a, const float* b, int64_t n) {
  float lane[16] = {0};
  for (int64_t i = 0; i < n; ++i) {
    const float p = a[i] * b[i];
    lane[i % 16] = lane[i % 16] + p;
  }
  for (int w = 8; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) lane[j] = lane[j] + lane[j + w];
  }
  return lane[0];
}

}  // namespace

// ---- RMSNorm ---------------------------------------------------------------------------------
void rmsnorm_ref(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float r = 1.0f / std::sqrt(canonical_sum(x, x, n) / (float)n + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * r);
}

namespace {

// Bodies compiled once per ISA: the explicit 16 partial sums (the canonical order above) let
// the compiler vectorize the reductions without -ffast-math, and the results do not depend on
// the ISA.
__attribute__((always_inline)) inline float sum_squares(const float* x, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j] * x[i + j];
  }
  for (; i < n; ++i) acc[i % 16] += x[i] * x[i];
  for (int w = 8; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

__attribute__((always_inline)) inline void rmsnorm_body(const float* x, const float* w, int64_t n,
                                                        float eps, float* y) {
  const float r = 1.0f / std::sqrt(sum_squares(x, n) / (float)n + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * r);
}

TRITUNE_ISA_CLONES(void, rmsnorm_k,
                   (const float* x, const float* w, int64_t n, float eps, float* y),
                   (x, w, n, eps, y), rmsnorm_body)

}  // namespace

void rmsnorm_fast(const float* x, const float* w, int64_t n, float eps, float* y) {
  // The level is read per call (a getenv), so TRITUNE_ISA switches it for A/B runs and tests.
  rmsnorm_k(x, w, n, eps, y);
}

// ---- RoPE ------------------------------------------------------------------------------------
RopeTable::RopeTable(int64_t dim, int64_t positions, double theta)
    : dim_(dim), positions_(positions) {
  if (dim <= 0 || dim % 2 != 0 || positions <= 0 || !(theta > 0)) {
    throw Error("RoPE: head_dim " + std::to_string(dim) + " must be even and positive, theta " +
                std::to_string(theta) + " positive (check rope.freq_base)");
  }
  const int64_t half = dim / 2;
  cos_.resize((size_t)(positions * half));
  sin_.resize(cos_.size());
  for (int64_t i = 0; i < half; ++i) {
    const double inv_f = std::pow(theta, -2.0 * (double)i / (double)dim);
    for (int64_t p = 0; p < positions; ++p) {
      cos_[(size_t)(p * half + i)] = (float)std::cos((double)p * inv_f);
      sin_[(size_t)(p * half + i)] = (float)std::sin((double)p * inv_f);
    }
  }
}

void apply_rope(float* v, int64_t heads, int64_t pos, const RopeTable& rope) {
  if (pos < 0 || pos >= rope.positions()) {
    throw Error("RoPE: position " + std::to_string(pos) + " beyond the table of " +
                std::to_string(rope.positions()));
  }
  const int64_t D = rope.dim(), half = D / 2;
  const float* c = rope.cos_row(pos);
  const float* s = rope.sin_row(pos);
  for (int64_t h = 0; h < heads; ++h) {
    float* x = v + h * D;
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half];
      x[i] = a * c[i] - b * s[i];
      x[i + half] = b * c[i] + a * s[i];
    }
  }
}

namespace {

// Separate loops for in-place and out-of-place use: with out == g the compiler's runtime alias
// check fails and it falls back to scalar code.
void relu2_inplace(float* __restrict g, const float* __restrict u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = (g[i] + std::fabs(g[i])) * 0.5f;  // max(g, 0): exact for finite g, branch-free
    g[i] = r * r * u[i];
  }
}

}  // namespace

void relu2_gate(const float* g, const float* u, int64_t n, float* out) {
  if (out == g) return relu2_inplace(out, u, n);
  for (int64_t i = 0; i < n; ++i) {
    const float r = (g[i] + std::fabs(g[i])) * 0.5f;  // max(g, 0): exact for finite g, branch-free
    out[i] = r * r * u[i];
  }
}

}  // namespace tritune
