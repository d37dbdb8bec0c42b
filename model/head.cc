// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (the
// _mm512_undefined_* operands of casts and masked ops, a known false positive); the pragma must
// precede the first include of <immintrin.h> to cover those header lines.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "model/head.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/quantize.h"
#include "model/act_quant.h"
#include "model/ggml_types.h"
#include "model/mapped_file.h"

namespace tritune {
namespace {

constexpr int64_t kActBlock = 32;  // head activation quantization block

struct TypeInfo {
  uint32_t id;
  const char* name;
  int64_t block, block_bytes;
};
constexpr TypeInfo kTypes[] = {{kGgmlF32, "f32", 1, 4},
                               {kGgmlF16, "f16", 1, 2},
                               {kGgmlQ8_0, "q8_0", 32, 34},
                               {kGgmlQ6_K, "q6_k", 256, 210},
                               {kGgmlBF16, "bf16", 1, 2}};

const TypeInfo* find_type(uint32_t t) {
  for (const auto& i : kTypes) {
    if (i.id == t) return &i;
  }
  return nullptr;
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// One Q6_K super-block (256 weights, 210 bytes): the 6-bit codes q in [0, 63] of its weights
// (weight = d * sc[i / 16] * (q - 32)), in weight order. ql holds the low 4 bits, qh the high
// 2; each half of 128 weights uses 64 ql bytes, 32 qh bytes and 8 of the 16 int8 scales.
void q6_k_codes(const uint8_t* blk, uint8_t* q) {
  const uint8_t* ql = blk;
  const uint8_t* qh = blk + 128;
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      q[l + 0] = (uint8_t)((ql[l + 0] & 0xF) | ((qh[l] >> 0) & 3) << 4);
      q[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4);
      q[l + 64] = (uint8_t)((ql[l + 0] >> 4) | ((qh[l] >> 4) & 3) << 4);
      q[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
    }
    q += 128;
    ql += 64;
    qh += 32;
  }
}

// Dequantizes one row with the loaders' ggml type table (the same dequantizers the loaders and
// converters use), so the reference path shares no decoding code with the kernel path.
void dequantize_row(const RawMatrix& m, int64_t row, float* y) {
  ggml::dequantize_rows(m.ggml_type, m.data, m.cols, m.rows, row, 1, y);
}

// Head activations: blocks of 32 quantized with the project's quantizer; dx[b] = 1 / s_b.
struct HeadActs {
  std::vector<int8_t> q;
  std::vector<float> s;   // 127 / absmax per block
  std::vector<float> dx;  // 1 / s
  // Per block of 32: the sum of its quantized activations (tokens * k / 32).
  std::vector<int32_t> bsum;
  // Q6_K only: the sum of each 16 activations (k / 16 per token), for the codes' offset of 32.
  std::vector<int16_t> x16;
  // Interleaved Q8_0 only: q widened to int16 (tokens * k), the vpmaddwd operand.
  std::vector<int16_t> qw;
  // Interleaved Q6_K only: per group of 16 activations (k / 16 per token), two int16 as one
  // dword: 32 times the sum of the activations that meet the first (resp. second) byte pair of
  // each 4-column dword, i.e. of columns 16g + 4c + {0, 1} (resp. {2, 3}) over c < 4. Each fits
  // int16 (|.| <= 32 * 8 * 127).
  std::vector<int16_t> o32;
};

HeadActs quantize_head_acts(const float* x, int64_t tokens, int64_t ldx, int64_t k,
                            bool group_sums = false, bool widened = false,
                            bool q6_offsets = false) {
  HeadActs a;
  const int64_t nb = k / kActBlock;
  a.q.resize((size_t)(tokens * k));
  a.s.resize((size_t)(tokens * nb));
  a.dx.resize(a.s.size());
  a.bsum.resize(a.s.size());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      int32_t sum;
      // The vectorized twin, bit for bit (the scalar one took ~50 us of a 2B4T token's head).
      const float s = quantize_row_fast(x + t * ldx + b * kActBlock, kActBlock,
                                        a.q.data() + t * k + b * kActBlock, &sum);
      a.s[(size_t)(t * nb + b)] = s;
      a.dx[(size_t)(t * nb + b)] = 1.0f / s;
      a.bsum[(size_t)(t * nb + b)] = sum;
    }
  }
  if (group_sums) {
    a.x16.assign((size_t)(tokens * k / 16), 0);
    for (int64_t i = 0; i < tokens * k; ++i) a.x16[(size_t)(i / 16)] += a.q[(size_t)i];
  }
  if (widened) a.qw.assign(a.q.begin(), a.q.end());
  if (q6_offsets) {
    a.o32.assign((size_t)(tokens * k / 8), 0);
    for (int64_t i = 0; i < tokens * k; ++i) {
      a.o32[(size_t)(i / 16 * 2 + i % 4 / 2)] += (int16_t)(32 * a.q[(size_t)i]);
    }
  }
  return a;
}

// ---- kernel-path dot products ----------------------------------------------------------------
// Scalar versions (always compiled: the fallback on any CPU).
float dot_q8_0_scalar(const uint8_t* w, const int8_t* x, const float* dx, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * 34;
    int32_t raw = 0;
    for (int i = 0; i < 32; ++i) raw += (int32_t)(int8_t)blk[2 + i] * x[b * 32 + i];
    acc += (float)raw * (half_to_float(load_u16(blk)) * dx[b]);
  }
  return acc;
}

// Q6_K: per block of 32 weights (the activations' block b, scale dx[b]) the exact integer
// I_b = sum over its two groups of 16 of sc_j * sum_i (q_i - 32) * x_i, then
// acc += I_b * (d * dx[b]). nsb super-blocks of 256 weights.
float dot_q6_k_scalar(const uint8_t* w, const int8_t* x, const float* dx, int64_t nsb) {
  float acc = 0.0f;
  uint8_t q[256];
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk = w + sb * 210;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = half_to_float(load_u16(blk + 208));
    q6_k_codes(blk, q);
    for (int b = 0; b < 8; ++b) {
      int32_t blk_sum = 0;
      for (int j = 2 * b; j < 2 * b + 2; ++j) {
        int32_t s = 0;
        for (int i = 16 * j; i < 16 * j + 16; ++i) s += ((int32_t)q[i] - 32) * x[sb * 256 + i];
        blk_sum += sc[j] * s;
      }
      acc += (float)blk_sum * (d * dx[sb * 8 + b]);
    }
  }
  return acc;
}

