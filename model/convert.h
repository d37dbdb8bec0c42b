// `tritune convert`: any loadable model (GGUF, HF packed or BF16 safetensors) -> GGUF with
// i2_s / tq2_0 / tq1_0 / f16 / f32 linear layers, through the same streaming writer as the
// synthetic models. Ternary layers keep their exact values and scale (tq* store the scale as
// f16, one per 256-block); float layers are ternarized with absmean when a ternary format is
// asked for.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/model_writer.h"
#include "model/weights.h"

namespace tritune {

// ModelWeights as a ModelSource. ternarize_float: float (f16/f32) layers are presented as
// ternary (absmean); otherwise they are float layers.
std::unique_ptr<ModelSource> weights_source(const ModelWeights& w, bool ternarize_float);

struct ConvertOptions {
  std::string format = "i2_s";      // linear layers: i2_s | tq2_0 | tq1_0 | f16 | f32
  uint32_t embd_type = UINT32_MAX;  // embeddings: keep the stored type unless set
  std::string name;                 // general.name (default: the source path)
  std::string arch;                 // general.architecture (default: the source's)
};

WriteSummary convert_to_gguf(const ModelWeights& w, const std::string& out,
                             const ConvertOptions& opt);

// Re-encodes the token embedding, and the output matrix when it is separate, as `type` (F32,
// F16, BF16, Q8_0 or Q6_K) in owned memory: what `convert --embd-type` writes, done at load.
// A 2B4T BF16 checkpoint's tied head then streams 269 MB per token as Q6_K instead of 657 MB.
// Rows are converted on `threads` threads; the stored tensor's pages leave the resident set
// when it was file-mapped. Throws Error (naming the tensor and the fix) when hidden is not a
// multiple of the type's block or the type cannot be written. Returns one note per converted
// tensor ("token_embd: BF16 -> Q6_K, 656.7 -> 269.4 MB"); none when each already has the type.
std::vector<std::string> requantize_embeddings(ModelWeights& w, uint32_t type, int threads);

// When the output head (the tied embedding or a separate `output`) is stored as F32, F16 or
// BF16 and makes up at least a quarter of the bytes a token streams (head plus linear layers),
// a note that says so and names `--embd-type q6_k` with the bytes it would stream instead;
// empty otherwise. The packed 2B4T checkpoint's BF16 head is 56% of a token's 1180 MB.
std::string float_head_note(const ModelWeights& w);

}  // namespace tritune
