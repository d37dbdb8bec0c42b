// Loads a BitNet b1.58 model into ModelWeights (model/weights.h) from
//   * GGUF (bitnet.cpp / llama.cpp files: architectures bitnet-b1.58, bitnet, bitnet-25), or
//   * a Hugging Face checkpoint: a directory with config.json and model.safetensors (or
//     model.safetensors.index.json + shards), or a .safetensors file with config.json beside it.
//
// What each stored linear-layer type becomes (the kernel formats of kernels/formats.h):
//   I2_S (GGUF type 36)            i2_s as stored (codes + tail), scale from the tail (multiplies)
//   TQ2_0 / TQ1_0                  i2_s, when every non-zero block has the same f16 scale (within
//                                  one f16 ulp); otherwise f32 (dequantized), with a note
//   HF packed uint8 + weight_scale i2_s, scale = 1 / weight_scale (the HF scale divides)
//   HF BF16/F16/F32 masters        i2_s via absmean ternarization (the BitNet training quantizer)
//   GGUF BF16                      i2_s via absmean (BF16 is not a kernel format)
//   GGUF F16 / F32                 f16 / f32 as stored (the full-precision baseline), or i2_s with
//                                  LoadOptions::ternarize_float
//   other readable types (Q8_0..)  f32 (dequantized), with a note
// A ternary layer whose K is not a multiple of 128 (the I2_S block) cannot be i2_s: it is kept
// as f16 when t * scale is exact in f16, else f32, with a note.
// Embedding and output stay RawMatrix in their stored type (F32, F16, BF16, Q8_0, Q6_K) pointing
// into the file mapping; other readable types are converted to owned F32 with a note. Norms are
// float vectors. The activation is always relu2 (llama.cpp's SiLU default for files without the
// key is a known bug), with a note when the file says otherwise.
//
// Every error is a tritune::Error naming the file and the tensor or key, never a crash.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace tritune {

struct LoadOptions {
  // GGUF F16/F32 linear layers: ternarize them (absmean) to i2_s instead of keeping them as the
  // full-precision baseline.
  bool ternarize_float = false;
  // After a linear layer has been copied out of the mapping, drop its pages from the resident
  // set (madvise DONTNEED): keeps resident memory near one copy of the model.
  bool release_pages = true;
  // Read tokenizer metadata (GGUF tokenizer.ggml.*); HF tokenizer.json is left to the tokenizer.
  bool load_tokenizer = true;
  // Bytes the linear layers may take once read into memory; a model that needs more is refused
  // before the first copy. -1: the machine's MemAvailable.
  int64_t memory_limit = -1;
};

// What the loader did besides the plain loading, for `tritune inspect` and logs.
struct LoadReport {
  std::string source;              // "GGUF v3", "safetensors (HF packed)", ...
  std::vector<std::string> notes;  // conversions, fallbacks, defaults used
  // Stored type -> kernel format per linear layer kind, e.g. "I2_S -> i2_s" x 210.
  std::vector<std::pair<std::string, int64_t>> conversions;
};

// Dispatches on what `path` is: a GGUF file (by magic), a safetensors file (by its header or
// its name), or a directory.
ModelWeights load_model(const std::string& path, const LoadOptions& opt = {},
                        LoadReport* report = nullptr);
ModelWeights load_gguf(std::shared_ptr<const gguf::File> file, const LoadOptions& opt = {},
                       LoadReport* report = nullptr);
// A HF checkpoint directory or .safetensors file (config.json is looked up beside it).
ModelWeights load_hf(const std::string& path, const LoadOptions& opt = {},
                     LoadReport* report = nullptr);
// The same from already-parsed parts (tests feed mutated in-memory files through this).
// `config_json` is the text of config.json; `config_name` names it in errors.
ModelWeights load_hf_parts(const std::vector<std::shared_ptr<const safetensors::File>>& shards,
                           const std::string& config_json, const std::string& config_name,
                           const LoadOptions& opt = {}, LoadReport* report = nullptr);

// True if `path` is a regular file that starts with the GGUF magic.
bool is_gguf(const std::string& path);
// True if `path` is a regular file that starts like a safetensors file (an 8-byte header length
// that fits the file, then '{'), whatever its name.
bool is_safetensors(const std::string& path);
// The safetensors files of a HF checkpoint: `path` itself when it is a file, else the
// directory's model.safetensors or the shards its model.safetensors.index.json names.
std::vector<std::string> hf_weight_files(const std::string& path);

// `path` without the slashes that end it ("a/b//" -> "a/b"; "/" stays "/").
std::string without_trailing_slashes(std::string path);
// The last part of a path, a file or directory name ("a/b/" -> "b"): how a model is named where
// its file carries no name, without the local path.
std::string last_path_component(const std::string& path);

// The GGUF tensor names (bitnet.cpp / llama.cpp) of layer i: "blk.<i>.<what>.weight".
std::string gguf_layer_tensor(int64_t layer, const std::string& what);

// The ternary values and scale of a ternary linear layer (i2_s), for converters and tests.
// Float layers are ternarized with absmean (exact when they already are ternary x one scale).
struct TernaryMatrix {
  int64_t n = 0, k = 0;
  std::vector<int8_t> t;  // n x k, row-major
  float scale = 1.0f;
};
TernaryMatrix ternary_of(const PackedWeights& w);

}  // namespace tritune
