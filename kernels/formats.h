// The format registry: one traits table lists every weight format. Tests, benchmarks, the tuner,
// the CLI and the reports iterate over it; a new quantization scheme is a new row (plus its
// packer, scalar reference and generator family), and the static_assert in formats.cc turns a
// forgotten row into a compile error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/huge_pages.h"
#include "kernels/quantize.h"

namespace tritune {

enum class Format : int {
  kI2S = 0,  // bitnet.cpp I2_S: 2-bit codes w+1, 128-weight / 32-byte blocks, f32 tensor scale
  kF32,      // full-precision baseline
  kF16,      // half-precision baseline (llama.cpp-style F16 weights, f32 activations)
  kCount
};

enum class ActType : int {
  kInt8PerToken,  // per-token absmax int8 (quantize_acts)
  kF32,           // float activations
};

const char* act_type_name(ActType a);

// Weights of one linear layer (N output rows x K inputs) stored in a format's own layout.
struct PackedWeights {
  Format format = Format::kF32;
  int64_t n = 0;       // output features (rows)
  int64_t k = 0;       // input features (columns; contiguous)
  WeightBytes data;    // the format's storage, exactly as it would be in a GGUF tensor
  float scale = 1.0f;  // ternary formats: W ~= t * scale (absmean); float formats: 1
};

struct FormatTraits {
  Format id;
  const char* name;              // "i2_s", "f32", "f16"
  double bits_per_weight;        // storage cost, block overhead included
  int64_t block_size;            // weights per block (along K)
  int64_t bytes_per_block;       // storage bytes of one block
  bool ternary;                  // weights are {-1,0,+1} x scale
  ActType act;                   // what its kernels take as activations
  const char* generator_family;  // the Halide generator family ("i2s", "fp")
  const char* doc;

  // Packs dense float weights (row-major n x k). Ternary formats ternarize with the absmean
  // quantizer unless the weights are already ternary x one scale. Throws Error on shapes the
  // layout cannot hold (the message says which constraint and how to fix it).
  PackedWeights (*pack)(const float* w, int64_t n, int64_t k);
  // Dequantizes to dense float (n x k).
  void (*unpack)(const PackedWeights& p, float* w);
  // Scalar reference y[t][n] = sum_k W[n][k] * x[t][k] including this format's activation
  // quantization, in the float arithmetic the kernels promise to match.
  void (*ref_gemm)(const PackedWeights& p, const float* x, int64_t tokens, float* y);
  // Integer reference (ternary formats): raw[t][n] = sum_k x_q[t][k] * t[n][k], bit-exact
  // oracle of the integer kernels. nullptr for float formats.
  void (*ref_gemm_int)(const PackedWeights& p, const QuantizedActs& a, int32_t* raw);
};

const FormatTraits& format_traits(Format f);
const std::vector<FormatTraits>& all_formats();
// Looks a format up by name; throws Error listing the known names.
const FormatTraits& find_format(const std::string& name);

// Storage bytes of an n x k tensor in format f (throws if the shape is impossible).
int64_t format_bytes(Format f, int64_t n, int64_t k);

// Absmean ternarization (BitNet b1.58 training quantizer): scale = mean|W| (>= 1e-8),
// t = clamp(round(W / scale), -1, 1). If W is already ternary x one value, that value is kept.
float ternarize_absmean(const float* w, int64_t count, int8_t* t);

}  // namespace tritune