// Element i of a row of F32, F16 or BF16 weights, as float.
template <uint32_t kType>
inline float load_as_float(const uint8_t* w, int64_t i) {
  if (kType == kGgmlF32) {
    float v;
    std::memcpy(&v, w + 4 * i, 4);
    return v;
  }
  if (kType == kGgmlF16) return half_to_float(load_u16(w + 2 * i));
  return bf16_to_float(load_u16(w + 2 * i));
}

template <uint32_t kType>
float dot_float_scalar(const uint8_t* w, const float* x, int64_t k) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    for (int j = 0; j < 8; ++j) {
      acc[j] += load_as_float<kType>(w, i + j) * x[i + j];
    }
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < k; ++i) {
    s += load_as_float<kType>(w, i) * x[i];
  }
  return s;
}

#define TRITUNE_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TRITUNE_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))

TRITUNE_AVX2 inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// int8 x int8 -> 8 int32 lanes (lane i = sum of bytes 4i..4i+3). |w| as u8 times x*sign(w) as
// s8 is exact for every int8 w (|-128| = 128 as u8) because |x| <= 127 by the quantizer.
TRITUNE_AVX2 inline __m256i dot_i8_avx2(__m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

TRITUNE_VNNI inline __m256i dot_i8_vnni(__m256i w, __m256i x) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                             _mm256_sign_epi8(x, w));
}

// Software prefetch distance of the int8 row dots. The head is the largest single stream of a
// decode step (a 2B4T Q8_0 head is 349 MB) and its dot work between loads keeps too few misses
// in flight for the hardware prefetcher alone: on a Zen 3 VM 1.5 KB ahead made the AVX2 head
// 13-15% faster than none (1, 2 and 4 KB: 3-7%), measured against the FFN in the same runs.
constexpr int64_t kHeadPrefetchBytes = 1536;

// The int8 kernels exist twice, differing only in the dot-product instruction; a macro keeps
// one body (a template without a target attribute could not inline the intrinsics).
#define TRITUNE_DEFINE_Q8_DOTS(SUFFIX, TARGET, DOT)                                         \
  TARGET inline float dot_q8_0_##SUFFIX(const uint8_t* w, const int8_t* x, const float* dx, \
                                        int64_t nb) {                                       \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                          \
    int64_t b = 0;                                                                          \
    for (; b + 2 <= nb; b += 2) {                                                           \
      const uint8_t* b0 = w + b * 34;                                                       \
      const uint8_t* b1 = b0 + 34;                                                          \
      _mm_prefetch((const char*)b0 + kHeadPrefetchBytes, _MM_HINT_T0);                      \
      const __m256i r0 = DOT(_mm256_loadu_si256((const __m256i*)(b0 + 2)),                  \
                             _mm256_loadu_si256((const __m256i*)(x + b * 32)));             \
      const __m256i r1 = DOT(_mm256_loadu_si256((const __m256i*)(b1 + 2)),                  \
                             _mm256_loadu_si256((const __m256i*)(x + b * 32 + 32)));        \
      const float d0 = _cvtsh_ss(load_u16(b0)) * dx[b];                                     \
      const float d1 = _cvtsh_ss(load_u16(b1)) * dx[b + 1];                                 \
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(r0), _mm256_set1_ps(d0), acc0);             \
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(r1), _mm256_set1_ps(d1), acc1);             \
    }                                                                                       \
    for (; b < nb; ++b) {                                                                   \
      const uint8_t* b0 = w + b * 34;                                                       \
      const __m256i r0 = DOT(_mm256_loadu_si256((const __m256i*)(b0 + 2)),                  \
                             _mm256_loadu_si256((const __m256i*)(x + b * 32)));             \
      const float d0 = _cvtsh_ss(load_u16(b0)) * dx[b];                                     \
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(r0), _mm256_set1_ps(d0), acc0);             \
    }                                                                                       \
    return hsum256(_mm256_add_ps(acc0, acc1));                                              \
  }

// Q6_K, AVX2 (also what AVX-512 machines run). Per half super-block the four vectors of 32
// codes are rebuilt from ql/qh with 17 logic ops; each goes through vpmaddubsw against its 32
// activations and vpmaddwd applies the int8 scales of its two 16-weight groups (low 128-bit
// lane: the first group, high lane: the second, picked out of the half's 8 scales with
// vpshufb). Per super-block the eight blocks' lanes are summed into one vector of eight int32
// block sums (vphaddd), the codes' offset of 32 comes off as 32 * sc . x16 (one vpmaddwd over
// the 16 group sums), and one FMA applies d * dx[b] to all eight blocks.
TRITUNE_AVX2 float dot_q6_k_avx2(const uint8_t* w, const int8_t* x, const int16_t* x16,
                                 const float* dx, int64_t nsb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  // Scale selectors: lane 0 repeats int16 element 2g of the 8, lane 1 element 2g + 1.
  const __m256i sel[4] = {
      _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
                       2, 3, 2, 3, 2, 3),
      _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7,
                       6, 7, 6, 7, 6, 7),
      _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10,
                       11, 10, 11, 10, 11, 10, 11, 10, 11),
      _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14,
                       15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15)};
  __m256 acc = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* blk = w + sb * 210;
    _mm_prefetch((const char*)blk + kHeadPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch((const char*)blk + kHeadPrefetchBytes + 64, _MM_HINT_T0);
    _mm_prefetch((const char*)blk + kHeadPrefetchBytes + 128, _MM_HINT_T0);
    _mm_prefetch((const char*)blk + kHeadPrefetchBytes + 192, _MM_HINT_T0);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(blk + 192)));
    __m256i v[8];  // per block of 32 weights: 8 int32 partial sums of sc * q * x
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk + 64 * h;
      const __m256i a = _mm256_loadu_si256((const __m256i*)ql);
      const __m256i b = _mm256_loadu_si256((const __m256i*)(ql + 32));
      const __m256i hb = _mm256_loadu_si256((const __m256i*)(blk + 128 + 32 * h));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30)),
          _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(hb, m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30))};
      const __m128i s8 = h == 0 ? _mm256_castsi256_si128(sc16) : _mm256_extracti128_si256(sc16, 1);
      const __m256i sch = _mm256_broadcastsi128_si256(s8);
      const int8_t* xh = x + sb * 256 + 128 * h;
      for (int g = 0; g < 4; ++g) {
        const __m256i p =
            _mm256_maddubs_epi16(q[g], _mm256_loadu_si256((const __m256i*)(xh + 32 * g)));
        v[4 * h + g] = _mm256_madd_epi16(p, _mm256_shuffle_epi8(sch, sel[g]));
      }
    }
    // Lane sums per block: after two rounds of vphaddd each 128-bit lane holds four blocks'
    // sums of that lane's half; the two halves are then added.
    const __m256i s03 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i s47 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(s03, s47, 0x20),
                                    _mm256_permute2x128_si256(s03, s47, 0x31));
    // The offset: block b loses 32 * (sc[2b] * x16[2b] + sc[2b+1] * x16[2b+1]).
    const __m256i off =
        _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)(x16 + sb * 16)));
    sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(off, 5));
    const __m256 f =
        _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(blk + 208))), _mm256_loadu_ps(dx + sb * 8));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), f, acc);
  }
  return hsum256(acc);
}

