// The BitNet b1.58 transformer (peers.md §3.4) over ModelWeights, in two paths:
//  * kReference: scalar float math of the training-time fake quantization. Every BitLinear
//    quantizes its input per token (quantize_acts) and computes y = raw / s_x * w_scale from
//    the format's scalar integer reference (format_traits(f).ref_gemm_int); float formats use
//    ref_gemm. Norms and attention are plain scalar float loops in the canonical reduction
//    order of model/ops.cc; the head accumulates in double.
//  * kKernel: each linear layer through Linear (the dispatched kernel for its format, shape and
//    token count), attention / norms / head vectorized and threaded.
// Both run batched: forward() takes any number of tokens (prefill = one GEMM per layer) and
// appends them to the KV cache.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/formats.h"
#include "kernels/linear.h"
#include "kernels/quantize.h"
#include "kernels/roofline.h"
#include "model/head.h"
#include "model/kv_cache.h"
#include "model/ops.h"
#include "model/parallel.h"
#include "model/weights.h"

namespace tritune {

enum class Path { kReference, kKernel };
const char* path_name(Path p);

// The seven linear layers of a decoder layer.
enum class LinearId : int { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kCount };
const char* linear_name(LinearId id);
// The four BitLinear inputs of a layer (q/k/v share one quantization, gate/up another).
enum class QuantSite : int { kQKV = 0, kO, kGateUp, kDown, kCount };
const char* quant_site_name(QuantSite s);

// Observation points for validation. Called only for int8-activation formats.
struct ForwardHooks {
  // Every quantized BitLinear input (all tokens of the call). The hook may replace the
  // contents of `a` (same tokens and k): validation forces one path's quantization onto the
  // other to separate rounding-tie flips from real differences.
  std::function<void(int64_t layer, QuantSite site, QuantizedActs& a)> on_quant;
  // Reference path: the exact integer sums raw[t * n + j] of one linear layer for `a`.
  std::function<void(int64_t layer, LinearId id, const QuantizedActs& a, const int32_t* raw)>
      on_raw;
};

// Where forward() spends its time (kernel or reference path), summed over calls while a
// profile is attached: `bench e2e --profile` prints it. Timing costs two clock reads per stage.
enum class Stage : int {
  kEmbed = 0,
  kNorm,       // RMSNorms (input, sub-norms, output norm)
  kQuantize,   // activation quantization of the four BitLinear inputs
  kQkv,        // linear q, k, v
  kRopeCache,  // RoPE and the KV cache store
  kAttention,  // scores, softmax, weighted values
  kO,          // linear attn_output
  kGateUp,     // linear ffn_gate, ffn_up
  kFfnAct,     // relu2 gate (and the fused sub-norm on the kernel path)
  kDown,       // linear ffn_down
  kResidual,   // the two residual additions
  kHead,       // output head (logits)
  kCount
};
const char* stage_name(Stage s);

struct ForwardProfile {
  double seconds[(int)Stage::kCount] = {};
  int64_t calls = 0;  // forward() calls
  int64_t tokens = 0;
  double total_seconds = 0;
  // The thread pool over those calls: parallel loops run, and per stage the threads' summed
  // wait at the loops' ends (PoolStats::tail_idle_ns; every loop lies inside some stage).
  int64_t pool_loops = 0;
  int64_t idle_prefetch_bytes = 0;  // bytes idle workers prefetched (pool_prefetch_next)
  double tail_seconds[(int)Stage::kCount] = {};
  double pool_tail_seconds() const {
    double s = 0;
    for (double t : tail_seconds) s += t;
    return s;
  }
  void clear() { *this = ForwardProfile(); }
};

struct TransformerOptions {
  Path path = Path::kKernel;
  int threads = 1;
  KvType kv = KvType::kF32;
  int64_t context = 0;  // KV cache positions; 0: the model's context length
  // Kernel path: a layer's q/k/v and its gate/up (each set reads one input) run as one kernel
  // call over their tiles stored back to back (LinearGroup), when all are i2_s. The
  // environment variable TRITUNE_FUSE=0 turns it off (for A/B runs).
  bool fuse = true;
};

class Transformer {
 public:
  // Checks every tensor's shape against the hyper-parameters (Error names the tensor). The
  // kernel path prepares a Linear per layer from a copy of the packed weights.
  Transformer(std::shared_ptr<const ModelWeights> weights, const TransformerOptions& opt);
  // Kernel path only: moves each layer's packed bytes into its Linear instead of copying them
  // (the ModelWeights keep every layer's format and shape, without data), so the linear
  // weights are resident once, not twice. `weights` must not be used by a reference-path
  // Transformer afterwards (it refuses layers without data).
  static std::unique_ptr<Transformer> consume(std::shared_ptr<ModelWeights> weights,
                                              const TransformerOptions& opt);
  ~Transformer();

