// The full-precision baseline of a model: the same weights with every linear layer stored as
// f16 (or f32) and the embedding/head as F16, for "same model in F16 weights, same run"
// comparisons (tritune bench e2e --compare-f16). Memory: 2 bytes per weight (4.8 GB for 2B4T).
#pragma once
#include <memory>

#include "kernels/formats.h"
#include "model/weights.h"

namespace tritune {

// Throws Error if `f` is not a float format.
std::shared_ptr<ModelWeights> to_float_model(const ModelWeights& w, Format f = Format::kF16);

}  // namespace tritune
