// Causal grouped-query attention, twice: attention_ref (scalar loops, obviously correct) and
// attention_fast (blocked and vectorized, compiled per ISA level). Both follow one canonical
// float order, so they are bit-identical at every ISA level (tests/model/ops_test.cc):
//
//   s_j  = fma-chain over d of q[d] * k_j[d] (sequential in d, from +0), times 1/sqrt(D)
//   m    = max_j s_j
//   e_j  = exp_canonical(s_j - m)
//   sum  = 16 interleaved partial sums of e_j (j goes to lane j % 16, in order), combined
//          pairwise (lane i += lane i + w for w = 8, 4, 2, 1)
//   p_j  = e_j * (1 / sum)
//   o[d] = fma-chain over j of p_j * v_j[d] (sequential in j, from +0)
//
// The order suits vectors: the key cache stores 16 positions dimension-major (kv_cache.h), so
// one FMA computes 16 scores, and o[d] vectorizes over d. No transposes, no horizontal sums in
// the inner loops. Prefill tasks take blocks of query rows, so each key block loaded serves all
// of them; decode runs several key blocks at once so the FMA chains overlap.
#include "model/ops.h"

// Every a*b+c in this file is spelled as an fma when it is one; nothing else may be contracted.
#pragma GCC optimize("fp-contract=off")
// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (a known false
// positive); the pragma must precede <immintrin.h>.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/half.h"

namespace tritune {

// ---- exp -------------------------------------------------------------------------------------
namespace {

// Cephes-style expf: x = n ln2 + r, |r| <= ln2/2, e^r by a polynomial, times 2^n. The input is
// clamped to [-87, 88] so 2^n stays a normal float (e^-87 ~ 1.6e-38 stands in for anything
// smaller: harmless in a softmax whose largest term is 1).
constexpr float kExpLo = -87.0f, kExpHi = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

}  // namespace

float exp_canonical(float x) {
  x = x > kExpLo ? x : kExpLo;  // the operand order of MAXPS / MINPS (NaN -> the bound)
  x = x < kExpHi ? x : kExpHi;
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = kP0;
  p = std::fma(p, r, kP1);
  p = std::fma(p, r, kP2);
  p = std::fma(p, r, kP3);
  p = std::fma(p, r, kP4);
  p = std::fma(p, r, kP5);
  const float r2 = r * r;
  const float y = std::fma(p, r2, r) + 1.0f;
  const uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return y * scale;
}

namespace {

// The canonical 16-lane sum tree.
float lane_tree(float* lane) {
  for (int w = 8; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) lane[j] = lane[j] + lane[j + w];
  }
  return lane[0];
}

void check_attention(int64_t tokens, int64_t pos0, const AttentionShape& s, const KvCache& cache) {
  if (s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0) {
    throw Error("attention: heads " + std::to_string(s.heads) + " is not a multiple of kv_heads " +
                std::to_string(s.kv_heads));
  }
  if (s.head_dim <= 0 || tokens <= 0 || pos0 < 0 || pos0 + tokens > cache.capacity()) {
    throw Error("attention: positions up to " + std::to_string(pos0 + tokens) +
                " exceed the KV cache of " + std::to_string(cache.capacity()));
  }
}

}  // namespace

// ---- reference -------------------------------------------------------------------------------
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
      p.assign((size_t)(pos + 1), 0.0f);
      for (int64_t j = 0; j <= pos; ++j) {
        cache.read_key(layer, kh, j, k.data());
        float dot = 0.0f;
        for (int64_t d = 0; d < D; ++d) dot = std::fma(qh[d], k[(size_t)d], dot);
        p[(size_t)j] = dot * scale;
      }
      float m = p[0];
      for (int64_t j = 1; j <= pos; ++j) m = p[(size_t)j] > m ? p[(size_t)j] : m;
      float lane[16] = {0};
      for (int64_t j = 0; j <= pos; ++j) {
        p[(size_t)j] = exp_canonical(p[(size_t)j] - m);
        lane[j % 16] = lane[j % 16] + p[(size_t)j];
      }
      const float inv = 1.0f / lane_tree(lane);
      for (int64_t j = 0; j <= pos; ++j) p[(size_t)j] = p[(size_t)j] * inv;
      for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
      for (int64_t j = 0; j <= pos; ++j) {
        cache.read_value(layer, kh, j, v.data());
        for (int64_t d = 0; d < D; ++d) o[d] = std::fma(p[(size_t)j], v[(size_t)d], o[d]);
      }
    }
  };
  if (pool) {
    pool->parallel_for(tokens * H, run, 1);
  } else {
    run(0, tokens * H, 0);
  }
}

