// The in-memory BitNet b1.58 model every loader produces (GGUF, safetensors, synthetic) and the
// transformer consumes. Linear layers keep their file format (PackedWeights) so the kernel path
// can use them without another conversion; norms are float.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/formats.h"
#include "model/tokenizer.h"

namespace tritune {

struct HParams {
  std::string arch;  // general.architecture: bitnet-b1.58 | bitnet | bitnet-25
  int64_t vocab = 0;
  int64_t hidden = 0;                // embedding_length
  int64_t ffn = 0;                   // feed_forward_length
  int64_t layers = 0;                // block_count
  int64_t heads = 0;                 // attention.head_count
  int64_t kv_heads = 0;              // attention.head_count_kv
  int64_t head_dim = 0;              // hidden / heads (rope.dimension_count where given)
  int64_t context = 4096;            // context_length
  float rms_eps = 1e-5f;             // attention.layer_norm_rms_epsilon
  float rope_theta = 500000.0f;      // rope.freq_base
  std::string activation = "relu2";  // always relu2 for these architectures
};

// The GGUF architectures tritune loads and writes: bitnet-b1.58 (bitnet.cpp's 2B4T files),
// bitnet (llama.cpp's name), bitnet-25. Defined in model/model_writer.cc.
const std::vector<std::string>& gguf_architectures();
// Throws Error "<what> '<arch>' is not a BitNet architecture (known: ...)" unless `arch` is one
// of them.
void check_gguf_architecture(const std::string& arch, const std::string& what);

// A matrix stored in one of the file's tensor types, for embedding lookup and the output head.
// Formats the registry does not hold (Q8_0, Q6_K, BF16, ...) are described by `ggml_type` and
// `data`; loaders may convert them to a registry format at load.
struct RawMatrix {
  std::string name;
  int64_t rows = 0, cols = 0;     // rows x cols, cols contiguous (ne[0] == cols)
  uint32_t ggml_type = 0;         // GGUF tensor type id
  const uint8_t* data = nullptr;  // points into the mapping or into `owned`
  int64_t bytes = 0;
  std::vector<uint8_t> owned;  // used when the data had to be converted or copied
  bool file_mapped = false;    // data points into a read-only file mapping (not `owned`)

  RawMatrix() = default;
  RawMatrix(RawMatrix&&) = default;  // a moved vector keeps its buffer: `data` stays valid
  RawMatrix& operator=(RawMatrix&&) = default;
  // A copy points into its own `owned`, not the original's.
  RawMatrix(const RawMatrix& o) { *this = o; }
  RawMatrix& operator=(const RawMatrix& o) {
    if (this == &o) return *this;
    name = o.name;
    rows = o.rows;
    cols = o.cols;
    ggml_type = o.ggml_type;
    bytes = o.bytes;
    owned = o.owned;
    file_mapped = o.file_mapped;
    const bool in_owned =
        !o.owned.empty() && o.data >= o.owned.data() && o.data < o.owned.data() + o.owned.size();
    data = in_owned ? owned.data() + (o.data - o.owned.data()) : o.data;
    return *this;
  }
};

struct LayerWeights {
  std::vector<float> attn_norm, attn_sub_norm, ffn_norm, ffn_sub_norm;
  PackedWeights wq, wk, wv, wo, w_gate, w_up, w_down;  // [out, in] each
  // The seven in forward order: q, k, v, o, gate, up, down (the order of LinearId and Proj).
  std::array<const PackedWeights*, 7> linears() const {
    return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down};
  }
};

struct ModelWeights {
  std::string path;        // file it came from
  std::string name;        // its own name (GGUF general.name), "" if it has none
  int64_t file_bytes = 0;  // bytes of the files the loader read it from (all shards)
  HParams hp;
  RawMatrix tok_embd;  // [vocab, hidden]
  RawMatrix output;    // [vocab, hidden]; empty (rows == 0) when tied to tok_embd
  std::vector<float> output_norm;
  std::vector<LayerWeights> layers;
  std::shared_ptr<void> keepalive;  // the file mapping, if tensors point into it
  // The tokenizer travels with the model, as the loaders found it (tokens empty: the file
  // carried none).
  TokenizerData tokenizer;
};

}  // namespace tritune
