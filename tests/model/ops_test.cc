// RMSNorm, RoPE and attention against hand-computed values, and the vectorized kernel-path
// versions (every ISA level this CPU has) against the references.
#include "model/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/thread_pool.h"
#include "kernels/variant.h"
#include "model/kv_cache.h"

namespace tritune {
namespace {

// Runs fn once per ISA level the CPU supports, with TRITUNE_ISA forcing it.
template <typename Fn>
void for_each_isa(Fn fn) {
  for (int i = 0; i < (int)Isa::kCount; ++i) {
    if (!cpu_supports((Isa)i)) continue;
    setenv("TRITUNE_ISA", isa_name((Isa)i), 1);
    SCOPED_TRACE(isa_name((Isa)i));
    fn();
  }
  unsetenv("TRITUNE_ISA");
}

// The f16 cache stores exactly float_to_half of every value at every ISA level (F16C where
// there is one): halfway cases, subnormals, overflow to infinity, signed zeros and NaNs.
TEST(Ops, KvCacheF16StoresTheScalarConversionAtEveryLevel) {
  std::mt19937 rng(21);
  std::normal_distribution<float> d(0, 1);
  const int64_t D = 24;  // three groups of eight, then a NaN inside one
  std::vector<float> k((size_t)(2 * D)), v(k.size());
  const float special[] = {65504.0f, 65520.0f,  -65536.0f,     6.0e-8f,        -3.0e-8f,
                           1.0e-40f, -0.0f,     0.0f,          1.00048828125f, 1.00146484375f,
                           INFINITY, -INFINITY, 5.9604645e-8f, 2.9802322e-8f};
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = i % 3 == 0 ? special[i % 14] : d(rng) * 100.0f;
    v[i] = i % 4 == 1 ? special[(i + 5) % 14] : d(rng) * 1e-4f;
  }
  k[(size_t)(D + 11)] = NAN;  // second head: its middle group falls back to scalar code
  for_each_isa([&] {
    KvCache c(1, 2, D, 20, KvType::kF16);
    c.store(0, 17, k.data(), v.data());
    std::vector<float> kr((size_t)D), vr((size_t)D);
    for (int64_t h = 0; h < 2; ++h) {
      c.read_key(0, h, 17, kr.data());
      c.read_value(0, h, 17, vr.data());
      for (int64_t i = 0; i < D; ++i) {
        const float ke = half_to_float(float_to_half(k[(size_t)(h * D + i)]));
        const float ve = half_to_float(float_to_half(v[(size_t)(h * D + i)]));
        if (std::isnan(ke)) {
          EXPECT_TRUE(std::isnan(kr[(size_t)i])) << h << "," << i;
        } else {
          EXPECT_EQ(std::memcmp(&kr[(size_t)i], &ke, 4), 0)
              << h << "," << i << " " << kr[(size_t)i] << " vs " << ke;
        }
        EXPECT_EQ(std::memcmp(&vr[(size_t)i], &ve, 4), 0) << h << "," << i;
      }
    }
  });
}

TEST(Ops, RmsNormHandComputed) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 2, 1, 0.5f};
  const double r = 1.0 / std::sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-5);
  float y[4];
  rmsnorm_ref(x, w, 4, 1e-5f, y);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], w[i] * x[i] * r, 1e-6);
  for_each_isa([&] {
    float z[4];
    rmsnorm_fast(x, w, 4, 1e-5f, z);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(z[i], w[i] * x[i] * r, 1e-6);
  });
}

TEST(Ops, RmsNormFastIsBitIdenticalToReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0, 3);
  for (int n : {1, 15, 16, 37, 2560, 6912}) {
    std::vector<float> x((size_t)n), w((size_t)n), a((size_t)n), b((size_t)n);
    for (auto& v : x) v = d(rng);
    for (auto& v : w) v = 1 + d(rng) / 10;
    rmsnorm_ref(x.data(), w.data(), n, 1e-5f, a.data());
    for_each_isa([&] {
      rmsnorm_fast(x.data(), w.data(), n, 1e-5f, b.data());
      // Same canonical reduction order and no FMA contraction: bit-identical.
      for (int i = 0; i < n; ++i) ASSERT_EQ(a[i], b[i]) << "n=" << n << " i=" << i;
    });
  }
}