TRITUNE_DEFINE_Q8_DOTS(avx2, TRITUNE_AVX2, dot_i8_avx2)
TRITUNE_DEFINE_Q8_DOTS(vnni, TRITUNE_VNNI, dot_i8_vnni)

template <uint32_t kType>
TRITUNE_AVX2 inline __m256 load8_as_float(const uint8_t* w) {
  if (kType == kGgmlF32) return _mm256_loadu_ps((const float*)w);
  const __m128i h = _mm_loadu_si128((const __m128i*)w);
  if (kType == kGgmlF16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <uint32_t kType>
TRITUNE_AVX2 float dot_float_avx2(const uint8_t* w, const float* x, int64_t k) {
  constexpr int64_t es = kType == kGgmlF32 ? 4 : 2;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    a0 = _mm256_fmadd_ps(load8_as_float<kType>(w + es * i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load8_as_float<kType>(w + es * (i + 8)), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(load8_as_float<kType>(w + es * (i + 16)), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(load8_as_float<kType>(w + es * (i + 24)), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= k; i += 8) {
    a0 = _mm256_fmadd_ps(load8_as_float<kType>(w + es * i), _mm256_loadu_ps(x + i), a0);
  }
  float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < k; ++i) {
    s += load_as_float<kType>(w, i) * x[i];
  }
  return s;
}

// Row-range drivers: rows [r0, r1), every token; each row is read once and stays in L1 while
// the tokens pass over it.
// Q8_0 with 512-bit VNNI: two blocks per dot product (the two 32-byte quant runs of adjacent
// 34-byte blocks go into one zmm) and two rows at a time (independent accumulator chains, one
// activation load). AVX-512BW has no vpsignb: |w| is vpabsb and x * sign(w) a masked negate.
TRITUNE_VNNI inline __m512 q8_0_pair(const uint8_t* b0, __m512i x, const float* dx) {
  const uint8_t* b1 = b0 + 34;
  const __m512i w =
      _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(b0 + 2))),
                         _mm256_loadu_si256((const __m256i*)(b1 + 2)), 1);
  const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
  const __m512i r = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sx);
  const __m512 sc = _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(_cvtsh_ss(load_u16(b0)) * dx[0])),
                         _mm256_castps_pd(_mm256_set1_ps(_cvtsh_ss(load_u16(b1)) * dx[1])), 1));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(r), sc);
}

TRITUNE_VNNI float q8_0_tail(const uint8_t* w, const int8_t* x, const float* dx, int64_t b,
                             int64_t nb) {
  return b < nb ? dot_q8_0_vnni(w + b * 34, x + b * 32, dx + b, nb - b) : 0.0f;
}

TRITUNE_VNNI void q8_0_rows_512(const uint8_t* data, int64_t row_bytes, int64_t k,
                                const HeadActs& a, int64_t tokens, float* logits, int64_t ldl,
                                int64_t r0, int64_t r1) {
  const int64_t nb = k / 32, nb2 = nb / 2 * 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const int8_t* x = a.q.data() + t * k;
    const float* dx = a.dx.data() + t * nb;
    int64_t r = r0;
    for (; r < r1; ++r) {
      const uint8_t* w0 = data + r * row_bytes;
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
      int64_t b = 0;
      for (; b + 4 <= nb2; b += 4) {
        acc0 = _mm512_add_ps(
            acc0, q8_0_pair(w0 + b * 34, _mm512_loadu_si512((const void*)(x + b * 32)), dx + b));
        acc1 = _mm512_add_ps(
            acc1, q8_0_pair(w0 + (b + 2) * 34, _mm512_loadu_si512((const void*)(x + b * 32 + 64)),
                            dx + b + 2));
      }
      for (; b < nb2; b += 2) {
        acc0 = _mm512_add_ps(
            acc0, q8_0_pair(w0 + b * 34, _mm512_loadu_si512((const void*)(x + b * 32)), dx + b));
      }
      logits[t * ldl + r] =
          _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + q8_0_tail(w0, x, dx, nb2, nb);
    }
    for (; r < r1; ++r) {
      logits[t * ldl + r] = dot_q8_0_vnni(data + r * row_bytes, x, dx, nb);
    }
  }
}

// Q6_K rows for any SIMD level (the AVX2 dot; AVX-512 machines have AVX2).
// Rows in the order r0, r0 + h, r0 + 1, r0 + h + 1, ... (h = half the range, rounded up): the
// core reads the two halves as two streams at once (one stream per core reads 10-30% slower
// here: kernels/roofline.cc).
TRITUNE_AVX2 void q6_k_rows_avx2(const uint8_t* data, int64_t row_bytes, int64_t k,
                                 const HeadActs& a, int64_t tokens, float* logits, int64_t ldl,
                                 int64_t r0, int64_t r1) {
  const int64_t h = (r1 - r0 + 1) / 2;
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t r = r0 + i; r < r1; r += h) {
      const uint8_t* w = data + r * row_bytes;
      for (int64_t t = 0; t < tokens; ++t) {
        logits[t * ldl + r] = dot_q6_k_avx2(w, a.q.data() + t * k, a.x16.data() + t * k / 16,
                                            a.dx.data() + t * (k / 32), k / 256);
      }
    }
  }
}

TRITUNE_VNNI void q8_0_rows_vnni(const uint8_t* data, int64_t row_bytes, int64_t k,
                                 const HeadActs& a, int64_t tokens, float* logits, int64_t ldl,
                                 int64_t r0, int64_t r1) {
  // Rows in slices of 16 so every token reuses a slice while it is in L1/L2.
  for (int64_t rs = r0; rs < r1; rs += 16) {
    q8_0_rows_512(data, row_bytes, k, a, tokens, logits, ldl, rs, std::min(r1, rs + 16));
  }
}

TRITUNE_AVX2 void q8_0_rows_avx2(const uint8_t* data, int64_t row_bytes, int64_t k,
                                 const HeadActs& a, int64_t tokens, float* logits, int64_t ldl,
                                 int64_t r0, int64_t r1) {
  const int64_t nb = k / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = data + r * row_bytes;
    for (int64_t t = 0; t < tokens; ++t) {
      const int8_t* x = a.q.data() + t * k;
      const float* dx = a.dx.data() + t * nb;
      logits[t * ldl + r] = dot_q8_0_avx2(w, x, dx, nb);
    }
  }
}

