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

__attribute__((always_inline)) inline float dot_body(const float* a, const float* b, int64_t n) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) acc[i % 16] += a[i] * b[i];
  for (int w = 8; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

// The canonical dot product with the lane tree done on registers (the generic body's tree
// compiles to 15 scalar adds): level 8 is the sum of the two 256-bit halves, level 4 of the
// two 128-bit halves, then movehl and movehdup, the same additions in the same order.
__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw"))) inline float dot512(
    const float* a, const float* b, int64_t n) {
  if (n % 16 != 0) return dot_body(a, b, n);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  }
  const __m256 s8 =
      _mm256_add_ps(_mm512_castps512_ps256(acc),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

__attribute__((target("avx2,fma,f16c"))) inline float dot256(const float* a, const float* b,
                                                             int64_t n) {
  if (n % 16 != 0) return dot_body(a, b, n);
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();  // lanes 0-7 and 8-15
  for (int64_t i = 0; i < n; i += 16) {
    lo = _mm256_add_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    hi = _mm256_add_ps(hi, _mm256_mul_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8)));
  }
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// One task of the kernel-path attention: kv head `kh`, token t (position p), all the q heads
// that share the kv head. Each key/value row is read once for the whole group.
template <int kVec>
__attribute__((always_inline)) inline void attn_task(const float* q, int64_t ldq, int64_t p,
                                                     const AttentionShape& s, const KvCache& cache,
                                                     int64_t layer, int64_t kh, float* out,
                                                     int64_t ldo, float* scores, float* row) {
  const int64_t D = s.head_dim, G = s.heads / s.kv_heads, n = p + 1;
  const float scale = 1.0f / std::sqrt((float)D);
  const bool f32 = cache.type() == KvType::kF32;
  for (int64_t j = 0; j < n; ++j) {
    const float* k = f32 ? static_cast<const float*>(cache.key(layer, kh, j)) : row;
    if (!f32) {
      const uint16_t* h = static_cast<const uint16_t*>(cache.key(layer, kh, j));
      for (int64_t d = 0; d < D; ++d) row[d] = half_to_float(h[d]);
    }
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = q + (kh * G + g) * D;
      const float d = kVec == 2   ? dot512(qg, k, D)
                      : kVec == 1 ? dot256(qg, k, D)
                                  : dot_body(qg, k, D);
      scores[g * n + j] = d * scale;
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    float* sc = scores + g * n;
    float m = sc[0];
    for (int64_t j = 1; j < n; ++j) m = std::max(m, sc[j]);
    float sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      sc[j] = std::exp(sc[j] - m);
      sum += sc[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; ++j) sc[j] *= inv;
    float* o = out + (kh * G + g) * D;
    for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
  }
  (void)ldq;
  (void)ldo;
  for (int64_t j = 0; j < n; ++j) {
    const float* v = f32 ? static_cast<const float*>(cache.value(layer, kh, j)) : row;
    if (!f32) {
      const uint16_t* h = static_cast<const uint16_t*>(cache.value(layer, kh, j));
      for (int64_t d = 0; d < D; ++d) row[d] = half_to_float(h[d]);
    }
    for (int64_t g = 0; g < G; ++g) {
      const float pj = scores[g * n + j];
      float* o = out + (kh * G + g) * D;
      for (int64_t d = 0; d < D; ++d) o[d] += pj * v[d];
    }
  }
}

#define TRITUNE_ISA_CLONES(RET, NAME, PARAMS, ARGS, BODY)                                       \
  RET NAME##_generic PARAMS {                                                                   \
    return BODY ARGS;                                                                           \
  }                                                                                             \
  __attribute__((target("avx2,fma,f16c"))) RET NAME##_avx2 PARAMS {                             \
    return BODY ARGS;                                                                           \
  }                                                                                             \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw"))) RET NAME##_avx512 PARAMS { \
    return BODY ARGS;                                                                           \
  }

TRITUNE_ISA_CLONES(void, rmsnorm_k,
                   (const float* x, const float* w, int64_t n, float eps, float* y),
                   (x, w, n, eps, y), rmsnorm_body)
void attn_k_generic(const float* q, int64_t ldq, int64_t p, const AttentionShape& s,
                    const KvCache& cache, int64_t layer, int64_t kh, float* out, int64_t ldo,
                    float* scores, float* row) {
  attn_task<0>(q, ldq, p, s, cache, layer, kh, out, ldo, scores, row);
}
__attribute__((target("avx2,fma,f16c"))) void attn_k_avx2(const float* q, int64_t ldq, int64_t p,
                                                          const AttentionShape& s,
                                                          const KvCache& cache, int64_t layer,
                                                          int64_t kh, float* out, int64_t ldo,
                                                          float* scores, float* row) {
  attn_task<1>(q, ldq, p, s, cache, layer, kh, out, ldo, scores, row);
}
__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw"))) void attn_k_avx512(
    const float* q, int64_t ldq, int64_t p, const AttentionShape& s, const KvCache& cache,
    int64_t layer, int64_t kh, float* out, int64_t ldo, float* scores, float* row) {
  attn_task<2>(q, ldq, p, s, cache, layer, kh, out, ldo, scores, row);
}

