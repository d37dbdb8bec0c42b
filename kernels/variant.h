// Runnable kernel variants: the AOT-compiled defaults (every family x ISA level built into the
// binary) and points of a search space compiled at run time (JIT, cached on disk). Both have the
// same calling convention per family, so dispatch, tests, benchmarks and the tuner treat them
// alike.
//
// Family ABIs (Halide AOT argv convention, buffers in Halide dimension order, innermost first):
//   i2s : fn(w u8[64, k16, n16], x s8[k16*16, T], xsum s32[T], y s32[n16*16, T]) -> int
//   fp  : fn(w f32|f16[K, N], x f32[K, T], y f32[N, T]) -> int
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "generators/space.h"
#include "kernels/cpu_features.h"
#include "kernels/formats.h"
#include "kernels/i2s.h"
#include "kernels/quantize.h"

struct halide_buffer_t;

namespace tritune {

using HalideFn3 = int (*)(halide_buffer_t*, halide_buffer_t*, halide_buffer_t*);
using HalideFn4 = int (*)(halide_buffer_t*, halide_buffer_t*, halide_buffer_t*, halide_buffer_t*);

struct Variant {
  std::string name;  // <family>_<op>_<schedule>__<isa>
  VariantName spec;  // parsed name
  const SearchSpace* space = nullptr;
  void* fn = nullptr;  // HalideFn4 (i2s) or HalideFn3 (fp)
  bool jit = false;    // compiled at run time
};

// All AOT-built variants (the defaults of every family, for every ISA level).
const std::vector<Variant>& aot_variants();
// The AOT default variant of (family, op) for an ISA level (selected_isa() if omitted).
const Variant& default_variant(const std::string& family, const std::string& op, Isa isa);
// Finds a variant by name among the AOT ones, else compiles it (JIT); throws Error if the name
// is not a legal point or compilation fails.
const Variant& get_variant(const std::string& name);
// The JIT compiler module get_variant loads for points not built ahead of time
// (TRITUNE_JIT_MODULE, else the one this build made), and whether that file exists.
std::string jit_module_path();
bool jit_module_present();

// Threads used by every Halide kernel (one pool for AOT and JIT variants).
void set_num_threads(int n);
int num_threads();

// Runs an i2s variant: raw[t*ldy + n] = sum_k x_q[t][k] * t[n][k] for n < w.n_pad(), t < T.
// `a` must have k_stride == w.k_pad(). Throws Error on a Halide runtime error.
void run_i2s(const Variant& v, const I2STiles& w, const QuantizedActs& a, int32_t* raw,
             int64_t ldy);
inline void run_i2s(const Variant& v, const I2SKernelWeights& w, const QuantizedActs& a,
                    int32_t* raw, int64_t ldy) {
  run_i2s(v, tiles_of(w), a, raw, ldy);
}
// Runs an fp variant on f32 or f16 weights: y[t*ldy + n] = sum_k W[n][k] * x[t][k].
void run_fp(const Variant& v, const PackedWeights& w, const float* x, int64_t tokens, float* y,
            int64_t ldy);

}  // namespace tritune
