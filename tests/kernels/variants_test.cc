// Differential tests of every kernel variant against the always-compiled scalar references:
// i2s variants bit-exact in int32, f32/f16 variants within the f32 summation error bound
// 4 * K * 2^-24 * sum_k |w_k x_k|. Every AOT variant of every ISA level the CPU can run (so the
// AVX2 and plain x86-64 builds are exercised on an AVX-512 machine too), on random and edge
// shapes, with 1 and 2 threads. Variants for a level the CPU lacks are skipped with a reason.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "HalideRuntime.h"
#include "kernels/dispatch.h"
#include "kernels/error.h"
#include "kernels/i2s.h"
#include "kernels/linear.h"
#include "kernels/variant.h"
#include "tests/kernels/test_util.h"

namespace tritune {
namespace {

struct Shape3 {
  int64_t n, k, t;
};

std::vector<Shape3> edge_shapes() {
  std::vector<Shape3> s;
  for (int64_t n : {1, 15, 16, 17, 48, 100}) {
    for (int64_t k : {1, 4, 15, 16, 17, 128, 300}) {
      for (int64_t t : {1, 2, 7, 8, 9, 17}) s.push_back({n, k, t});
    }
  }
  // Larger, model-like shapes.
  s.push_back({256, 2560, 1});
  s.push_back({160, 2560, 13});
  s.push_back({64, 6912, 3});
  return s;
}

// Every layout of K in parts (kernels/i2s.h) the shape allows among 1, 2, 4 and 6: the default,
// one part, and parts whose tile runs are shorter than a kernel's unroll or leave a tail.
void check_i2s(const Variant& v, const Shape3& s, std::mt19937& rng) {
  const auto t = testing::random_ternary(s.n * s.k, rng);
  const auto x = testing::random_floats(s.t * s.k, rng, 2.0f);
  const QuantizedActs a = quantize_acts(x.data(), s.t, s.k, s.k, 16);
  const int64_t k16 = (s.k + 15) / 16;
  for (const int64_t parts : {1, 2, 4, 6}) {
    if (k16 % parts != 0) continue;
    const I2SKernelWeights w = i2s_tile_ternary(t.data(), s.n, s.k, 0.5f, parts);
    std::vector<int32_t> want((size_t)(s.t * w.n_pad()), 0), got((size_t)(s.t * w.n_pad()), -7);
    i2s_ref_gemm_tiled(w, a, want.data(), w.n_pad());
    run_i2s(v, w, a, got.data(), w.n_pad());
    for (int64_t tok = 0; tok < s.t; ++tok) {
      for (int64_t r = 0; r < s.n; ++r) {
        ASSERT_EQ(got[tok * w.n_pad() + r], want[tok * w.n_pad() + r])
            << v.name << " N=" << s.n << " K=" << s.k << " T=" << s.t << " parts " << parts
            << " row " << r << " token " << tok;
      }
    }
  }
}

void check_fp(const Variant& v, const Shape3& s, std::mt19937& rng) {
  const auto wf = testing::random_floats(s.n * s.k, rng);
  const auto x = testing::random_floats(s.t * s.k, rng);
  const Format f = v.spec.family == "f16" ? Format::kF16 : Format::kF32;
  const PackedWeights p = format_traits(f).pack(wf.data(), s.n, s.k);
  std::vector<float> wd((size_t)(s.n * s.k));
  format_traits(f).unpack(p, wd.data());
  std::vector<float> want((size_t)(s.t * s.n)), got((size_t)(s.t * s.n), NAN);
  format_traits(f).ref_gemm(p, x.data(), s.t, want.data());
  run_fp(v, p, x.data(), s.t, got.data(), s.n);
  for (int64_t tok = 0; tok < s.t; ++tok) {
    for (int64_t r = 0; r < s.n; ++r) {
      double mag = 0;
      for (int64_t c = 0; c < s.k; ++c)
        mag += std::fabs((double)wd[r * s.k + c] * x[tok * s.k + c]);
      const double tol = 4.0 * (double)s.k * std::ldexp(1.0, -24) * mag + 1e-30;
      ASSERT_NEAR(got[tok * s.n + r], want[tok * s.n + r], tol)
          << v.name << " N=" << s.n << " K=" << s.k << " T=" << s.t << " row " << r;
    }
  }
}

void check_variant(const Variant& v, std::mt19937& rng) {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const Shape3& s : edge_shapes()) {
      if (v.spec.family == "i2s") {
        check_i2s(v, s, rng);
      } else {
        check_fp(v, s, rng);
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

class AotVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(AotVariant, MatchesScalarReference) {
  const Variant& v = get_variant(GetParam());
  if (!cpu_supports(v.spec.isa)) {
    GTEST_SKIP() << "CPU lacks ISA level " << isa_name(v.spec.isa);
  }
  std::mt19937 rng(1234);
  check_variant(v, rng);
}

std::vector<std::string> aot_names() {
  std::vector<std::string> n;
  for (const auto& v : aot_variants()) n.push_back(v.name);
  return n;
}

INSTANTIATE_TEST_SUITE_P(All, AotVariant, ::testing::ValuesIn(aot_names()),
                         [](const auto& info) { return info.param; });

TEST(Variants, EveryDefaultOfEverySpaceIsBuiltForEveryIsa) {
  for (const SearchSpace& s : all_spaces()) {
    for (int i = 0; i < (int)Isa::kCount; ++i) {
      const Isa isa = (Isa)i;
      EXPECT_EQ(s.check(s.defaults_for(isa), nullptr, isa), "")
          << s.generator << " on " << isa_name(isa);
      EXPECT_NO_THROW(default_variant(s.family, s.op, isa)) << s.generator << isa_name(isa);
    }
  }
  EXPECT_EQ(aot_variants().size(), all_spaces().size() * (size_t)Isa::kCount);
}

// Halide heap allocations (halide_malloc) while a kernel runs, counted through the runtime's
// custom-malloc hook (one runtime serves every variant).
std::atomic<int64_t> g_mallocs{0};
void* counting_malloc(void*, size_t bytes) {
  g_mallocs.fetch_add(1);
  // Halide's contract: 32-byte (here 64-byte) aligned memory.
  return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
}
void counting_free(void*, void* p) {
  std::free(p);
}

int64_t mallocs_of_run(const Variant& v, int64_t n, int64_t k, int64_t tokens, int64_t parts) {
  std::mt19937 rng(5);
  const auto t = testing::random_ternary(n * k, rng);
  const auto x = testing::random_floats(tokens * k, rng, 2.0f);
  const QuantizedActs a = quantize_acts(x.data(), tokens, k, k, 16);
  const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 0.5f, parts);
  std::vector<int32_t> y((size_t)(tokens * w.n_pad()));
  const int64_t before = g_mallocs.load();
  run_i2s(v, w, a, y.data(), w.n_pad());
  return g_mallocs.load() - before;
}

// No kernel allocates per row block: a scratch buffer sized by a run-time extent (the parts)
// inside the block loop becomes a halide_malloc + memset + halide_free per 16 rows, 2-4% of a
// GEMV's time. The count must not grow with the rows.
TEST(Variants, KernelsDoNotAllocatePerRowBlock) {
  const halide_malloc_t old_malloc = halide_set_custom_malloc(counting_malloc);
  const halide_free_t old_free = halide_set_custom_free(counting_free);
  int checked = 0;
  for (const Variant& v : aot_variants()) {
    if (v.spec.family != "i2s" || !cpu_supports(v.spec.isa)) continue;
    const int64_t tokens = v.spec.op == "gemm" ? 9 : 1;
    const int64_t small = mallocs_of_run(v, 64, 512, tokens, 2);
    const int64_t large = mallocs_of_run(v, 1024, 512, tokens, 2);
    EXPECT_EQ(large, small) << v.name << ": " << small << " allocations for 64 rows, " << large
                            << " for 1024";
    ++checked;
  }
  halide_set_custom_malloc(old_malloc);
  halide_set_custom_free(old_free);
  EXPECT_GT(checked, 0);
}

// A tile view whose parts do not split K, or overlap, is refused before any kernel runs.
TEST(Variants, RunI2SRefusesAnImpossiblePartLayout) {
  std::mt19937 rng(3);
  const auto t = testing::random_ternary(32 * 256, rng);
  const I2SKernelWeights w = i2s_tile_ternary(t.data(), 32, 256, 1.0f, 2);
  const auto x = testing::random_floats(256, rng);
  const QuantizedActs a = quantize_acts(x.data(), 1, 256, 256, 16);
  const Variant& v = default_variant("i2s", "gemv", selected_isa());
  std::vector<int32_t> y(32);
  I2STiles bad = tiles_of(w);
  bad.parts = 3;  // 16 tiles
  EXPECT_THROW(run_i2s(v, bad, a, y.data(), 32), Error);
  bad = tiles_of(w);
  bad.part_stride = bad.part_bytes() - 64;  // parts overlapping
  EXPECT_THROW(run_i2s(v, bad, a, y.data(), 32), Error);
  EXPECT_NO_THROW(run_i2s(v, tiles_of(w), a, y.data(), 32));
}

TEST(Variants, HostileActivationsDoNotOverflowOrSaturate) {
  // Extreme int8 inputs (-128 is never produced by the quantizer but must still be exact) with
  // all-(+1) and all-(-1) weights at a long K.
  const int64_t n = 32, k = 8192, T = 3;
  for (const Variant& v : aot_variants()) {
    if (v.spec.family != "i2s" || !cpu_supports(v.spec.isa)) continue;
    for (int sign : {1, -1}) {
      std::vector<int8_t> t((size_t)(n * k), (int8_t)sign);
      const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 1.0f);
      QuantizedActs a;
      a.tokens = T;
      a.k = k;
      a.k_stride = k;
      a.q.resize((size_t)(T * k));
      a.scale.assign(T, 1.0f);
      a.sum.assign(T, 0);
      for (int64_t tok = 0; tok < T; ++tok) {
        for (int64_t c = 0; c < k; ++c) {
          const int8_t q = tok == 0 ? -128 : (tok == 1 ? 127 : (int8_t)((c % 2) ? -128 : 127));
          a.q[tok * k + c] = q;
          a.sum[tok] += q;
        }
      }
      std::vector<int32_t> want(T * n), got(T * n);
      i2s_ref_gemm_tiled(w, a, want.data(), n);
      run_i2s(v, w, a, got.data(), n);
      EXPECT_EQ(got, want) << v.name << " sign " << sign;
      EXPECT_EQ(want[0], -128 * k * sign);
    }
  }
}

TEST(Variants, ShapeMismatchIsAnErrorNotAWrongAnswer) {
  const Variant& v = default_variant("i2s", "gemv", selected_isa());
  std::vector<int8_t> t(32 * 64, 1);
  const I2SKernelWeights w = i2s_tile_ternary(t.data(), 32, 64, 1.0f);
  std::vector<float> x(64, 1.0f);
  const QuantizedActs unaligned = quantize_acts(x.data(), 1, 64, 64, 1);
  std::vector<int32_t> y(64);
  // K stride 64 == k_pad here, so this one is fine ...
  EXPECT_NO_THROW(run_i2s(v, w, unaligned, y.data(), 32));
  // ... but activations of another K, or a too-small output, are refused.
  const QuantizedActs other = quantize_acts(x.data(), 1, 48, 48, 16);
  EXPECT_THROW(run_i2s(v, w, other, y.data(), 32), Error);
  EXPECT_THROW(run_i2s(v, w, unaligned, y.data(), 16), Error);
  EXPECT_THROW(run_i2s(default_variant("f16", "gemv", selected_isa()), w, unaligned, y.data(), 32),
               Error);
}

// JIT: a non-default point of each i2s space compiles in-process, lands in the on-disk cache,
// is bit-exact, and is not recompiled on the second request.
TEST(Variants, JitCompilesAnyPointAndCachesIt) {
  const char* tmp = std::getenv("TRITUNE_TEST_TMP");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/jit-cache";
  setenv("TRITUNE_CACHE_DIR", dir.c_str(), 1);
  const Isa isa = selected_isa();
  const std::string vb = isa == Isa::kAvx512Vnni ? "512" : isa == Isa::kAvx2 ? "256" : "128";
  std::vector<std::string> names = {
      "i2s_gemv_r1_t1_u2_v" + vb + "_g2_k0_apmaddwd_p16_dshift__" + isa_name(isa),
      "i2s_gemm_r1_t" + std::string(isa == Isa::kX86_64 ? "2" : "4") + "_u1_v" + vb +
          "_g0_k512_avnni_p16_dshift__" + isa_name(isa),
  };
  // accum=pmaddubsw: u8 x s8 pairs summed in i16 over kunroll tiles (K=100 and 1280 leave a
  // partial chunk of tiles).
  if (isa != Isa::kX86_64) {
    names.push_back("i2s_gemv_r2_t1_u8_v" + vb + "_g2_k0_apmaddubsw_p16_dshift__" + isa_name(isa));
    names.push_back("i2s_gemm_r1_t2_u4_v" + vb + "_g1_k0_apmaddubsw_p16_dshift__" + isa_name(isa));
    // decode=split: groups 1 and 3 as 4 * code in their own sums.
    names.push_back("i2s_gemv_r2_t1_u2_v" + vb + "_g2_k0_apmaddubsw_p128_dsplit__" + isa_name(isa));
    names.push_back("i2s_gemv_r1_t1_u8_v" + vb + "_g2_k0_apmaddubsw_p64_dsplit__" + isa_name(isa));
  }
  // decode=mask: one accumulator per 2-bit group (and per unrolled tile: kunroll chains),
  // exact shifts at the end. Four accumulators per 16-row tile fit the register file at 256
  // and 512 bits, not at 128; more chains only the 32 registers of AVX-512 (K=100: 7 tiles,
  // a partial chunk for u2 and u4).
  if (isa == Isa::kAvx512Vnni) {
    names.push_back("i2s_gemv_r4_t1_u1_v512_g2_k0_avnni_p16_dmask__avx512vnni");
    names.push_back("i2s_gemv_r2_t1_u2_v512_g2_k0_avnni_p16_dmask__avx512vnni");
    names.push_back("i2s_gemv_r1_t1_u4_v512_g0_k0_apmaddwd_p0_dmask__avx512vnni");
  } else if (isa == Isa::kAvx2) {
    names.push_back("i2s_gemv_r1_t1_u1_v256_g2_k0_avnni_p16_dmask__avx2");
    names.push_back("i2s_gemv_r1_t1_u1_v256_g0_k0_apmaddwd_p0_dmask__avx2");
  }
  std::mt19937 rng(99);
  for (const auto& name : names) {
    const Variant& v = get_variant(name);
    EXPECT_TRUE(v.jit);
    EXPECT_EQ(&get_variant(name), &v);
    for (const Shape3& s : {Shape3{48, 1024, 5}, Shape3{33, 1280, 9}, Shape3{17, 100, 2}}) {
      check_i2s(v, s, rng);
    }
  }
  EXPECT_THROW(get_variant("i2s_gemv_r3_t1_u1_v512_g4_k0_avnni_p0_dshift__avx512vnni"),
               Error);                                                               // r3
  EXPECT_THROW(get_variant("i2s_gemv_r4_t1_u1_v512_g4_k0_avnni_p0_dshift"), Error);  // no ISA
  EXPECT_THROW(get_variant("i2s_gemm_r2_t8_u1_v512_g1_k0_avnni_p0_dmask__avx512vnni"),
               Error);  // GEMM decodes by shift only
  // accum=pmaddubsw sums whole tiles in int16: shift decode only, no K blocking; kunroll > 4
  // only with it; decode=mask counts four accumulators per tile against the register file.
  EXPECT_THROW(get_variant("i2s_gemv_r1_t1_u2_v256_g2_k0_apmaddubsw_p8_dmask__avx2"), Error);
  EXPECT_THROW(get_variant("i2s_gemm_r1_t2_u1_v256_g4_k512_apmaddubsw_p0_dshift__avx2"), Error);
  EXPECT_THROW(get_variant("i2s_gemv_r1_t1_u8_v256_g2_k0_avnni_p8_dshift__avx2"), Error);
  EXPECT_THROW(get_variant("i2s_gemv_r2_t1_u1_v256_g2_k0_avnni_p8_dmask__avx2"), Error);
  EXPECT_THROW(get_variant("i2s_gemv_r1_t1_u2_v256_g2_k0_avnni_p8_dmask__avx2"),
               Error);  // 2 chains
  EXPECT_THROW(get_variant("i2s_gemv_r4_t1_u2_v512_g2_k0_avnni_p8_dmask__avx512vnni"), Error);
  // decode=split: pmaddubsw only, and at most eight tiles of 4 * code pairs per int16 sum.
  EXPECT_THROW(get_variant("i2s_gemv_r1_t1_u16_v256_g2_k0_apmaddubsw_p8_dsplit__avx2"), Error);
  EXPECT_THROW(get_variant("i2s_gemv_r1_t1_u2_v256_g2_k0_avnni_p8_dsplit__avx2"), Error);
  EXPECT_THROW(get_variant("i2s_gemm_r1_t2_u1_v256_g4_k0_apmaddubsw_p0_dsplit__avx2"), Error);
}

// The compiler is a module loaded on the first JIT request: when it cannot be loaded, asking
// for a point not built ahead of time is an Error naming the module and the fix, and the AOT
// variants still run.
TEST(Variants, MissingJitModuleIsAClearErrorAndAotStillRuns) {
  const char* tmp = std::getenv("TRITUNE_TEST_TMP");
  const std::string dir =
      std::string(tmp ? tmp : "/tmp") + "/jit-missing-" + std::to_string(::getpid());
  setenv("TRITUNE_CACHE_DIR", dir.c_str(), 1);
  setenv("TRITUNE_JIT_MODULE", "/nonexistent/libtritune_jit.so", 1);
  const Isa isa = selected_isa();
  const std::string vb = isa == Isa::kAvx512Vnni ? "512" : isa == Isa::kAvx2 ? "256" : "128";
  try {
    get_variant("i2s_gemv_r2_t1_u1_v" + vb + "_g8_k0_avnni_p8_dshift__" + isa_name(isa));
    FAIL() << "a JIT point compiled without the compiler module";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("/nonexistent/libtritune_jit.so"), std::string::npos) << msg;
    EXPECT_NE(msg.find("TRITUNE_JIT_MODULE"), std::string::npos) << msg;
  }
  unsetenv("TRITUNE_JIT_MODULE");
  std::mt19937 rng(3);
  check_i2s(default_variant("i2s", "gemv", isa), Shape3{33, 1280, 1}, rng);
  unsetenv("TRITUNE_CACHE_DIR");
}

// decode=split keeps groups 1 and 3 as 4 * code: a pair is in [-2048, 2032] and eight tiles of
// two groups reach exactly -32768 with every weight +1 against -128 (which the quantizer never
// produces, but the kernel contract allows). Both ends, alternating signs, K with a tail tile.
TEST(Variants, SplitDecodeI16SumsStayExactAtBothEnds) {
  const Isa isa = selected_isa();
  if (isa == Isa::kX86_64) GTEST_SKIP() << "pmaddubsw points need SSSE3 or better";
  const std::string vb = isa == Isa::kAvx512Vnni ? "512" : "256";
  const int64_t n = 48, tokens = 3;
  for (const std::string u : {"1", "2", "8"}) {
    const Variant& v = get_variant("i2s_gemv_r1_t1_u" + u + "_v" + vb +
                                   "_g0_k0_apmaddubsw_p0_dsplit__" + isa_name(isa));
    for (const int64_t k : {int64_t{16 * 16 * 3 + 16}, int64_t{16 * 16}, int64_t{100}}) {
      for (const int8_t wv : {int8_t{1}, int8_t{-1}, int8_t{0}}) {
        const std::vector<int8_t> t((size_t)(n * k), wv);
        const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 1.0f);
        QuantizedActs a;
        a.tokens = tokens;
        a.k = k;
        a.k_stride = w.k_pad();
        a.q.assign((size_t)(tokens * a.k_stride), 0);
        a.scale.assign(tokens, 1.0f);
        a.sum.assign(tokens, 0);
        for (int64_t tok = 0; tok < tokens; ++tok) {
          for (int64_t c = 0; c < k; ++c) {
            const int8_t q = tok == 0 ? -128 : tok == 1 ? 127 : (c % 3 ? 127 : -128);
            a.q[(size_t)(tok * a.k_stride + c)] = q;
            a.sum[tok] += q;
          }
        }
        std::vector<int32_t> want((size_t)(tokens * w.n_pad())), got(want.size(), -7);
        i2s_ref_gemm_tiled(w, a, want.data(), w.n_pad());
        run_i2s(v, w, a, got.data(), w.n_pad());
        if (wv != 0) {
          EXPECT_EQ(want[0], -128 * k * wv);
        }
        for (int64_t tok = 0; tok < tokens; ++tok) {
          for (int64_t r = 0; r < n; ++r) {
            ASSERT_EQ(got[(size_t)(tok * w.n_pad() + r)], want[(size_t)(tok * w.n_pad() + r)])
                << v.name << " K=" << k << " w=" << (int)wv << " token " << tok << " row " << r;
          }
        }
      }
    }
  }
}