// ---- vectorized ------------------------------------------------------------------------------
namespace {

// One task: the query rows r = (token t, q head i of the group) of kv head kh for tokens [t0, t1),
// every q head of the group, t-major, so the number of keys a row sees (pos0 + t + 1) never falls.
struct Rows {
  const float* q;  // q of token 0 (tokens x heads x D)
  float* out;
  int64_t pos0, t0, t1, g, kh;  // g: q heads per kv head
  int64_t count() const { return (t1 - t0) * g; }
  int64_t token(int64_t r) const { return t0 + r / g; }
  int64_t keys(int64_t r) const { return pos0 + token(r) + 1; }
  int64_t head(int64_t r) const { return kh * g + r % g; }
};

// Asks for the keys and values of positions [0, n) of one kv head (two contiguous ranges) to be
// brought towards L2 at once. In decode the whole cache was evicted by a token's worth of
// weights since it was last read, and a few short streams read in order would pay the memory
// latency many times over; up-front prefetches keep many misses in flight.
void prefetch_head(const KvCache& cache, int64_t layer, int64_t kh, int64_t n) {
  const int64_t bytes = std::min<int64_t>(n * cache.head_dim() * cache.elem_bytes(), 512 << 10);
  const char* k = static_cast<const char*>(cache.key_block(layer, kh, 0));
  const char* v = static_cast<const char*>(cache.value(layer, kh, 0));
  for (int64_t o = 0; o < bytes; o += 64) {
    __builtin_prefetch(k + o, 0, 2);
    __builtin_prefetch(v + o, 0, 2);
  }
}

// Positions per block of the weighted-value pass (attention_kernel.inc).
constexpr int64_t kValueBlock = 32;
// Positions the value pass prefetches ahead of the one it reads: 16 KB of an f16 cache of
// head_dim 128, two blocks. 8 positions (2 KB) left the value pass waiting on memory: it takes a
// 32-position block's rows from memory much faster than it computes on them, so with little in
// flight it alternates between the two instead of overlapping them (attend_values).
constexpr int64_t kValueAhead = 64;

// Each ISA level: its sixteen-float type V (one key block, or 16 dimensions of a value row),
// then the shared kernel body compiled for it. Every level rounds exactly like the scalar code
// above: fma is fused everywhere, max/min keep the MAXPS/MINPS operand order, f16 -> f32 is
// exact.
namespace attn_generic {
struct V {
  struct B {
    float v[16];
  };
  static B load(const float* p) {
    B b;
    std::memcpy(b.v, p, sizeof b.v);
    return b;
  }
  static B load(const uint16_t* p) {
    B b;
    for (int i = 0; i < 16; ++i) b.v[i] = half_to_float(p[i]);
    return b;
  }
  static void store(float* p, const B& b) { std::memcpy(p, b.v, sizeof b.v); }
  static B zero() { return B{}; }
  static B fma_s(float a, const B& b, const B& c) {
    B r;
    for (int i = 0; i < 16; ++i) r.v[i] = std::fma(a, b.v[i], c.v[i]);
    return r;
  }
  static B mul_s(const B& a, float s) {
    B r;
    for (int i = 0; i < 16; ++i) r.v[i] = a.v[i] * s;
    return r;
  }
  static B max(const B& a, const B& b) {
    B r;
    for (int i = 0; i < 16; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return r;
  }
  static B add(const B& a, const B& b) {
    B r;
    for (int i = 0; i < 16; ++i) r.v[i] = a.v[i] + b.v[i];
    return r;
  }
  static B exp_sub(const B& a, float m) {
    B r;
    for (int i = 0; i < 16; ++i) r.v[i] = exp_canonical(a.v[i] - m);
    return r;
  }
  // Lanes [n, 16) set to +0.
  static B keep_first(const B& a, int n) {
    B r{};
    for (int i = 0; i < n && i < 16; ++i) r.v[i] = a.v[i];
    return r;
  }
  static constexpr int kScoreRows = 4;
  static constexpr int kValueAcc = 4;
};

#include "model/attention_kernel.inc"
}  // namespace attn_generic

TRITUNE_TARGET_PUSH("avx2,fma,f16c")
namespace attn_avx2 {
struct V {
  struct B {
    __m256 lo, hi;
  };
  static inline B load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static inline B load(const uint16_t* p) {
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
  }
  static inline void store(float* p, const B& b) {
    _mm256_storeu_ps(p, b.lo);
    _mm256_storeu_ps(p + 8, b.hi);
  }
  static inline B zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static inline B fma_s(float a, const B& b, const B& c) {
    const __m256 s = _mm256_set1_ps(a);
    return {_mm256_fmadd_ps(s, b.lo, c.lo), _mm256_fmadd_ps(s, b.hi, c.hi)};
  }
  static inline B mul_s(const B& a, float s) {
    const __m256 v = _mm256_set1_ps(s);
    return {_mm256_mul_ps(a.lo, v), _mm256_mul_ps(a.hi, v)};
  }
  static inline B max(const B& a, const B& b) {
    return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)};
  }
  static inline B add(const B& a, const B& b) {
    return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
  }
  static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(kExpLo));
    x = _mm256_min_ps(x, _mm256_set1_ps(kExpHi));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Hi), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Lo), r);
    __m256 p = _mm256_set1_ps(kP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
    const __m256 y =
        _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  }
  static inline B exp_sub(const B& a, float m) {
    const __m256 v = _mm256_set1_ps(m);
    return {exp8(_mm256_sub_ps(a.lo, v)), exp8(_mm256_sub_ps(a.hi, v))};
  }
  static inline B keep_first(const B& a, int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 lo = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
    const __m256 hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane));
    return {_mm256_and_ps(a.lo, lo), _mm256_and_ps(a.hi, hi)};
  }
  static constexpr int kScoreRows = 4;  // 8 ymm accumulators of 16 registers
  static constexpr int kValueAcc = 4;   // the same for the weighted values
};