// ---- Q8_0, interleaved layout (see HeadLayout) -------------------------------------------------
constexpr int64_t kIlRows = 8;                   // rows per group
constexpr int64_t kIlBlockBytes = kIlRows * 34;  // 256 int8 + 8 f16 scales
constexpr int64_t kIlGroupsPerPass = 4;          // groups read side by side: 4 streams per core

// Software prefetch of the interleaved heads: each block's lines kIlPrefetchBytes ahead, in every
// stream. The hardware prefetcher alone leaves the 4 streams per core short of misses in flight
// (the dot work between loads keeps the core's window to about one block per stream): 384-768
// bytes ahead made both heads 1.07-1.15x faster than none on a Zen 3 VM, cold, 2 threads,
// alternating with in-place reads of the same bytes; 1 KB and more ahead was slower again.
// Prefetch points at most 64 bytes apart along a stream cover every line of it, so a block of
// any size needs one per 64 bytes from its start (the Q6_K super-block's 16-byte header sits in
// a 32-byte gap between points).
constexpr int64_t kIlPrefetchBytes = 512;
template <int64_t kBlock>
inline void prefetch_il_block(const uint8_t* p) {
  for (int64_t o = 0; o < kBlock; o += 64) {
    _mm_prefetch((const char*)p + kIlPrefetchBytes + o, _MM_HINT_T0);
  }
}

// Rows [0, 8) of `src` (row_bytes apart) into one group of the interleaved layout at dst.
void interleave_q8_0_group(const uint8_t* src, int64_t row_bytes, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* d = dst + b * kIlBlockBytes;
    for (int64_t r = 0; r < kIlRows; ++r) {
      const uint8_t* blk = src + r * row_bytes + b * 34;
      for (int p = 0; p < 16; ++p) {
        d[p * 16 + r * 2] = blk[2 + 2 * p];
        d[p * 16 + r * 2 + 1] = blk[3 + 2 * p];
      }
      d[256 + 2 * r] = blk[0];
      d[257 + 2 * r] = blk[1];
    }
  }
}

// 8 * G logits of one token from G groups (group_bytes apart in the layout, their 8 logits
// out_stride apart in `out`): per block and group,
// 16 vpmaddwd (8 rows x 2 columns of int16 products each) into an int32 accumulator, exact,
// then one FMA with the 8 rows' scales times the activation block's.
template <int G>
TRITUNE_AVX2 void q8_0_il_token(const uint8_t* g, int64_t group_bytes, int64_t nb,
                                const int16_t* xw, const float* dx, float* out,
                                int64_t out_stride = kIlRows) {
  __m256 f[G];
  for (int q = 0; q < G; ++q) f[q] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = g + b * kIlBlockBytes;
    const int16_t* xb = xw + b * 32;
    for (int q = 0; q < G; ++q) prefetch_il_block<kIlBlockBytes>(p + q * group_bytes);
    __m256i acc[G];
    for (int q = 0; q < G; ++q) acc[q] = _mm256_setzero_si256();
    for (int j = 0; j < 16; ++j) {
      int32_t pair;
      std::memcpy(&pair, xb + 2 * j, 4);
      const __m256i xp = _mm256_set1_epi32(pair);
      for (int q = 0; q < G; ++q) {
        const __m128i w = _mm_loadu_si128((const __m128i*)(p + q * group_bytes + j * 16));
        acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(_mm256_cvtepi8_epi16(w), xp));
      }
    }
    const __m256 s = _mm256_set1_ps(dx[b]);
    for (int q = 0; q < G; ++q) {
      const __m256 d =
          _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + q * group_bytes + 256)));
      f[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[q]), _mm256_mul_ps(d, s), f[q]);
    }
  }
  for (int q = 0; q < G; ++q) _mm256_storeu_ps(out + out_stride * q, f[q]);
}

// Rows [r0, r1) (both multiples of R, the group's rows, r1 <= il_rows) of an interleaved head,
// through token.run<G>(group, group_stride, t, out, out_stride) (R * G logits of token t). The P
// groups read side by side are 1/P of the range apart, so each core streams from P places at
// once, each a long run (one run per core read 10-30% slower on a Zen 3 VM: see
// kernels/roofline.cc); the groups left over after P equal parts go one at a time. Each
// group (or set of 4) is used by every token while it is in L1.
template <int64_t R = kIlRows, int P = kIlGroupsPerPass, class Token>
TRITUNE_AVX2 void il_rows(const uint8_t* data, int64_t group_bytes, const Token& token,
                          int64_t tokens, float* logits, int64_t ldl, int64_t r0, int64_t r1) {
  const int64_t groups = (r1 - r0) / R, quarter = groups / P;
  for (int64_t i = 0; i < quarter; ++i) {
    const int64_t r = r0 + i * R;
    for (int64_t t = 0; t < tokens; ++t) {
      token.template run<P>(data + (r / R) * group_bytes, quarter * group_bytes, t,
                            logits + t * ldl + r, quarter * R);
    }
  }
  for (int64_t g = P * quarter; g < groups; ++g) {
    const int64_t r = r0 + g * R;
    for (int64_t t = 0; t < tokens; ++t) {
      token.template run<1>(data + (r / R) * group_bytes, group_bytes, t, logits + t * ldl + r, R);
    }
  }
}

struct Q8IlToken {
  const HeadActs& a;
  int64_t k;
  template <int G>
  TRITUNE_AVX2 void run(const uint8_t* g, int64_t stride, int64_t t, float* out,
                        int64_t out_stride) const {
    q8_0_il_token<G>(g, stride, k / 32, a.qw.data() + t * k, a.dx.data() + t * (k / 32), out,
                     out_stride);
  }
};

TRITUNE_AVX2 void q8_0_il_rows(const uint8_t* data, int64_t k, const HeadActs& a, int64_t tokens,
                               float* logits, int64_t ldl, int64_t r0, int64_t r1) {
  il_rows(data, k / 32 * kIlBlockBytes, Q8IlToken{a, k}, tokens, logits, ldl, r0, r1);
}