TEST(Ops, RopeRotatesHalvesNeoxStyle) {
  RopeTable rope(4, 8, 10000.0);
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};  // two heads
  apply_rope(v, 2, 1, rope);
  // inv_freq = [1, 10000^(-1/2)]; pairs are (v[i], v[i + 2]) (rotate_half), not adjacent.
  const double f0 = 1.0, f1 = 0.01;
  EXPECT_NEAR(v[0], 1 * std::cos(f0) - 3 * std::sin(f0), 1e-6);
  EXPECT_NEAR(v[1], 2 * std::cos(f1) - 4 * std::sin(f1), 1e-6);
  EXPECT_NEAR(v[2], 3 * std::cos(f0) + 1 * std::sin(f0), 1e-6);
  EXPECT_NEAR(v[3], 4 * std::cos(f1) + 2 * std::sin(f1), 1e-6);
  EXPECT_NEAR(v[4], 5 * std::cos(f0) - 7 * std::sin(f0), 1e-6);
  EXPECT_NEAR(v[7], 8 * std::cos(f1) + 6 * std::sin(f1), 1e-6);
  float z[4] = {1, 2, 3, 4};
  apply_rope(z, 1, 0, rope);  // position 0 is the identity
  EXPECT_EQ(z[0], 1);
  EXPECT_EQ(z[3], 4);
  EXPECT_THROW(apply_rope(z, 1, 8, rope), Error);
  EXPECT_THROW(RopeTable(3, 8, 10000.0), Error);
}

KvCache cache_2pos(KvType t) {
  // One layer, one kv head, D = 2: k0 = [1,0], k1 = [0,1], v0 = [1,2], v1 = [3,4].
  KvCache c(1, 1, 2, 4, t);
  const float k0[2] = {1, 0}, v0[2] = {1, 2}, k1[2] = {0, 1}, v1[2] = {3, 4};
  c.store(0, 0, k0, v0);
  c.store(0, 1, k1, v1);
  return c;
}

TEST(Ops, AttentionHandComputedAndCausal) {
  for (KvType t : {KvType::kF32, KvType::kF16}) {
    const KvCache c = cache_2pos(t);
    const AttentionShape s{1, 1, 2};
    // Two tokens at positions 0 and 1, both with q = [2, 0].
    const float q[4] = {2, 0, 2, 0};
    const double e = std::exp(2 / std::sqrt(2.0));
    const double p0 = e / (e + 1), p1 = 1 / (e + 1);
    const double want1[2] = {p0 * 1 + p1 * 3, p0 * 2 + p1 * 4};
    float out[4];
    attention_ref(q, 2, 0, s, c, 0, out, nullptr);
    EXPECT_NEAR(out[0], 1, 1e-6);  // position 0 sees only itself
    EXPECT_NEAR(out[1], 2, 1e-6);
    EXPECT_NEAR(out[2], want1[0], 1e-6);
    EXPECT_NEAR(out[3], want1[1], 1e-6);
    ThreadPool pool(2);
    for_each_isa([&] {
      float o[4];
      attention_fast(q, 2, 0, s, c, 0, o, pool);
      EXPECT_NEAR(o[0], 1, 1e-6);
      EXPECT_NEAR(o[1], 2, 1e-6);
      EXPECT_NEAR(o[2], want1[0], 1e-6);
      EXPECT_NEAR(o[3], want1[1], 1e-6);
    });
  }
}

TEST(Ops, GroupedQueryHeadsShareKvHeadByDivision) {
  // 4 q heads, 2 kv heads: q heads 0,1 read kv head 0 and 2,3 read kv head 1 (h / 2, not h % 2).
  KvCache c(1, 2, 2, 1, KvType::kF32);
  const float k[4] = {1, 0, 0, 1}, v[4] = {1, 1, 2, 2};
  c.store(0, 0, k, v);
  const AttentionShape s{4, 2, 2};
  const float q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  float out[8];
  attention_ref(q, 1, 0, s, c, 0, out, nullptr);
  const float want[8] = {1, 1, 1, 1, 2, 2, 2, 2};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], want[i]) << i;
  ThreadPool pool(1);
  for_each_isa([&] {
    float o[8];
    attention_fast(q, 1, 0, s, c, 0, o, pool);
    for (int i = 0; i < 8; ++i) EXPECT_NEAR(o[i], want[i], 1e-6) << i;
  });
}

TEST(Ops, FastAttentionIsBitIdenticalToReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0, 1);
  const AttentionShape s{8, 2, 32};
  for (KvType t : {KvType::kF32, KvType::kF16}) {
    KvCache c(2, 2, 32, 40, t);
    std::vector<float> kv(64);
    for (int p = 0; p < 37; ++p) {
      for (auto& x : kv) x = d(rng);
      c.store(1, p, kv.data(), kv.data() + 0);
    }
    // 5 tokens at positions 32..36.
    std::vector<float> q(5 * 8 * 32), a(q.size()), b(q.size());
    for (auto& x : q) x = d(rng);
    ThreadPool pool(2);
    attention_ref(q.data(), 5, 32, s, c, 1, a.data(), &pool);
    for_each_isa([&] {
      attention_fast(q.data(), 5, 32, s, c, 1, b.data(), pool);
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
    });
  }
}