#include "model/attention_kernel.inc"
}  // namespace attn_avx2
TRITUNE_TARGET_POP

TRITUNE_TARGET_PUSH("avx2,fma,f16c,avx512f,avx512vl,avx512bw")
namespace attn_avx512 {
struct V {
  using B = __m512;
  static inline B load(const float* p) { return _mm512_loadu_ps(p); }
  static inline B load(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static inline void store(float* p, B b) { _mm512_storeu_ps(p, b); }
  static inline B zero() { return _mm512_setzero_ps(); }
  static inline B fma_s(float a, B b, B c) { return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c); }
  static inline B mul_s(B a, float s) { return _mm512_mul_ps(a, _mm512_set1_ps(s)); }
  static inline B max(B a, B b) { return _mm512_max_ps(a, b); }
  static inline B add(B a, B b) { return _mm512_add_ps(a, b); }
  static inline B exp_sub(B a, float m) {
    __m512 x = _mm512_sub_ps(a, _mm512_set1_ps(m));
    x = _mm512_max_ps(x, _mm512_set1_ps(kExpLo));
    x = _mm512_min_ps(x, _mm512_set1_ps(kExpHi));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Hi), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Lo), r);
    __m512 p = _mm512_set1_ps(kP0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
    const __m512 y =
        _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
  }
  static inline B keep_first(B a, int n) {
    return _mm512_maskz_mov_ps((__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1), a);
  }
  static constexpr int kScoreRows = 8;  // 8 independent FMA chains hide the FMA latency
  // 16 accumulators and 8 value vectors of 32 zmm registers: a pass covers 128 dimensions of
  // two rows, a whole f16 value row of head_dim 128 (attend_values).
  static constexpr int kValueAcc = 16;
};

#include "model/attention_kernel.inc"
}  // namespace attn_avx512
TRITUNE_TARGET_POP

}  // namespace

// The vectorized kernels of one ISA level (the namespaces above), picked once per call.
struct AttnKernels {
  void (*attend)(const Rows&, const AttentionShape&, const KvCache&, int64_t, std::vector<float>&);
  void (*scores)(const Rows&, const AttentionShape&, const KvCache&, int64_t, float*, int64_t,
                 int64_t, int64_t);
  void (*softmax_values)(const Rows&, const AttentionShape&, const KvCache&, int64_t, float*,
                         int64_t, int64_t, int64_t, std::vector<float>&);
};