// ---- Q6_K, interleaved layout (see HeadLayout) -------------------------------------------------
// Per group of 8 rows and super-block (256 columns), the 8 rows' 1680 stored bytes reordered
// so that one 32-byte vector decodes to 8 rows x 4 consecutive columns of 6-bit codes (byte
// 4r + i: row r, column i of the dword), the vpmaddubsw operand against a broadcast activation
// dword. The super-block starts with the 8 rows' f16 d (16 bytes, row r at 2r); then come its 8
// blocks of 32 columns, 208 bytes each, in the order the kernel reads them (one sequential
// stream per group: a layout with all low nibbles, then all high bits, then all scales had the
// kernel jump between three regions and ran at a third of the speed). Block b, with 8 code
// dwords c = 0..7 (columns 32b + 4c .. 32b + 4c + 3):
//   [96h, 96h + 96)  for h = 0, 1: three vectors A, B, C holding code dwords 4h, 4h + 1 and
//                    4h + 2 whole in bits 5:0 (one vpand each), and code dword 4h + 3 in pieces
//                    in bits 7:6: its bits 1:0 in A, 3:2 in B, 5:4 in C (3 masks, 3 shifts and
//                    2 ors): 11 logic ops per 4 code vectors (planes of low nibbles and of
//                    high bits took 17)
//   [192, 208)       scales: int8 sc of the block's 16-column group h of row r at 8h + r
// Rows [0, R) of `src` (row_bytes apart, nsb super-blocks each) into one interleaved group. R = 8
// is the layout above (the AVX2 kernel's); R = 16 the same with every part twice as wide (the
// AVX-512 kernel's: one zmm of codes is 16 rows x 4 columns): per super-block 2R bytes of d,
// then 8 blocks of 26R bytes, each two halves of three 4R-byte code vectors and 2R scales.
template <int64_t R = kIlRows>
void interleave_q6_k_group(const uint8_t* src, int64_t row_bytes, int64_t nsb, uint8_t* dst) {
  constexpr int64_t kSb = R * 210, kBlk = R * 26;
  uint8_t q[R][256];
  for (int64_t sb = 0; sb < nsb; ++sb) {
    uint8_t* d = dst + sb * kSb;
    std::memset(d, 0, (size_t)kSb);
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* blk = src + r * row_bytes + sb * 210;
      q6_k_codes(blk, q[r]);
      d[2 * r] = blk[208];
      d[2 * r + 1] = blk[209];
      for (int g = 0; g < 16; ++g)
        d[2 * R + (g / 2) * kBlk + 24 * R + R * (g % 2) + r] = blk[192 + g];
    }
    for (int b = 0; b < 8; ++b) {
      uint8_t* db = d + 2 * R + b * kBlk;
      for (int h = 0; h < 2; ++h) {
        for (int r = 0; r < R; ++r) {
          for (int i = 0; i < 4; ++i) {
            const uint8_t* code = &q[r][32 * b + 16 * h + i];  // code dword 4h + k at code[4k]
            const int j = 4 * r + i;
            for (int k = 0; k < 3; ++k) {
              db[12 * R * h + 4 * R * k + j] =
                  (uint8_t)(code[4 * k] | ((code[12] >> (2 * k)) & 3) << 6);
            }
          }
        }
      }
    }
  }
}

// The Q6_K kernel per ISA level (model/head_q6k_kernel.inc): AVX2 over 8-row groups, 4 groups
// (streams) per core, T0 prefetches 512 bytes ahead (see prefetch_il_block).
TRITUNE_TARGET_PUSH("avx2,fma,f16c")
namespace q6_avx2 {
struct V {
  using I = __m256i;
  using F = __m256;
  static constexpr int64_t kRows = kIlRows;
  static constexpr int kGroupsPerPass = kIlGroupsPerPass;
  static constexpr int64_t kPrefetchBytes = kIlPrefetchBytes;
  static inline void prefetch(const uint8_t* p) { _mm_prefetch((const char*)p, _MM_HINT_T0); }
  static inline I load(const uint8_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
  static inline F load_halves(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
  }
  static inline I broadcast_dword(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  // 8 int8 scales -> (sc[r], sc[r]) int16 pairs.
  static inline I scale_pairs(const uint8_t* p) {
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i*)p), dup));
  }
  static inline I set1_i8(char v) { return _mm256_set1_epi8(v); }
  static inline I zero_i() { return _mm256_setzero_si256(); }
  static inline F zero_ps() { return _mm256_setzero_ps(); }
  static inline F set1_ps(float v) { return _mm256_set1_ps(v); }
  static inline I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static inline I or_(I a, I b) { return _mm256_or_si256(a, b); }
  template <int N>
  static inline I srli16(I a) {
    return _mm256_srli_epi16(a, N);
  }
  static inline I maddubs(I a, I b) { return _mm256_maddubs_epi16(a, b); }
  static inline I madd(I a, I b) { return _mm256_madd_epi16(a, b); }
  static inline I add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static inline I sub16(I a, I b) { return _mm256_sub_epi16(a, b); }
  static inline I add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static inline F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static inline F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static inline F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static inline void store(float* p, F v) { _mm256_storeu_ps(p, v); }
};
#include "model/head_q6k_kernel.inc"
}  // namespace q6_avx2
TRITUNE_TARGET_POP

// ---- Q6_K, 16-row interleaved layout, AVX-512 ------------------------------------------------
// The 8-row kernel at twice the width: one zmm of codes holds 16 rows x 4 columns, so each op
// does the work of two AVX2 ones (Zen 4/5 run 512-bit logic, vpmaddubsw and vpmaddwd at the
// 256-bit rate per op). At 42 GB/s per core (a Zen 5 VM's share of 85 GB/s) the AVX2 kernel's
// 49 vector ops per 8 rows x 32 columns left too little slack to stream at memory speed.
constexpr int64_t kIl16 = 16;  // rows per group
// One stream per core, prefetched 4 KB ahead with NTA: on a Zen 5 VM, 2 threads, a 2B4T head
// (269 MB), 4 streams per core as in the AVX2 kernel ran 1.3x slower than one (at 48-52 GB/s
// machine bandwidth, where the AVX2 kernel reads at memory speed); at 85 GB/s one stream with
// 4 KB NTA took 0.93x the AVX2 kernel's time, 2 KB 1.01x, T0 hints 0.97-1.04x.
constexpr int64_t kIl16PrefetchBytes = 4096;
constexpr int kIl16GroupsPerPass = 1;