// Randomized shapes around the kernel's block edges: head_dim a multiple of 16 or not, token
// counts that leave partial 4-token blocks, positions crossing 16-key blocks, f32 and f16, 1 and
// 2 threads, every ISA level. The cache is first filled with large garbage beyond the positions
// in use (as after a reset), which must not leak into any result.
TEST(Ops, FastAttentionBitIdenticalOnRandomShapes) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0, 1);
  struct Case {
    int64_t heads, kv_heads, dim, tokens, pos0;
  };
  const Case cases[] = {{20, 5, 128, 1, 0},
                        {20, 5, 128, 1, 47},
                        {20, 5, 128, 7, 13},
                        {8, 2, 64, 17, 0},
                        {8, 2, 64, 4, 16},
                        {4, 4, 16, 3, 30},
                        {6, 3, 24, 5, 9},
                        {2, 1, 2, 33, 1},
                        {12, 4, 48, 2, 63},
                        {20, 5, 128, 40, 0},
                        {4, 1, 32, 1, 100},
                        {20, 5, 128, 1, 300},
                        // decode split by key ranges, and by dimension ranges with fewer kv
                        // heads than threads: a scalar dimension tail in either split, key
                        // ranges past the last key, one q head per kv head
                        {12, 3, 40, 1, 150},
                        {8, 1, 40, 1, 200},
                        {4, 1, 64, 1, 200},
                        {8, 8, 64, 1, 500},
                        // values: whole kv heads evenly over the threads, the ones left over
                        // split by dimension (5 on 2 or 3 threads, 3 on 2)
                        {20, 5, 128, 1, 1000},
                        {6, 3, 128, 1, 129},
                        // AVX-512 value passes of 128 dimensions for two rows at a time, then
                        // 64, 32 and 16 (head_dim 112, 96), three rows of one token (the third
                        // alone), and a dimension split starting mid-line (96 on 2 threads)
                        {8, 2, 112, 3, 40},
                        {9, 3, 96, 2, 20},
                        {3, 1, 96, 1, 200}};
  for (const Case& cs : cases) {
    const AttentionShape s{cs.heads, cs.kv_heads, cs.dim};
    const int64_t ctx = cs.pos0 + cs.tokens + 20;
    for (KvType t : {KvType::kF32, KvType::kF16}) {
      SCOPED_TRACE(::testing::Message()
                   << cs.heads << "/" << cs.kv_heads << " D" << cs.dim << " T" << cs.tokens
                   << " pos0 " << cs.pos0 << " " << kv_type_name(t));
      KvCache c(1, cs.kv_heads, cs.dim, ctx, t);
      std::vector<float> k((size_t)(cs.kv_heads * cs.dim)), v(k.size());
      for (int64_t p = 0; p < ctx; ++p) {  // stale garbage everywhere first
        for (auto& x : k) x = 1000.0f * d(rng);
        for (auto& x : v) x = -1000.0f * d(rng);
        c.store(0, p, k.data(), v.data());
      }
      for (int64_t p = 0; p < cs.pos0 + cs.tokens; ++p) {
        for (auto& x : k) x = d(rng);
        for (auto& x : v) x = d(rng);
        c.store(0, p, k.data(), v.data());
      }
      std::vector<float> q((size_t)(cs.tokens * cs.heads * cs.dim)), a(q.size()), b(q.size());
      for (auto& x : q) x = 2.0f * d(rng);
      attention_ref(q.data(), cs.tokens, cs.pos0, s, c, 0, a.data(), nullptr);
      for (float x : a) ASSERT_LT(std::fabs(x), 10.0f);  // no garbage leaked in
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        for_each_isa([&] {
          std::fill(b.begin(), b.end(), NAN);
          attention_fast(q.data(), cs.tokens, cs.pos0, s, c, 0, b.data(), pool);
          for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
        });
      }
    }
  }
}

// A decode step below kDecodeSplitKeys (128) keys runs on the calling thread, so the pool's idle
// worker keeps prefetching the next GEMV's weights; from 128 keys on it is split over the pool in
// two parallel loops (scores, then values). Prefill calls stay parallel.
TEST(Ops, DecodeAttentionIsSplitOnlyAgainstLongCaches) {
  set_num_threads(2);
  ThreadPool pool(2);
  const AttentionShape s{20, 5, 128};
  KvCache c(1, 5, 128, 160, KvType::kF16);
  std::vector<float> kv(5 * 128, 0.25f), q(8 * 20 * 128, 0.5f), out(q.size());
  for (int64_t p = 0; p < 160; ++p) c.store(0, p, kv.data(), kv.data());
  auto loops_in = [&](int64_t tokens, int64_t pos0) {
    const PoolStats a = pool_stats();
    attention_fast(q.data(), tokens, pos0, s, c, 0, out.data(), pool);
    const PoolStats b = pool_stats();
    return (b.loops + b.serial_loops) - (a.loops + a.serial_loops);
  };
  EXPECT_EQ(loops_in(1, 0), 0);
  EXPECT_EQ(loops_in(1, 126), 0);  // 127 keys
  EXPECT_EQ(loops_in(1, 127), 2);  // 128 keys
  EXPECT_EQ(loops_in(1, 150), 2);
  EXPECT_EQ(loops_in(8, 100), 1);  // a prefill's tasks across the pool
}

