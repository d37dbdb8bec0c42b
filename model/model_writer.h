// Writes BitNet b1.58 models, tensor by tensor, as GGUF (i2_s / tq2_0 / tq1_0 / f16 / f32
// linear layers) or as a Hugging Face packed checkpoint (safetensors + config.json +
// tokenizer.json). The weights come from a ModelSource that produces rows on demand, so a
// synthetic 100B model and a converted 2B model go through the same code and neither is ever
// fully in memory.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/gguf.h"
#include "model/tokenizer.h"
#include "model/weights.h"

namespace tritune {

enum class Proj : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kCount };
enum class NormId : int { kAttn = 0, kAttnSub, kFfn, kFfnSub, kCount };
// "attn_q", ... (GGUF names) and "self_attn.q_proj", ... (HF names).
const char* proj_gguf_name(Proj p);
const char* proj_hf_name(Proj p);
// Output rows (n) and input columns (k) of a projection for these hyper-parameters.
std::pair<int64_t, int64_t> proj_shape(const HParams& hp, Proj p);
int64_t norm_size(const HParams& hp, NormId id);

// The linear-layer formats a file can be written in.
enum class LinearFormat { kI2S, kTQ2_0, kTQ1_0, kF16, kF32 };
// "i2_s" | "tq2_0" | "tq1_0" | "f16" | "f32"; throws listing the names.
LinearFormat parse_linear_format(const std::string& name);
const char* linear_format_name(LinearFormat f);

// A model to write: hyper-parameters, tokenizer and row generators.
class ModelSource {
 public:
  virtual ~ModelSource() = default;
  virtual const HParams& hparams() const = 0;
  virtual const TokenizerData* tokenizer() const = 0;  // nullptr: write no tokenizer
  virtual bool has_output() const = 0;                 // false: output tied to the embedding
  // Embedding (output == false) or output matrix rows as float, `cols` = hidden each.
  virtual void matrix_rows(bool output, int64_t row0, int64_t count, float* out) const = 0;
  // The stored matrix, if the source has one (lets GGUF keep its bytes untouched); else null.
  virtual const RawMatrix* raw_matrix(bool output) const { return nullptr; }
  virtual std::vector<float> norm(int64_t layer, NormId id) const = 0;  // layer -1: output_norm
  // True when the layer is ternary x one scale (else float_rows() gives its weights).
  virtual bool is_ternary(int64_t layer, Proj p) const = 0;
  virtual float scale(int64_t layer, Proj p) const = 0;
  virtual void ternary_rows(int64_t layer, Proj p, int64_t row0, int64_t count,
                            int8_t* out) const = 0;
  virtual void float_rows(int64_t layer, Proj p, int64_t row0, int64_t count, float* out) const = 0;
};

// Float values -> the bytes of a ggml type: F32, F16, BF16, Q8_0, Q6_K, TQ1_0, TQ2_0 (n a
// whole number of the type's blocks; `out` takes ggml::row_bytes(type, n) bytes). Error for
// other types.
void encode_floats(uint32_t type, const float* x, int64_t n, uint8_t* out);
void encode_floats(uint32_t type, const float* x, int64_t n, std::vector<uint8_t>& out);
// `rows` rows of `cols` values, row by row into row_bytes(type, cols) each: a value the type
// cannot encode is named by its row (counted from `first_row`) and column ("row 3, value 5 is
// NaN, ...").
void encode_rows(uint32_t type, const float* x, int64_t rows, int64_t cols, uint8_t* out,
                 int64_t first_row = 0);
// The types an embedding or output matrix can be written as: F32, F16, BF16, Q8_0, Q6_K.
bool can_write_matrix_type(uint32_t type);
// One of them by its lower-case name ("q6_k"); Error listing the names otherwise.
uint32_t parse_matrix_type(const std::string& name);

struct GgufModelOptions {
  LinearFormat linear = LinearFormat::kI2S;
  // ggml type of token_embd/output; UINT32_MAX keeps the source's stored type (F16 if none).
  uint32_t embd_type = UINT32_MAX;
  std::string name;  // general.name
  // general.architecture and the prefix of the hyper-parameter keys; empty keeps the source's.
  // One of gguf_architectures() (model/weights.h): llama.cpp names BitNet b1.58 "bitnet",
  // bitnet.cpp "bitnet-b1.58"; the weights and tensor names are the same for all of them.
  std::string arch;
  std::vector<std::pair<std::string, gguf::Value>> extra_metadata;
};

struct WriteSummary {
  int64_t bytes = 0;
  int64_t tensors = 0;
  std::vector<std::string> notes;  // fallbacks (shapes a block cannot hold), conversions
};

// The ggml type a ternary linear layer with K inputs gets: the format's type when K is a
// multiple of its block, else F16 when t * scale is exact in f16, else F32.
uint32_t linear_tensor_type(LinearFormat f, int64_t k, float scale);

WriteSummary write_gguf_model(const ModelSource& src, const std::string& path,
                              const GgufModelOptions& opt);
// Writes DIR/model.safetensors (HF packed: uint8 [out/4, in] + BF16 weight_scale = 1/scale,
// BF16 embeddings and norms), DIR/config.json, and DIR/tokenizer.json +
// tokenizer_config.json when the source has a tokenizer. Creates DIR if needed.
WriteSummary write_hf_model(const ModelSource& src, const std::string& dir);

// The GGUF tokenizer keys (tokenizer.ggml.*) for a vocabulary.
void set_gguf_tokenizer(gguf::Writer& w, const TokenizerData& tok);
// A Hugging Face tokenizer.json / tokenizer_config.json for a LLaMA-3-style vocabulary.
std::string hf_tokenizer_json(const TokenizerData& tok);
std::string hf_tokenizer_config_json(const TokenizerData& tok);

}  // namespace tritune