// The i16 pair sums of accum=pmaddubsw are exact only while they stay inside int16: the worst
// case is every weight +1 (code 2) against activations all at +-127 (absmax quantization of a
// constant row), summed over 16 tiles. Mixed signs per token cover both ends of the range.
TEST(Variants, PmaddubswI16SumsStayExactAtTheWorstCase) {
  const Isa isa = selected_isa();
  if (isa == Isa::kX86_64) GTEST_SKIP() << "pmaddubsw points need SSSE3 or better";
  const std::string vb = isa == Isa::kAvx512Vnni ? "512" : "256";
  for (const std::string& name :
       {"i2s_gemv_r1_t1_u16_v" + vb + "_g0_k0_apmaddubsw_p0_dshift__" + isa_name(isa),
        "i2s_gemm_r1_t2_u16_v" + vb + "_g0_k0_apmaddubsw_p0_dshift__" + isa_name(isa)}) {
    const Variant& v = get_variant(name);
    for (const int64_t k : {int64_t{16 * 16 * 3 + 16}, int64_t{16 * 16}}) {
      const int64_t n = 32, tokens = 3;
      for (const int8_t wv : {int8_t{1}, int8_t{-1}}) {
        const std::vector<int8_t> t((size_t)(n * k), wv);
        std::vector<float> x((size_t)(tokens * k));
        for (int64_t tok = 0; tok < tokens; ++tok) {
          for (int64_t c = 0; c < k; ++c) x[(size_t)(tok * k + c)] = tok == 1 ? -3.0f : 5.0f;
        }
        const I2SKernelWeights w = i2s_tile_ternary(t.data(), n, k, 1.0f);
        const QuantizedActs a = quantize_acts(x.data(), tokens, k, k, 16);
        std::vector<int32_t> want((size_t)(tokens * w.n_pad())), got(want.size(), -7);
        i2s_ref_gemm_tiled(w, a, want.data(), w.n_pad());
        run_i2s(v, w, a, got.data(), w.n_pad());
        for (int64_t tok = 0; tok < tokens; ++tok) {
          EXPECT_EQ(std::abs(want[(size_t)(tok * w.n_pad())]), 127 * k) << "the worst case";
          for (int64_t r = 0; r < n; ++r) {
            ASSERT_EQ(got[(size_t)(tok * w.n_pad() + r)], want[(size_t)(tok * w.n_pad() + r)])
                << name << " K=" << k << " w=" << (int)wv << " token " << tok << " row " << r;
          }
        }
      }
    }
  }
}

