// CPU detection (cpuid + xgetbv, once) and the ISA level -> Halide target mapping.
// TRITUNE_ISA=<level> forces a lower level for A/B runs (a higher one than the CPU has is refused).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tritune {

// ISA levels the kernels are built for, lowest first. Each is a Halide target.
enum class Isa : int {
  kX86_64 = 0,  // baseline x86-64 (SSE2): the plain fallback
  kAvx2,        // AVX2 + FMA + F16C (Haswell .. Zen 3, AVX-512-less Intel)
  kAvx512Vnni,  // AVX-512 with VNNI/BF16/VBMI2 (Zen 4/5, Sapphire Rapids and later)
  kCount
};

const char* isa_name(Isa isa);           // "x86_64", "avx2", "avx512vnni"
Isa parse_isa(const std::string& name);  // throws Error with the known names
const char* isa_halide_target(Isa isa);  // the Halide target string the variants are built for

struct CpuInfo {
  std::string vendor;  // "AuthenticAMD", "GenuineIntel"
  std::string brand;   // brand string
  int family = 0, model = 0, stepping = 0;
  int logical_cpus = 0;
  int64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;  // per instance, from sysfs when present
  bool hypervisor = false;
  std::vector<std::string> flags;  // detected ISA features, sorted
  bool has(const std::string& flag) const;
  Isa best_isa = Isa::kX86_64;  // highest level the CPU (and OS) support
  std::string isa_reason;       // why that level (which flags decided)
};

const CpuInfo& cpu_info();
bool cpu_supports(Isa isa);

// The level kernels run at: best_isa, or TRITUNE_ISA if set (refused if above best_isa).
Isa selected_isa();
std::string selected_isa_reason();

// Stable fingerprint string of the CPU (vendor, family/model, flags, cores, caches).
std::string cpu_fingerprint_text();

}  // namespace tritune

// Code between TRITUNE_TARGET_PUSH("avx2,fma") and TRITUNE_TARGET_POP is compiled for those
// ISA extensions whatever the file's flags (GCC: #pragma GCC target; clang, which the fuzzing
// build uses: #pragma clang attribute on every function in between). Callers reach it only
// after checking the CPU (selected_isa()).
#define TRITUNE_PRAGMA_TEXT(...) #__VA_ARGS__
#if defined(__clang__)
#define TRITUNE_TARGET_PUSH(isa) \
  _Pragma(TRITUNE_PRAGMA_TEXT(   \
      clang attribute push(__attribute__((target(isa))), apply_to = function)))
#define TRITUNE_TARGET_POP _Pragma("clang attribute pop")
#else
#define TRITUNE_TARGET_PUSH(isa) \
  _Pragma("GCC push_options") _Pragma(TRITUNE_PRAGMA_TEXT(GCC target(isa)))
#define TRITUNE_TARGET_POP _Pragma("GCC pop_options")
#endif

// Plain C++ loops compiled once per ISA level: NAME_generic, NAME_avx2 and NAME_avx512, each
// `return BODY ARGS;` (BODY an always_inline function) under that level's target attribute, so
// the compiler vectorizes the same source at each width. NAME_for(isa) is the clone for a
// level (a loop over many calls picks once) and NAME itself calls selected_isa()'s.
// The clones give the same results where every operation is correctly rounded and none is
// contracted into an FMA (a file that has a*b+c in a body turns contraction off).
#define TRITUNE_ISA_CLONES(RET, NAME, PARAMS, ARGS, BODY)                                       \
  RET NAME##_generic PARAMS {                                                                   \
    return BODY ARGS;                                                                           \
  }                                                                                             \
  __attribute__((target("avx2,fma,f16c"))) RET NAME##_avx2 PARAMS {                             \
    return BODY ARGS;                                                                           \
  }                                                                                             \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw"))) RET NAME##_avx512 PARAMS { \
    return BODY ARGS;                                                                           \
  }                                                                                             \
  [[maybe_unused]] auto NAME##_for(::tritune::Isa isa)->RET(*) PARAMS {                         \
    return isa == ::tritune::Isa::kAvx512Vnni ? NAME##_avx512                                   \
           : isa == ::tritune::Isa::kAvx2     ? NAME##_avx2                                     \
                                              : NAME##_generic;                                 \
  }                                                                                             \
  [[maybe_unused]] RET NAME PARAMS {                                                            \
    return NAME##_for(::tritune::selected_isa()) ARGS;                                          \
  }