TEST(Ops, ExpCanonicalIsAccurateAndClamped) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double want = std::exp((double)x), got = exp_canonical(x);
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LT(worst, 4e-7);  // ~3 ulp
  EXPECT_EQ(exp_canonical(0.0f), 1.0f);
  EXPECT_EQ(exp_canonical(-1000.0f), exp_canonical(-87.0f));
  EXPECT_GT(exp_canonical(-1000.0f), 0.0f);
  EXPECT_EQ(exp_canonical(1000.0f), exp_canonical(88.0f));
  EXPECT_TRUE(std::isfinite(exp_canonical(1000.0f)));
}

TEST(Ops, AttentionRefusesBadShapes) {
  KvCache c(1, 2, 2, 4, KvType::kF32);
  const float q[6] = {0};
  float out[6];
  EXPECT_THROW(attention_ref(q, 1, 0, {3, 2, 2}, c, 0, out, nullptr), Error);  // 3 % 2
  EXPECT_THROW(attention_ref(q, 1, 4, {2, 2, 2}, c, 0, out, nullptr), Error);  // beyond cache
  EXPECT_THROW(KvCache(1, 1, 1, 0, KvType::kF32), Error);
  EXPECT_THROW(KvCache(100, 100, 128, 1 << 20, KvType::kF32), Error);  // absurd size
  EXPECT_THROW(parse_kv_type("q8"), Error);
  // Beyond memory (1.5e14 bytes): the message names the cache and the fix for its type.
  for (KvType t : {KvType::kF32, KvType::kF16}) {
    try {
      KvCache big(30, 5, 128, 1000000000, t);
      ADD_FAILURE() << "a 140 TiB KV cache was allocated";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.find("KV cache of 1000000000 positions (30 layers, 5 KV heads of 128, "), 0u)
          << m;
      EXPECT_NE(m.find("lower the context (--ctx"), std::string::npos) << m;
      EXPECT_EQ(m.find("--kv f16") != std::string::npos, t == KvType::kF32) << m;
    }
  }
}

TEST(Ops, Relu2Gate) {
  const float g[3] = {-1, 2, 0.5f}, u[3] = {5, 3, -2};
  float o[3];
  relu2_gate(g, u, 3, o);
  EXPECT_EQ(o[0], 0);
  EXPECT_EQ(o[1], 12);
  EXPECT_EQ(o[2], -0.5f);
}

// The transformer gates in place (out == g): that path must square the ReLU too.
TEST(Ops, Relu2GateInPlace) {
  float g[4] = {-1, 2, 0.5f, 3}, u[4] = {5, 3, -2, 0.5f};
  relu2_gate(g, u, 4, g);
  EXPECT_EQ(g[0], 0);      // max(-1, 0)^2 * 5
  EXPECT_EQ(g[1], 12);     // 2^2 * 3
  EXPECT_EQ(g[2], -0.5f);  // 0.5^2 * -2
  EXPECT_EQ(g[3], 4.5f);   // 3^2 * 0.5
}

// A store at the capacity is refused for both types, and leaves the other heads' rows alone
// (capacity 16 is one whole key block, so position 16 would land in the next head's keys).
TEST(Ops, KvCacheStoreAtCapacityIsRefused) {
  for (KvType t : {KvType::kF32, KvType::kF16}) {
    KvCache c(1, 2, 2, 16, t);
    const float k0[4] = {1, 2, 3, 4}, v0[4] = {5, 6, 7, 8};
    c.store(0, 0, k0, v0);
    const float k1[4] = {9, 10, 11, 12}, v1[4] = {13, 14, 15, 16};
    c.store(0, 15, k1, v1);  // the last position is fine
    EXPECT_THROW(c.store(0, 16, k1, v1), Error);
    EXPECT_THROW(c.store(0, -1, k1, v1), Error);
    EXPECT_THROW(c.store(1, 0, k1, v1), Error);  // one layer only
    float out[2];
    c.read_key(0, 1, 0, out);
    EXPECT_EQ(out[0], 3);
    EXPECT_EQ(out[1], 4);
    c.read_value(0, 1, 0, out);
    EXPECT_EQ(out[0], 7);
    EXPECT_EQ(out[1], 8);
    c.read_key(0, 0, 15, out);
    EXPECT_EQ(out[0], 9);
    EXPECT_EQ(out[1], 10);
  }
}

}  // namespace
}  // namespace tritune
