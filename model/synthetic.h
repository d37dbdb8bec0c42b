// Random-weight BitNet b1.58 models of named shapes, for tests and benchmarks (nothing is ever
// downloaded). Weights are generated row by row from (seed, tensor, row), so:
//  * any format of the same (shape, seed) holds exactly the same ternary weights and scales;
//  * files larger than memory are written streaming;
//  * tests can compare what a loader returns against the generator itself.
// Values are chosen to be exact in every format the writers use: per-tensor scales are powers of
// two (exact in f16, bf16 and as 1/scale), norm weights are 1 + k/64, embeddings are small
// integers times a power of two (exact in f16 and bf16). Scales are ~1/sqrt(2K/3) so each
// projection keeps unit-variance activations and a random model stays finite through its layers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model_writer.h"
#include "model/weights.h"

namespace tritune {

struct ModelShape {
  std::string name;
  int64_t hidden, ffn, layers, heads, kv_heads, vocab, context;
  std::string arch;
  float rope_theta;
  std::string doc;
};

// 2b4t, 125m, 350m, 700m, 1b, 1.5b, 2.7b, 3b, 3.8b, 7b, 13b, 30b, 70b, 100b, tiny.
const std::vector<ModelShape>& model_shapes();
// Throws Error listing the known names.
const ModelShape& find_shape(const std::string& name);
HParams shape_hparams(const ModelShape& s);

// The generator as a ModelSource (the writers and tests use it directly).
std::unique_ptr<ModelSource> synthetic_source(const HParams& hp, uint64_t seed,
                                              bool untied_output = false);

struct SyntheticOptions {
  ModelShape shape;
  std::string format = "i2_s";      // i2_s | tq2_0 | tq1_0 | f16 | f32 | safetensors
  uint32_t embd_type = UINT32_MAX;  // ggml type of the embedding (GGUF); default F16
  uint64_t seed = 1;
  int64_t layers = 0;          // > 0 overrides the shape's layer count
  bool untied_output = false;  // write a separate output matrix
  std::string arch;            // GGUF general.architecture; empty: the shape's
};

// Writes the model to `out` (a file for GGUF formats, a directory for safetensors).
WriteSummary write_synthetic_model(const SyntheticOptions& opt, const std::string& out);

}  // namespace tritune