TRITUNE_VNNI inline __m512i broadcast_dword512(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

TRITUNE_TARGET_PUSH("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")
namespace q6_avx512 {
struct V {
  using I = __m512i;
  using F = __m512;
  static constexpr int64_t kRows = kIl16;
  static constexpr int kGroupsPerPass = kIl16GroupsPerPass;
  static constexpr int64_t kPrefetchBytes = kIl16PrefetchBytes;
  static inline void prefetch(const uint8_t* p) { _mm_prefetch((const char*)p, _MM_HINT_NTA); }
  static inline I load(const uint8_t* p) { return _mm512_loadu_si512((const void*)p); }
  static inline F load_halves(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
  }
  static inline I broadcast_dword(const void* p) { return broadcast_dword512(p); }
  // 16 int8 scales -> (sc[r], sc[r]) int16 pairs: broadcast to both 128-bit lanes, lane 0
  // duplicates bytes 0-7 and lane 1 bytes 8-15, then vpmovsxbw.
  static inline I scale_pairs(const uint8_t* p) {
    const __m256i dup = _mm256_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9,
                                         10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    return _mm512_cvtepi8_epi16(
        _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)p)), dup));
  }
  static inline I set1_i8(char v) { return _mm512_set1_epi8(v); }
  static inline I zero_i() { return _mm512_setzero_si512(); }
  static inline F zero_ps() { return _mm512_setzero_ps(); }
  static inline F set1_ps(float v) { return _mm512_set1_ps(v); }
  static inline I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static inline I or_(I a, I b) { return _mm512_or_si512(a, b); }
  template <int N>
  static inline I srli16(I a) {
    return _mm512_srli_epi16(a, N);
  }
  static inline I maddubs(I a, I b) { return _mm512_maddubs_epi16(a, b); }
  static inline I madd(I a, I b) { return _mm512_madd_epi16(a, b); }
  static inline I add16(I a, I b) { return _mm512_add_epi16(a, b); }
  static inline I sub16(I a, I b) { return _mm512_sub_epi16(a, b); }
  static inline I add32(I a, I b) { return _mm512_add_epi32(a, b); }
  static inline F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static inline F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static inline F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static inline void store(float* p, F v) { _mm512_storeu_ps(p, v); }
};
#include "model/head_q6k_kernel.inc"
}  // namespace q6_avx512
TRITUNE_TARGET_POP

// ---- Q8_0, 16-row interleaved layout, AVX-512 VNNI ---------------------------------------------
// Per group of 16 rows and block of 32 columns (544 bytes, as stored): 8 vectors of 64 bytes,
// vector c holding rows r = 0..15 x columns 4c..4c+3 at byte 4r + i, each weight stored as
// w + 128 (= w ^ 0x80, a u8), then the 16 rows' f16 scales. vpdpbusd takes the u8 weights
// against a broadcast activation dword: sum (w + 128) x = sum w x + 128 sum x, and the block's
// activation sum is the same for all 16 rows, so one subtraction per block corrects it. 8 dot
// products per 16 rows x 32 columns, no sign trick (the stored-layout VNNI kernel needs vpabsb,
// a mask and a masked negate per vector, and horizontal sums per row).
constexpr int64_t kIl16Q8Block = kIl16 * 34;

void interleave_q8_0_group16(const uint8_t* src, int64_t row_bytes, int64_t nb, uint8_t* dst) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* d = dst + b * kIl16Q8Block;
    for (int64_t r = 0; r < kIl16; ++r) {
      const uint8_t* blk = src + r * row_bytes + b * 34;
      for (int c = 0; c < 8; ++c) {
        for (int i = 0; i < 4; ++i) d[64 * c + 4 * r + i] = (uint8_t)(blk[2 + 4 * c + i] ^ 0x80);
      }
      d[512 + 2 * r] = blk[0];
      d[513 + 2 * r] = blk[1];
    }
  }
}

template <int G>
TRITUNE_VNNI void q8_0_il16_token(const uint8_t* g, int64_t group_bytes, int64_t nb,
                                  const int8_t* x, const int32_t* bsum, const float* dx, float* out,
                                  int64_t out_stride) {
  __m512 f[G];
  for (int q = 0; q < G; ++q) f[q] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* xb = x + 32 * b;
    const __m512i off = _mm512_set1_epi32(128 * bsum[b]);
    const __m512 s = _mm512_set1_ps(dx[b]);
    for (int q = 0; q < G; ++q) {
      const uint8_t* p = g + q * group_bytes + b * kIl16Q8Block;
      for (int64_t o = 0; o < kIl16Q8Block; o += 64) {
        _mm_prefetch((const char*)p + kIl16PrefetchBytes + o, _MM_HINT_NTA);
      }
      // Two chains (even and odd dwords) halve the dot products' dependent latency.
      __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
      for (int c = 0; c < 8; c += 2) {
        a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512((const void*)(p + 64 * c)),
                                 broadcast_dword512(xb + 4 * c));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512((const void*)(p + 64 * c + 64)),
                                 broadcast_dword512(xb + 4 * c + 4));
      }
      const __m512i acc = _mm512_sub_epi32(_mm512_add_epi32(a0, a1), off);
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p + 512)));
      f[q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(d, s), f[q]);
    }
  }
  for (int q = 0; q < G; ++q) _mm512_storeu_ps(out + out_stride * q, f[q]);
}

struct Q8Il16Token {
  const HeadActs& a;
  int64_t k;
  template <int G>
  TRITUNE_VNNI void run(const uint8_t* g, int64_t stride, int64_t t, float* out,
                        int64_t out_stride) const {
    q8_0_il16_token<G>(g, stride, k / 32, a.q.data() + t * k, a.bsum.data() + t * (k / 32),
                       a.dx.data() + t * (k / 32), out, out_stride);
  }
};

// Rows [r0, r1) (multiples of 16, r1 <= il_rows) of the 16-row interleaved Q8_0 head.
TRITUNE_VNNI void q8_0_il16_rows(const uint8_t* data, int64_t k, const HeadActs& a, int64_t tokens,
                                 float* logits, int64_t ldl, int64_t r0, int64_t r1) {
  il_rows<kIl16, kIl16GroupsPerPass>(data, k / 32 * kIl16Q8Block, Q8Il16Token{a, k}, tokens, logits,
                                     ldl, r0, r1);
}

void q8_rows_scalar(bool q6k, const uint8_t* data, int64_t row_bytes, int64_t k, const HeadActs& a,
                    int64_t tokens, float* logits, int64_t ldl, int64_t r0, int64_t r1) {
  const int64_t nb = k / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = data + r * row_bytes;
    for (int64_t t = 0; t < tokens; ++t) {
      const int8_t* x = a.q.data() + t * k;
      const float* dx = a.dx.data() + t * nb;
      logits[t * ldl + r] =
          q6k ? dot_q6_k_scalar(w, x, dx, k / 256) : dot_q8_0_scalar(w, x, dx, nb);
    }
  }
}

