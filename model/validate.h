// Kernel path vs reference path on the same weights and tokens (the accuracy proof of the
// issue). Three runs over the same tokens, all positions' logits each:
//  1. kernel path, recording every quantized BitLinear input (x_q and scale);
//  2. reference path, free-running: logits, perplexity, top-1 agreement, and how many
//     activations quantized differently from run 1 (float rounding before the quantizer can
//     flip a round-half-even tie, and a flip propagates);
//  3. reference path forced onto run 1's quantized inputs ("teacher forcing"): it still counts
//     its own flips, but then uses the kernel's x_q, so the residual streams stay identical and
//     any logit difference left is float summation order in norms, attention and the head.
//     A difference beyond that tolerance is a bug, whatever the flips. During this run every
//     linear layer's kernel forward_raw is checked bit for bit against the format's integer
//     reference on the same int8 input.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/quantize.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace tritune {

struct ValidateOptions {
  int threads = 1;
  KvType kv = KvType::kF32;
  bool forced = true;            // run 3 (and the per-layer bit-exact check)
  double min_top1 = 0.99;        // free-running top-1 agreement
  double max_ppl_rel = 0.005;    // |ppl_kernel / ppl_reference - 1|
  double forced_rel_tol = 1e-4;  // forced max |diff| / max |logit|
  std::string logits_out;        // kernel-path logits written here (raw f32), if set
  // Test hooks on the kernel run's quantized inputs (layer, site index, x_q): before recording
  // (simulates a tie flip: the reference runs see it) or after (simulates a kernel bug that
  // validation must catch: the forced run cannot reproduce it).
  std::function<void(int64_t, int, QuantizedActs&)> tamper_before_record, tamper_after_record;
};

struct FlipCount {
  int64_t compared = 0, flipped = 0, beyond_one = 0;  // beyond_one: |difference| > 1 step
};
// Adds the elementwise x_q differences of a and b (same tokens and k) to c.
void count_flips(const QuantizedActs& a, const QuantizedActs& b, FlipCount* c);

// What re-encoding the embedding and output head costs in accuracy (`validate --embd-type`):
// the kernel path over the stored tensors against the kernel path over the re-encoded ones,
// same linear weights and tokens. It measures the whole change a user makes with
// `--embd-type`: the head's storage and, for Q8_0 / Q6_K, its int8 activations.
struct EmbeddingEffect {
  std::string stored, encoded;                  // type names: "BF16", "Q6_K"
  int64_t stored_bytes = 0, encoded_bytes = 0;  // the head's bytes (embedding, or the output)
  double top1_agreement = 0;
  double max_abs_diff = 0, mean_abs_diff = 0, max_abs_logit = 0;
  double ppl_stored = 0, ppl_encoded = 0, ppl_rel_diff = 0;
};

struct ValidateReport {
  int64_t tokens = 0, vocab = 0;
  // Free-running kernel vs reference.
  double max_abs_diff = 0, mean_abs_diff = 0, max_abs_logit = 0;
  double top1_agreement = 0;
  double ppl_kernel = 0, ppl_reference = 0, ppl_rel_diff = 0;
  int64_t acts_compared = 0, acts_flipped = 0;  // quantized activations, free run
  int64_t flips_beyond_one = 0;                 // |x_q difference| > 1 (free run: flips propagate)
  // Forced reference vs kernel.
  bool forced_run = false;
  double forced_max_abs_diff = 0, forced_mean_abs_diff = 0;
  int64_t forced_flips = 0;       // ties that float noise alone flipped (no propagation)
  int64_t forced_beyond_one = 0;  // must be 0: same upstream state, so at most one step
  int64_t linear_checks = 0, linear_mismatches = 0;
  std::string first_mismatch;
  std::vector<std::string> failures;         // empty = pass
  std::optional<EmbeddingEffect> embedding;  // from compare_embeddings() (informational)
  bool pass() const { return failures.empty(); }
  std::string to_json() const;
  std::string to_text() const;
};

// Runs the three passes over `tokens` (one batched prefill each; the context must hold them).
ValidateReport validate_model(std::shared_ptr<const ModelWeights> weights,
                              const std::vector<int32_t>& tokens, const ValidateOptions& opt);

// Kernel path over `stored` and over `encoded` (the same model with its embedding/output
// re-encoded, requantize_embeddings in model/convert.h) on `tokens`: top-1 agreement, logit
// differences, perplexity of each.
EmbeddingEffect compare_embeddings(std::shared_ptr<const ModelWeights> stored,
                                   std::shared_ptr<const ModelWeights> encoded,
                                   const std::vector<int32_t>& tokens, int threads, KvType kv);

// Mean negative log-likelihood of next-token predictions from all-position logits: the mean
// over t < n-1 of -log softmax(logits[t])[tokens[t+1]], log-softmax in double.
double mean_nll_from_logits(const float* logits, int64_t vocab, const std::vector<int32_t>& tokens);
// Its perplexity, exp(mean NLL) (infinite when the logits are extreme enough).
double perplexity_from_logits(const float* logits, int64_t vocab,
                              const std::vector<int32_t>& tokens);
// |ppl_a / ppl_b - 1| from the two mean NLLs: finite even where both perplexities overflow.
double ppl_rel_diff(double nll_a, double nll_b);

}  // namespace tritune