TEST(Dispatch, TunedEntriesWinAndUntunedFallBack) {
  const Isa isa = selected_isa();
  const std::string def = default_variant("i2s", "gemv", isa).name;
  set_dispatch_table({});
  EXPECT_EQ(lookup_variant("i2s", 256, 2560, 1, 2), def);
  const std::string tuned = "i2s_gemv_r1_t1_u2_v128_g2_k0_apmaddwd_p0_dshift__x86_64";
  const std::string tuned_gemm = "i2s_gemm_r1_t2_u1_v128_g1_k0_avnni_p0_dshift__x86_64";
  set_dispatch_table(
      {{"i2s", "gemv", 256, 2560, 1, 2, tuned}, {"i2s", "gemm", 256, 2560, 128, 2, tuned_gemm}});
  std::string why;
  EXPECT_EQ(lookup_variant("i2s", 256, 2560, 1, 2, &why), tuned);
  EXPECT_NE(why.find("tuned"), std::string::npos);
  EXPECT_EQ(lookup_variant("i2s", 256, 2560, 100, 2), tuned_gemm);  // nearest bucket
  EXPECT_EQ(lookup_variant("i2s", 256, 2560, 1, 1), def);           // other thread count
  EXPECT_EQ(lookup_variant("i2s", 256, 2561, 1, 2), def);           // other shape
  setenv("TRITUNE_VARIANT", "i2s_gemv_r1_t1_u1_v128_g4_k0_avnni_p8_dshift__x86_64", 1);
  EXPECT_EQ(lookup_variant("i2s", 256, 2560, 1, 2, &why),
            "i2s_gemv_r1_t1_u1_v128_g4_k0_avnni_p8_dshift__x86_64");
  EXPECT_NE(why.find("TRITUNE_VARIANT"), std::string::npos);
  unsetenv("TRITUNE_VARIANT");
  set_dispatch_table({});
  EXPECT_EQ(token_bucket(1), 1);
  EXPECT_EQ(token_bucket(3), 4);
  EXPECT_EQ(token_bucket(128), 128);
  EXPECT_EQ(token_bucket(100000), 512);
}

}  // namespace
}  // namespace tritune