  const HParams& hp() const { return w_->hp; }
  const ModelWeights& weights() const { return *w_; }
  Path path() const { return opt_.path; }
  int threads() const { return pool_.size(); }
  int64_t pos() const { return pos_; }
  int64_t context() const { return cache_.capacity(); }
  const KvCache& kv_cache() const { return cache_; }
  void reset() { pos_ = 0; }

  // Evaluates tokens[0..n) at positions pos()..pos()+n-1, appending them to the KV cache.
  // Logits of batch rows [logits_from, n) go to logits[(i - logits_from) * vocab + v]
  // (logits_from == n: none, n - 1: the last token only). Throws Error on a token id outside
  // the vocabulary or when the context is full.
  void forward(const int32_t* tokens, int64_t n, int64_t logits_from, float* logits);
  // Prompts longer than this run as consecutive batches of it (same results, less memory).
  static constexpr int64_t kMicroBatch = 256;
  // Convenience: the last token's logits.
  std::vector<float> forward_last(const std::vector<int32_t>& tokens);

  void set_hooks(ForwardHooks h) { hooks_ = std::move(h); }
  // Accumulates stage times into *p on every forward() until set_profile(nullptr).
  void set_profile(ForwardProfile* p) { profile_ = p; }
  // Kernel path: the prepared linear layer (nullptr on the reference path).
  const Linear* kernel_linear(int64_t layer, LinearId id) const;
  const OutputHead* kernel_head() const { return head_.get(); }

  // Bytes one decoded token reads at context length `ctx`: linear weights, the head, one
  // embedding row and the KV cache rows attention reads.
  int64_t bytes_per_token(int64_t ctx) const;
  // Kernel path: the weight bytes a decoded token streams, in the order it streams them (each
  // layer's q, k, v, o, gate, up, down, then the head). Empty on the reference path.
  std::vector<ByteSpan> weight_spans() const;
  // Weight bytes each stage streams per decoded token (kQkv, kO, kGateUp, kDown: the layers'
  // linear weights; kHead: the head; 0 for the others). They sum to weight_spans()' total.
  std::array<int64_t, (size_t)Stage::kCount> stage_weight_bytes() const;
  // Bytes the path holds besides the ModelWeights (repacked linears, converted head, cache).
  int64_t extra_bytes() const;
  // Human-readable list of the kernel variants in use (per linear format/shape and the head).
  std::string describe() const;

 private:
  Transformer(std::shared_ptr<ModelWeights> weights, const TransformerOptions& opt, bool take_over);
  const PackedWeights& packed(int64_t layer, LinearId id) const;
  // forward() on at most kMicroBatch tokens, arguments already checked.
  void forward_batch(const int32_t* tokens, int64_t n, int64_t logits_from, float* logits);
  // y[t * n + j] = linear(layer, id) over `tokens` rows of x (stride k), quantized input `a`
  // for int8 formats (shared by the layers of a site).
  void linear(int64_t layer, LinearId id, const float* x, const QuantizedActs* a, int64_t tokens,
              float* y);
  // The activations of `site`, in a buffer the next call reuses.
  const QuantizedActs& quantize(int64_t layer, QuantSite site, const float* x, int64_t tokens,
                                int64_t k);
  bool int8_acts(int64_t layer, LinearId id) const;
  void rmsnorm_rows(const float* x, const std::vector<float>& w, int64_t tokens, int64_t n,
                    float* y);
  const RawMatrix& head_matrix() const;

  std::shared_ptr<const ModelWeights> w_;
  TransformerOptions opt_;
  ThreadPool pool_;
  KvCache cache_;
  RopeTable rope_;
  int64_t pos_ = 0;
  ForwardHooks hooks_;
  ForwardProfile* profile_ = nullptr;
  struct Buffers {
    std::vector<float> x, h, tmp, q, k, v, att, g, u;
    QuantizedActs acts;  // quantize()'s result, one site at a time
  } buf_;
  // Names the weights of (layer, site)'s GEMV to the pool's idle prefetch (decode).
  void prefetch_site(int64_t layer, QuantSite site) const;
  // The fused group of (layer, site), or nullptr (reference path, unfused site).
  const LinearGroup* group(int64_t layer, QuantSite site) const;
  std::vector<std::unique_ptr<Linear>> lin_;  // kernel path: layer * 7 + id
  // Kernel path: per layer and quantization site the group of its layers, or nullptr.
  std::vector<std::shared_ptr<LinearGroup>> groups_;
  // y_i = member i of a fused site's group for quantized activations `a`, one kernel call;
  // false (nothing done) when the site is not fused.
  bool fused_linear(int64_t layer, QuantSite site, const QuantizedActs* a, std::vector<float*> ys);
  std::unique_ptr<OutputHead> head_;
};

// Loads weights for both paths from the same ModelWeights and checks a token list is in range.
void check_tokens(const HParams& hp, const int32_t* tokens, int64_t n);

}  // namespace tritune
