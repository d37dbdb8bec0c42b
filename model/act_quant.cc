// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (the
// _mm512_undefined_* operands of casts and masked ops, a known false positive); the pragma must
// precede the first include of <immintrin.h> to cover those header lines.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "model/act_quant.h"

#include <immintrin.h>

#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/quantize.h"

namespace tritune {
namespace {

// The scalar steps of quantize_row for the elements [j, k) the vector loops leave over.
bool absmax_tail(const float* x, int64_t j, int64_t k, float* amax) {
  for (; j < k; ++j) {
    if (!std::isfinite(x[j])) return false;
    *amax = std::fmax(*amax, std::fabs(x[j]));
  }
  return true;
}

int32_t quantize_tail(const float* x, int64_t j, int64_t k, float s, int8_t* q) {
  int32_t total = 0;
  for (; j < k; ++j) {
    float r = std::nearbyint(x[j] * s);
    r = std::fmin(std::fmax(r, -128.0f), 127.0f);
    q[j] = (int8_t)r;
    total += (int32_t)r;
  }
  return total;
}

// x * s is one float multiply in both versions and vroundps with "nearest" rounds half to
// even like nearbyint in the default mode, so every step rounds exactly as the scalar code.
#define TRITUNE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

// Horizontal reductions by halves (GCC 12's _mm512_reduce_* trip -Wmaybe-uninitialized).
TRITUNE_AVX512 inline float hmax512(__m512 v) {
  const __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

TRITUNE_AVX512 inline int32_t hsum512_epi32(__m512i v) {
  const __m256i a = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i b = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
  return _mm_cvtsi128_si32(b);
}

TRITUNE_AVX512 bool quantize_avx512(const float* x, int64_t k, int8_t* q, int32_t* sum,
                                    float* scale) {
  const __m512 inf = _mm512_set1_ps(INFINITY);
  __m512 vmax = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + j));
    // !(a < inf) is true for Inf and NaN.
    if (_mm512_cmp_ps_mask(a, inf, _CMP_NLT_UQ)) return false;
    vmax = _mm512_max_ps(vmax, a);
  }
  float amax = hmax512(vmax);
  if (!absmax_tail(x, j, k, &amax)) return false;
  const float s = 127.0f / std::fmax(amax, 1e-5f);
  const __m512 vs = _mm512_set1_ps(s);
  const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  __m512i acc = _mm512_setzero_si512();
  j = 0;
  for (; j + 16 <= k; j += 16) {
    __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    const __m512i i = _mm512_cvtps_epi32(r);
    acc = _mm512_add_epi32(acc, i);
    _mm_storeu_si128((__m128i*)(q + j), _mm512_cvtepi32_epi8(i));
  }
  int32_t total = hsum512_epi32(acc);
  total += quantize_tail(x, j, k, s, q);
  *sum = total;
  *scale = s;
  return true;
}

#define TRITUNE_AVX2 __attribute__((target("avx2,fma")))

TRITUNE_AVX2 inline float hmax256(__m256 v) {
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

TRITUNE_AVX2 inline int32_t hsum256_epi32(__m256i v) {
  __m128i b = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
  return _mm_cvtsi128_si32(b);
}

TRITUNE_AVX2 inline __m256i quantize8(const float* x, __m256 vs) {
  const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x), vs),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvtps_epi32(
      _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f)));
}

// The same steps with 8 lanes: vroundps "nearest" is round-half-even, and the clamped values
// pass the saturating packs unchanged.
TRITUNE_AVX2 bool quantize_avx2(const float* x, int64_t k, int8_t* q, int32_t* sum, float* scale) {
  const __m256 inf = _mm256_set1_ps(INFINITY);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 vmax = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j));
    if (_mm256_movemask_ps(_mm256_cmp_ps(a, inf, _CMP_NLT_UQ))) return false;
    vmax = _mm256_max_ps(vmax, a);
  }
  float amax = hmax256(vmax);
  if (!absmax_tail(x, j, k, &amax)) return false;
  const float s = 127.0f / std::fmax(amax, 1e-5f);
  const __m256 vs = _mm256_set1_ps(s);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256i acc = _mm256_setzero_si256();
  j = 0;
  for (; j + 32 <= k; j += 32) {
    const __m256i a = quantize8(x + j, vs), b = quantize8(x + j + 8, vs);
    const __m256i c = quantize8(x + j + 16, vs), d = quantize8(x + j + 24, vs);
    acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, d)));
    // packs work within 128-bit lanes: bytes come out as a0 b0 c0 d0 a1 b1 c1 d1 (4 each),
    // and the dword permute restores a b c d.
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i abcd = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
    _mm256_storeu_si256((__m256i*)(q + j), abcd);
  }
  int32_t total = hsum256_epi32(acc);
  total += quantize_tail(x, j, k, s, q);
  *sum = total;
  *scale = s;
  return true;
}

}  // namespace

float quantize_row_fast(const float* x, int64_t k, int8_t* q, int32_t* sum) {
  // selected_isa() never exceeds what the CPU supports (it refuses such a TRITUNE_ISA).
  float s;
  const Isa isa = selected_isa();
  if (isa >= Isa::kAvx512Vnni) {
    if (quantize_avx512(x, k, q, sum, &s)) return s;
  } else if (isa >= Isa::kAvx2) {
    if (quantize_avx2(x, k, q, sum, &s)) return s;
  }
  return quantize_row(x, k, q, sum);
}

}  // namespace tritune