template <uint32_t kType, bool kSimd>
void float_rows(const uint8_t* data, int64_t row_bytes, int64_t k, const float* x, int64_t ldx,
                int64_t tokens, float* logits, int64_t ldl, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = data + r * row_bytes;
    for (int64_t t = 0; t < tokens; ++t) {
      logits[t * ldl + r] = kSimd ? dot_float_avx2<kType>(w, x + t * ldx, k)
                                  : dot_float_scalar<kType>(w, x + t * ldx, k);
    }
  }
}

}  // namespace

std::string head_type_name(uint32_t ggml_type) {
  const TypeInfo* t = find_type(ggml_type);
  return t ? t->name : "type " + std::to_string(ggml_type);
}

bool head_type_is_int8(uint32_t t) {
  return t == kGgmlQ8_0 || t == kGgmlQ6_K;
}

void check_raw_matrix(const RawMatrix& m, int64_t rows, int64_t cols) {
  const TypeInfo* t = find_type(m.ggml_type);
  if (!t) {
    throw Error("tensor '" + m.name + "': type " + std::to_string(m.ggml_type) +
                " is not supported for the embedding/output head (supported: f32, f16, bf16, "
                "q8_0, q6_k); re-quantize the file's token_embd/output to one of them");
  }
  if (m.rows != rows || m.cols != cols) {
    throw Error("tensor '" + m.name + "': shape " + std::to_string(m.rows) + "x" +
                std::to_string(m.cols) + ", expected " + std::to_string(rows) + "x" +
                std::to_string(cols) + " (vocab x hidden)");
  }
  if (cols % t->block != 0) {
    throw Error("tensor '" + m.name + "': " + t->name + " needs the row length " +
                std::to_string(cols) + " to be a multiple of " + std::to_string(t->block));
  }
  const int64_t need = rows * (cols / t->block) * t->block_bytes;
  if (m.data == nullptr || m.bytes < need) {
    throw Error("tensor '" + m.name + "': holds " + std::to_string(m.bytes) + " bytes, " +
                head_type_name(m.ggml_type) + " " + std::to_string(rows) + "x" +
                std::to_string(cols) + " needs " + std::to_string(need) + " (truncated file?)");
  }
}

static int64_t row_bytes_of(const RawMatrix& m) {
  const TypeInfo* t = find_type(m.ggml_type);
  return (m.cols / t->block) * t->block_bytes;
}

void embed_row(const RawMatrix& m, int64_t row, float* out) {
  if (row < 0 || row >= m.rows) {
    throw Error("token id " + std::to_string(row) + " is outside the vocabulary of '" + m.name +
                "' (" + std::to_string(m.rows) + " rows)");
  }
  check_raw_matrix(m, m.rows, m.cols);
  dequantize_row(m, row, out);
}

void head_reference(const RawMatrix& m, const float* x, int64_t tokens, int64_t ldx, float* logits,
                    int64_t ldl, ThreadPool* pool) {
  check_raw_matrix(m, m.rows, m.cols);
  const int64_t k = m.cols;
  const bool int8_acts = head_type_is_int8(m.ggml_type);
  HeadActs a;
  if (int8_acts) a = quantize_head_acts(x, tokens, ldx, k);
  auto rows = [&](int64_t r0, int64_t r1, int) {
    std::vector<float> w((size_t)k);
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(m, r, w.data());
      for (int64_t t = 0; t < tokens; ++t) {
        double y = 0.0;
        if (int8_acts) {
          for (int64_t b = 0; b < k / kActBlock; ++b) {
            double blk = 0.0;
            for (int64_t i = b * kActBlock; i < (b + 1) * kActBlock; ++i) {
              blk += (double)w[(size_t)i] * a.q[(size_t)(t * k + i)];
            }
            y += blk / a.s[(size_t)(t * (k / kActBlock) + b)];
          }
        } else {
          for (int64_t i = 0; i < k; ++i) y += (double)w[(size_t)i] * x[t * ldx + i];
        }
        logits[t * ldl + r] = (float)y;
      }
    }
  };
  if (pool) {
    pool->parallel_for(m.rows, rows);
  } else {
    rows(0, m.rows, 0);
  }
}