const AttnKernels& attn_kernels() {
  static const AttnKernels k512{attn_avx512::attend_any, attn_avx512::scores_any,
                                attn_avx512::softmax_values_any};
  static const AttnKernels k256{attn_avx2::attend_any, attn_avx2::scores_any,
                                attn_avx2::softmax_values_any};
  static const AttnKernels kGeneric{attn_generic::attend_any, attn_generic::scores_any,
                                    attn_generic::softmax_values_any};
  const Isa isa = selected_isa();
  return isa >= Isa::kAvx512Vnni ? k512 : isa >= Isa::kAvx2 ? k256 : kGeneric;
}

// Below this many multiply-adds (query rows x keys x head_dim) a prefill's call stays on the
// calling thread: waking a worker costs more than the arithmetic.
constexpr double kSerialWork = 5e4;
// A decode step against fewer keys than this runs on the calling thread; from here on it runs
// attention_decode_split on the pool. Below, the parallel work saves less than it costs: the
// pool's idle worker is prefetching its share of the o projection's weights meanwhile
// (pool_prefetch_next), and a parallel loop stops it to read a few KB of cache. Zen 5 VM, 2B4T
// shape, bench e2e -p 0 -n 64 alternating with q-head halves on both threads (as before): the
// attention stage about as long on one thread (0.12-0.26 against 0.17-0.26 ms per token), paired
// tokens 1.16-1.18x the bound against 1.19-1.21x in the high memory state (5 runs each), 1.07-
// 1.09x both in the low one. Contexts of 129-193 keys (-d 128) were at parity on one thread;
// 385-449 keys (-d 384) slower (attention 0.87 -> 1.05 ms per token). The split itself against
// q-head halves on a Zen 3 VM, f16 cache, per layer: 128 keys 22 vs 21 us, 512 keys 90 vs 67 us.
constexpr int64_t kDecodeSplitKeys = 128;
// One token against a long enough cache, on every thread of the pool, each cache byte read
// once: first the scores, split by kv head and key range (each task all q heads of its kv
// head); then the softmax and weighted values, split by kv head and, for the heads that do not
// go evenly over the threads, by dimension range (each such task on its own copy of the
// scores).
// Splitting the q heads of a group instead, as prefill tasks do, had both threads read the
// whole cache of the kv head.
void attention_decode_split(const float* q, int64_t pos0, const AttentionShape& s,
                            const KvCache& cache, int64_t layer, float* out, ThreadPool& pool) {
  const int64_t KH = s.kv_heads, G = s.heads / s.kv_heads, D = s.head_dim;
  const int64_t n = pos0 + 1, ld = (n + 15) / 16 * 16, blocks = ld / 16;
  const AttnKernels& kern = attn_kernels();
  // At least four tasks per thread in each phase, so kv heads that do not divide evenly over
  // the threads still leave none idle for long.
  const int64_t want = (4 * pool.size() + KH - 1) / KH;
  const int64_t ksplit = std::max<int64_t>(1, std::min(want, blocks));
  const int64_t per_split = (blocks + ksplit - 1) / ksplit * 16;
  // The values by whole kv heads as far as they go evenly over the threads (a task that reads
  // whole rows streams them 1.2x faster than two tasks reading alternate halves of the same
  // rows: f16 cache, 2048 keys, 258 vs 310 us per layer on a Zen 3 VM); each head left over is
  // split by dimension range into one piece per thread. Share p of the loop (the pool's kRanges
  // schedule hands thread p tasks [size * p / T, size * (p + 1) / T)) holds its whole heads,
  // then its piece of each left-over head: 5 kv heads on 2 threads are 2.5 heads each, not 3
  // and 2. Zen 5 VM, 2B4T shape, 30 layers alternating in one process: 2048 keys 3.87 vs 4.04
  // ms per token, 4096 keys 7.53 vs 7.95, 512 keys at parity; in bench e2e (tg32 @ d2048) the
  // threads' wait at the loops' ends went from 0.83 to 0.05-0.36 ms per token.
  struct ValueTask {
    int64_t kh, db, de;
  };
  std::vector<ValueTask> vtasks;
  {
    const int64_t T = std::max<int64_t>(1, std::min<int64_t>(pool.size(), D / 16));
    const int64_t whole = KH / T * T, per_whole = KH / T;
    const int64_t per_d = (D / 16 + T - 1) / T * 16;
    for (int64_t p = 0; p < T; ++p) {
      for (int64_t i = 0; i < per_whole; ++i) vtasks.push_back({p * per_whole + i, 0, D});
      for (int64_t h = whole; h < KH; ++h) {
        const int64_t db = p * per_d, de = p == T - 1 ? D : std::min(D, db + per_d);
        if (db < de) vtasks.push_back({h, db, de});
      }
    }
  }
  // The calling thread's buffer, reached by the workers through this pointer (a thread_local
  // named inside the lambdas would be each worker's own).
  thread_local std::vector<float> sc_buf;
  if (sc_buf.size() < (size_t)(KH * G * ld)) sc_buf.resize((size_t)(KH * G * ld));
  float* const sc = sc_buf.data();
  auto rows_of = [&](int64_t kh) { return Rows{q, out, pos0, 0, 1, G, kh}; };
  pool.parallel_for(
      KH * ksplit,
      [&](int64_t b, int64_t e, int) {
        for (int64_t task = b; task < e; ++task) {
          const int64_t kh = task / ksplit, jb = task % ksplit * per_split;
          if (jb >= ld) continue;
          const Rows rows = rows_of(kh);
          float* s_kh = sc + kh * G * ld;
          const int64_t je = std::min(ld, jb + per_split);
          kern.scores(rows, s, cache, layer, s_kh, ld, jb, je);
        }
      },
      1);
  pool.parallel_for((int64_t)vtasks.size(),
                    [&](int64_t b, int64_t e, int) {
                      thread_local std::vector<float> scratch;
                      for (int64_t task = b; task < e; ++task) {
                        const ValueTask& v = vtasks[(size_t)task];
                        const Rows rows = rows_of(v.kh);
                        float* s_kh = sc + v.kh * G * ld;
                        kern.softmax_values(rows, s, cache, layer, s_kh, ld, v.db, v.de, scratch);
                      }
                    },
                    1);
}

