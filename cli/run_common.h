// Shared pieces of the model subcommands (run, ppl, validate, bench e2e): loading, the
// tokenizer, threads, --logits-out, resident memory.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "kernels/json.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "model/weights.h"

namespace tritune::cli {

struct LoadedModel {
  std::shared_ptr<ModelWeights> weights;
};

// Loads any model file tritune reads (GGUF, safetensors, HF directory); prints the loader's
// notes to stderr. embd_type (a ggml type id; UINT32_MAX: as stored) re-encodes the embedding
// and output head at load (requantize_embeddings, model/convert.h) on `threads` threads.
LoadedModel load_for_run(const std::string& path, uint32_t embd_type = UINT32_MAX, int threads = 1);
// The re-encoding part of it, for a model already loaded (UINT32_MAX: nothing to do); prints
// one note per tensor it converts.
void reencode_embeddings(ModelWeights& w, uint32_t embd_type, int threads);

// The --embd-type option of `a` as a ggml type id (UINT32_MAX when it is not given).
uint32_t embd_type_arg(const Args& a);
// The --embd-type option of the model commands (run, ppl, validate, bench e2e).
constexpr const char* kEmbdTypeHelp =
    "re-encode the embedding and output head at load: q6_k | q8_0 | f16 | bf16 | f32 (e.g. "
    "q6_k for an HF checkpoint's BF16 head: 2.4x fewer head bytes; default: as stored)";

// The most positions --ctx, -n, -p or -d may ask for (16M: beyond any model's context, and
// small enough that no size computed from it overflows).
constexpr int64_t kMaxPositions = int64_t(1) << 24;
// `value` of `option` when it lies in [lo, kMaxPositions]; an Error naming both otherwise.
int64_t positions_arg(const std::string& option, int64_t value, int64_t lo);

// --seed of `a`: a non-negative integer (a negative one would be recorded as a value --seed
// cannot take back).
uint64_t seed_arg(const Args& a);

// -t default: the logical CPUs (the machine's own answer, at least 1).
int default_threads();
// Sizes the thread pool every parallel loop runs on (kernels/thread_pool.h) and returns n after
// checking 1 <= n <= 256.
int apply_threads(int64_t n);

// The kernel path takes the linear weights over (resident once); the reference path shares.
std::unique_ptr<Transformer> make_transformer(const LoadedModel& m, const TransformerOptions& o);

// Transformer options from the common flags (--path, --kv, --ctx; context 0 is left for the
// command to size once the model is loaded), checked before any model loads.
TransformerOptions transformer_options(const Args& a, int threads);

// Checks, before a long run, that the file option `option` names can be written at the end: its
// directory exists and it is not a directory.
void check_output_file(const std::string& option, const std::string& path);
// Writes `text` to `path` (the value of `option`), checking every step (a full disk is an error
// naming the option, the path and the reason).
void write_text_file(const std::string& option, const std::string& path, const std::string& text);

// Writes `v` as one JSON document to `path` (the value of `option`, named in the error if the
// file cannot be written) and prints "wrote PATH".
void write_json_file(const std::string& option, const std::string& path, const json::Value& v);

// Checks the output path of a model writer before any work (loading can take minutes): its
// directory exists and it is not a directory itself (unless `directory`: the safetensors layout
// is one). A GGUF output named .safetensors is refused: `gguf_hint` says what to do instead.
void check_model_output(const std::string& path, bool directory, const std::string& gguf_hint);

// The --logits-out path of `a` ("" when not given; given empty is an error), checked like
// check_output_file before any model loads.
std::string logits_out_arg(const Args& a);

// A note on stderr when the buffer an option sizes (`bytes`, > 0) is below twice the last-level
// cache: it stays cached, and what it measures is not memory.
void note_if_cached(const std::string& option, int64_t bytes);

// Writes raw little-endian float32 rows to FILE (opened once, appended per call).
class LogitsWriter {
 public:
  explicit LogitsWriter(const std::string& path);  // "" = disabled
  ~LogitsWriter();
  void write(const float* logits, int64_t count);
  // Flushes and closes the file, throwing if the last writes failed (a full disk shows there,
  // in the buffered tail). The destructor closes without checking.
  void close();
  bool enabled() const { return f_ != nullptr; }
  int64_t rows_written(int64_t vocab) const { return written_ / vocab; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  int64_t written_ = 0;
};

// VmRSS of this process in bytes (0 if /proc is not there).
int64_t resident_bytes();
// VmHWM: the peak resident set of this process so far (0 if /proc is not there).
int64_t peak_resident_bytes();
// RssFile: the part of the resident set that is clean pages of mapped files (the model file's
// embedding rows, libraries), which the kernel can drop under pressure.
int64_t resident_file_bytes();

// "bitnet 2B i2_s" style label from the hyper-parameters and the linear format.
std::string model_label(const ModelWeights& w);
int64_t parameter_count(const ModelWeights& w);

// Deterministic pseudo-random tokens in [0, vocab) (benchmarks and validate without text).
std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed);

}  // namespace tritune::cli