namespace tritune {
namespace {

std::mutex g_ids_mu;
std::set<std::thread::id> g_ids;

int record_thread(void*, int, uint8_t*) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::lock_guard<std::mutex> lock(g_ids_mu);
  g_ids.insert(std::this_thread::get_id());
  return 0;
}

std::set<std::thread::id> threads_used() {
  g_ids.clear();
  halide_do_par_for(nullptr, record_thread, 0, 16, nullptr);
  return g_ids;
}

// Lowering the thread count must retire the pool's running workers (the runtime alone does not).
TEST(Threads, LoweringTheCountIsHonoured) {
  set_num_threads(2);
  threads_used();
  set_num_threads(1);
  const auto ids = threads_used();
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(2);
  EXPECT_LE(threads_used().size(), 2u);
}

}  // namespace
}  // namespace tritune

namespace tritune {
namespace {

// The largest-magnitude sums the kernels can meet: every weight +1 (code 2, the largest
// masked operand 2 * 64) against activations of -127 and +127, at the largest K accepted.
// decode=mask accumulates code * 4^g, so this is where an int32 overflow would show.
TEST(Linear, LargestKIsExactAndLargerKIsRefused) {
  const int64_t n = 16, k = kI2SMaxK;
  std::vector<int8_t> t((size_t)(n * k), 1);
  for (int64_t j = 0; j < k; ++j) t[(size_t)(3 * k + j)] = -1;  // row 3 all -1
  const PackedWeights p = i2s_pack_ternary(t.data(), n, k, 1.0f);
  std::unique_ptr<Linear> lin = Linear::create(p, "big");
  for (int8_t v : {(int8_t)127, (int8_t)-127}) {
    QuantizedActs a;
    a.tokens = 1;
    a.k = k;
    a.k_stride = k;
    a.q.assign((size_t)k, v);
    a.scale = {1.0f};
    a.sum = {(int32_t)(v * k)};
    std::vector<int32_t> raw((size_t)lin->raw_width());
    lin->forward_raw(a, raw.data(), lin->raw_width());
    EXPECT_EQ(raw[0], (int32_t)(v * k));
    EXPECT_EQ(raw[3], (int32_t)(-v * k));
  }
  std::vector<int8_t> t2((size_t)(n * (k + 128)), 0);
  const PackedWeights p2 = i2s_pack_ternary(t2.data(), n, k + 128, 1.0f);
  try {
    Linear::create(p2, "blk.0.ffn_down.weight");
    FAIL() << "K beyond the limit accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_down.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("524288"), std::string::npos);
  }
}

}  // namespace
}  // namespace tritune