void attention_fast(const float* q, int64_t tokens, int64_t pos0, const AttentionShape& s,
                    const KvCache& cache, int64_t layer, float* out, ThreadPool& pool) {
  check_attention(tokens, pos0, s, cache);
  const int64_t KH = s.kv_heads, G = s.heads / s.kv_heads;
  const AttnKernels& kern = attn_kernels();
  // A decode step against a long cache splits by key ranges, then by kv heads
  // (attention_decode_split, two parallel regions); against a shorter one it stays on the
  // calling thread (kDecodeSplitKeys), as do small prefill calls. Prefill tasks are (kv head,
  // block of up to 4 tokens), so each key block loaded serves 4 * G query rows.
  const bool decode = tokens == 1;
  if (decode && pool.size() > 1 && pos0 + 1 >= kDecodeSplitKeys) {
    attention_decode_split(q, pos0, s, cache, layer, out, pool);
    return;
  }
  const double pairs = (double)tokens * (double)s.heads * (double)(pos0 + tokens);
  const bool serial = decode || pool.size() == 1 || pairs * (double)s.head_dim < kSerialWork;
  const int64_t tb = std::min<int64_t>(tokens, 4);
  const int64_t tblocks = (tokens + tb - 1) / tb;
  const int64_t tasks = KH * tblocks;
  if (serial) {
    for (int64_t kh = 0; kh < KH; ++kh) prefetch_head(cache, layer, kh, pos0 + tokens);
  }
  auto run = [&](int64_t b, int64_t e, int) {
    thread_local std::vector<float> scratch;
    for (int64_t task = b; task < e; ++task) {
      const int64_t kh = task / tblocks, blk = task % tblocks;
      if (!serial && blk == 0) prefetch_head(cache, layer, kh, pos0 + tokens);
      const Rows rows{q, out, pos0, blk * tb, std::min(tokens, (blk + 1) * tb), G, kh};
      kern.attend(rows, s, cache, layer, scratch);
    }
  };
  if (serial) {
    run(0, tasks, 0);
  } else {
    pool.parallel_for(tasks, run, 1);
  }
}

}  // namespace tritune