OutputHead::OutputHead(const RawMatrix& m, HeadLayout layout) {
  check_raw_matrix(m, m.rows, m.cols);
  rows_ = m.rows;
  cols_ = m.cols;
  const Isa isa = selected_isa();
  impl_ = isa >= Isa::kAvx512Vnni ? Impl::kAvx512Vnni
          : isa >= Isa::kAvx2     ? Impl::kAvx2
                                  : Impl::kScalar;
  switch (m.ggml_type) {
    case kGgmlF32:
      kind_ = Kind::kF32;
      break;
    case kGgmlF16:
      kind_ = Kind::kF16;
      break;
    case kGgmlBF16:
      kind_ = Kind::kBF16;
      break;
    case kGgmlQ8_0:
      kind_ = Kind::kQ8_0;
      break;
    default:
      kind_ = Kind::kQ6K;
      break;  // Q6_K (check_raw_matrix refused the rest)
  }
  // Float dots have no AVX-512 version: AVX2+FMA+F16C. Q6_K has one for its 16-row
  // interleaved layout only; its other rows run the AVX2 dot.
  const bool int8_kind = kind_ == Kind::kQ8_0 || kind_ == Kind::kQ6K;
  if (!int8_kind && impl_ == Impl::kAvx512Vnni) impl_ = Impl::kAvx2;
  // Rows per interleaved group: 16 for the AVX-512 kernels, 8 for the AVX2 ones.
  il_group_ = int8_kind && impl_ == Impl::kAvx512Vnni ? kIl16 : kIlRows;
  row_bytes_ = row_bytes_of(m);
  data_ = m.data;
  const int64_t bytes = rows_ * row_bytes_;
  const bool copy = m.file_mapped && bytes >= (int64_t)kHugePageBytes;
  const bool can_interleave = int8_kind && impl_ != Impl::kScalar && rows_ >= il_group_;
  const bool interleave = can_interleave && (layout == HeadLayout::kInterleaved ||
                                             (layout == HeadLayout::kAuto && copy));
  if (interleave || copy) {
    // The head is the largest stream of a decode step (349 MB for 2B4T in Q8_0, 269 MB in
    // Q6_K). In the file mapping it sits on 4 KiB pages; a copy on huge pages streams 10-15%
    // faster (see kernels/huge_pages.h). The mapped pages are then dropped from this process (a
    // file mapping re-reads them on access; tied embeddings look up single rows), so resident
    // memory holds the head once. The copy is also where the rows go into the interleaved
    // layout (groups of 8 rows; the rows after the last group stay as stored).
    // In steps of about 8 MiB, each dropped once copied, so the file pages and the copy are
    // never both resident (the whole head at once would add 349 MB to the peak).
    il_rows_ = interleave ? rows_ / il_group_ * il_group_ : 0;
    owned_.resize((size_t)bytes);
    const int64_t nb = cols_ / 32;
    const int64_t step =
        std::max<int64_t>(1, (int64_t(8) << 20) / (il_group_ * row_bytes_)) * il_group_;
    for (int64_t r0 = 0; r0 < rows_; r0 += step) {
      const int64_t r1 = std::min(rows_, r0 + step), mid = std::max(r0, std::min(r1, il_rows_));
      for (int64_t r = r0; r < mid; r += il_group_) {
        if (kind_ == Kind::kQ6K) {
          (il_group_ == kIl16 ? interleave_q6_k_group<kIl16>
                              : interleave_q6_k_group<kIlRows>)(m.data + r * row_bytes_, row_bytes_,
                                                                cols_ / 256,
                                                                owned_.data() + r * row_bytes_);
        } else if (il_group_ == kIl16) {
          interleave_q8_0_group16(m.data + r * row_bytes_, row_bytes_, nb,
                                  owned_.data() + r * row_bytes_);
        } else {
          interleave_q8_0_group(m.data + r * row_bytes_, row_bytes_, nb,
                                owned_.data() + r * row_bytes_);
        }
      }
      std::memcpy(owned_.data() + mid * row_bytes_, m.data + mid * row_bytes_,
                  (size_t)((r1 - mid) * row_bytes_));
      if (m.file_mapped)
        drop_mapped_pages(m.data + r0 * row_bytes_, (size_t)((r1 - r0) * row_bytes_));
    }
    data_ = owned_.data();
  }
  weight_bytes_ = rows_ * row_bytes_;
  static const char* kKindNames[] = {"f32", "f16", "bf16", "q8_0", "q6_k"};
  static const char* kImplNames[] = {"scalar", "avx2", "avx512vnni"};
  const bool int8 = kind_ == Kind::kQ8_0 || kind_ == Kind::kQ6K;
  describe_ =
      il_rows_ > 0
          ? std::string(kind_ == Kind::kQ6K
                            ? (il_group_ == kIl16 ? "q6_k int8 dot avx512, 16-row interleaved"
                                                  : "q6_k int8 dot avx2, 8-row interleaved")
                            : (il_group_ == kIl16 ? "q8_0 int8 dot avx512vnni, 16-row interleaved"
                                                  : "q8_0 int16 dot avx2, 8-row interleaved"))
          : std::string(kKindNames[(int)kind_]) + (int8 ? " int8 dot " : " float dot ") +
                kImplNames[(int)impl_];
}

void OutputHead::forward(const float* x, int64_t tokens, int64_t ldx, float* logits, int64_t ldl,
                         ThreadPool& pool) const {
  if (tokens <= 0) return;
  const bool int8 = kind_ == Kind::kQ8_0 || kind_ == Kind::kQ6K;
  HeadActs a;
  const bool q6k = kind_ == Kind::kQ6K;
  // Q6_K's 16-column sums serve the rows read as stored (all rows, or those after the last
  // interleaved group); the interleaved rows take their offsets from o32.
  const bool il = il_rows_ > 0;
  if (int8) {
    a = quantize_head_acts(x, tokens, ldx, cols_, q6k && il_rows_ < rows_,
                           il && !q6k && il_group_ == kIlRows, il && q6k);
  }
  // Rows in chunks of a multiple of 64 (of the cache line for every type, and of the
  // interleaved groups): dynamic claiming keeps both cores streaming to the end even when one
  // is interrupted. 64 chunks per thread: a 2B4T head chunk is then ~2 MB (Q6_K), and the
  // thread that finishes first waits 0.07-0.14 ms per token for the other instead of 0.20-0.37
  // ms with 16 (`bench e2e --profile`, tg wait; 3 alternating runs each).
  const int64_t grain = std::max<int64_t>(64, rows_ / (pool.size() * 64)) / 64 * 64;
  pool.parallel_for(
      rows_,
      [&](int64_t r0, int64_t r1, int) {
        if (il_rows_ > 0) {
          const int64_t mid = std::min(r1, il_rows_);
          if (r0 < mid) {
            const bool wide = il_group_ == kIl16;
            (q6k ? (wide ? q6_avx512::q6_k_il_rows : q6_avx2::q6_k_il_rows)
                 : (wide ? q8_0_il16_rows : q8_0_il_rows))(data_, cols_, a, tokens, logits, ldl, r0,
                                                           mid);
          }
          if (std::max(r0, mid) < r1) {
            (q6k ? q6_k_rows_avx2 : q8_0_rows_avx2)(data_, row_bytes_, cols_, a, tokens, logits,
                                                    ldl, std::max(r0, mid), r1);
          }
          return;
        }
        if (int8) {
          if (impl_ == Impl::kAvx512Vnni && !q6k) {  // Q6_K as stored: the AVX2 dot
            q8_0_rows_vnni(data_, row_bytes_, cols_, a, tokens, logits, ldl, r0, r1);
          } else if (impl_ != Impl::kScalar) {
            (q6k ? q6_k_rows_avx2 : q8_0_rows_avx2)(data_, row_bytes_, cols_, a, tokens, logits,
                                                    ldl, r0, r1);
          } else {
            q8_rows_scalar(q6k, data_, row_bytes_, cols_, a, tokens, logits, ldl, r0, r1);
          }
          return;
        }
        const bool simd = impl_ != Impl::kScalar;
        switch (kind_) {
          case Kind::kF32:
            simd ? float_rows<kGgmlF32, true>(data_, row_bytes_, cols_, x, ldx, tokens, logits, ldl,
                                              r0, r1)
                 : float_rows<kGgmlF32, false>(data_, row_bytes_, cols_, x, ldx, tokens, logits,
                                               ldl, r0, r1);
            break;
          case Kind::kF16:
            simd ? float_rows<kGgmlF16, true>(data_, row_bytes_, cols_, x, ldx, tokens, logits, ldl,
                                              r0, r1)
                 : float_rows<kGgmlF16, false>(data_, row_bytes_, cols_, x, ldx, tokens, logits,
                                               ldl, r0, r1);
            break;
          default:
            simd ? float_rows<kGgmlBF16, true>(data_, row_bytes_, cols_, x, ldx, tokens, logits,
                                               ldl, r0, r1)
                 : float_rows<kGgmlBF16, false>(data_, row_bytes_, cols_, x, ldx, tokens, logits,
                                                ldl, r0, r1);
            break;
        }
      },
      grain);
}

}  // namespace tritune