// Read per call (a getenv), so TRITUNE_ISA switches levels for A/B runs and tests.
int isa_level() {
  return (int)selected_isa();
}

}  // namespace

void rmsnorm_fast(const float* x, const float* w, int64_t n, float eps, float* y) {
  switch (isa_level()) {
    case (int)Isa::kAvx512Vnni:
      return rmsnorm_k_avx512(x, w, n, eps, y);
    case (int)Isa::kAvx2:
      return rmsnorm_k_avx2(x, w, n, eps, y);
    default:
      return rmsnorm_k_generic(x, w, n, eps, y);
  }
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

// ---- attention -------------------------------------------------------------------------------
static void check_attention(int64_t tokens, int64_t pos0, const AttentionShape& s,
                            const KvCache& cache) {
  if (s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0) {
    throw Error("attention: heads " + std::to_string(s.heads) + " is not a multiple of kv_heads " +
                std::to_string(s.kv_heads));
  }
  if (pos0 < 0 || pos0 + tokens > cache.capacity()) {
    throw Error("attention: positions up to " + std::to_string(pos0 + tokens) +
                " exceed the KV cache of " + std::to_string(cache.capacity()));
  }
}

void attention_ref(const float* q, int64_t tokens, int64_t pos0, const AttentionShape& s,
                   const KvCache& cache, int64_t layer, float* out, ThreadPool* pool) {
  check_attention(tokens, pos0, s, cache);
  const int64_t D = s.head_dim, H = s.heads, G = s.heads / s.kv_heads;
  const float scale = 1.0f / std::sqrt((float)D);
  auto run = [&](int64_t b, int64_t e, int) {
    std::vector<float> k((size_t)D), v((size_t)D), p;
    for (int64_t task = b; task < e; ++task) {
      const int64_t t = task / H, h = task % H, kh = h / G, pos = pos0 + t;
      const float* qh = q + t * H * D + h * D;
      float* o = out + t * H * D + h * D;
      // softmax(q k^T * scale) over positions 0..pos: max, exp, sequential sum, normalize.
      p.assign((size_t)(pos + 1), 0.0f);
      for (int64_t j = 0; j <= pos; ++j) {
        cache.read_key(layer, kh, j, k.data());
        p[(size_t)j] = canonical_sum(qh, k.data(), D) * scale;
      }
      float m = p[0];
      for (int64_t j = 1; j <= pos; ++j) m = std::max(m, p[(size_t)j]);
      float sum = 0.0f;
      for (int64_t j = 0; j <= pos; ++j) {
        p[(size_t)j] = std::exp(p[(size_t)j] - m);
        sum += p[(size_t)j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j <= pos; ++j) p[(size_t)j] *= inv;
      // out = sum_j p_j v_j, positions in order.
      for (int64_t i = 0; i < D; ++i) o[i] = 0.0f;
      for (int64_t j = 0; j <= pos; ++j) {
        cache.read_value(layer, kh, j, v.data());
        for (int64_t i = 0; i < D; ++i) o[i] += p[(size_t)j] * v[(size_t)i];
      }
    }
  };
  if (pool) {
    pool->parallel_for(tokens * H, run, 1);
  } else {
    run(0, tokens * H, 0);
  }
}

void attention_fast(const float* q, int64_t tokens, int64_t pos0, const AttentionShape& s,
                    const KvCache& cache, int64_t layer, float* out, ThreadPool& pool) {
  check_attention(tokens, pos0, s, cache);
  const int64_t D = s.head_dim, H = s.heads, KH = s.kv_heads, G = H / KH;
  const int level = isa_level();
  pool.parallel_for(
      tokens * KH,
      [&](int64_t b, int64_t e, int) {
        std::vector<float> scores((size_t)(G * (pos0 + tokens))), row((size_t)D);
        for (int64_t task = b; task < e; ++task) {
          const int64_t t = task / KH, kh = task % KH;
          const float* qt = q + t * H * D;
          float* ot = out + t * H * D;
          if (level >= (int)Isa::kAvx512Vnni) {
            attn_k_avx512(qt, H * D, pos0 + t, s, cache, layer, kh, ot, H * D, scores.data(),
                          row.data());
          } else if (level >= (int)Isa::kAvx2) {
            attn_k_avx2(qt, H * D, pos0 + t, s, cache, layer, kh, ot, H * D, scores.data(),
                        row.data());
          } else {
            attn_k_generic(qt, H * D, pos0 + t, s, cache, layer, kh, ot, H * D, scores.data(),
                           row.data());
          }
        }
      },
      1);
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
