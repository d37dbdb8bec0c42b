// Helpers shared by the GGUF and Hugging Face loaders (not a public interface).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/formats.h"
#include "model/loader.h"

namespace tritune::loader_detail {

void note(LoadReport& r, const std::string& msg);
// Counts one linear layer converted from `from` (stored type) to `to` (kernel format).
void count_conversion(LoadReport& r, const std::string& from, const std::string& to);

// Checks the hyper-parameters are positive, consistent and not absurd (so nothing sized from
// them can be a huge allocation). `where` names the file.
void validate_hparams(const HParams& hp, const std::string& where);

// Refuses (Error naming `where`) linear layers that need `bytes` once read into memory when
// that is more than opt.memory_limit, or than MemAvailable when the limit is -1.
void require_linear_memory(double bytes, int64_t layers, const std::string& where,
                           const LoadOptions& opt);

// A ternary layer from its values: i2_s when K is a multiple of 128, else f16 when t * scale is
// exact in f16, else f32 (noted). `what` names the file and tensor in errors.
PackedWeights ternary_layer(const std::vector<int8_t>& t, int64_t n, int64_t k, float scale,
                            const std::string& what, LoadReport& r);
// Float weights (n x k): absmean-ternarized to a ternary layer.
PackedWeights ternarized_layer(const std::vector<float>& w, int64_t n, int64_t k,
                               const std::string& what, LoadReport& r);
// Float weights kept as f32 PackedWeights.
PackedWeights f32_layer(std::vector<float> w, int64_t n, int64_t k);

// "[2560, 6912]"
std::string dims_str(const std::vector<int64_t>& d);

// Runs fn; an Error it throws is re-thrown with `what` in front (unless it already names it).
template <typename Fn>
auto with_context(const std::string& what, Fn fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(what, 0) == 0) throw;
    throw Error(what + ": " + msg);
  }
}

}  // namespace tritune::loader_detail
