// `tritune convert`: any loadable model (GGUF, HF packed or BF16 safetensors) -> GGUF with
// i2_s / tq2_0 / tq1_0 / f16 / f32 linear layers, through the same streaming writer as the
// synthetic models. Ternary layers keep their exact values and scale (tq* store the scale as
// f16, one per 256-block); float layers are ternarized with absmean when a ternary format is
// asked for.
#pragma once
#include <memory>
#include <string>

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

}  // namespace tritune
