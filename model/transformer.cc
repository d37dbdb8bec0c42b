#include "model/transformer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "kernels/env.h"
#include "kernels/error.h"
#include "kernels/i2s.h"
#include "kernels/thread_pool.h"
#include "model/act_quant.h"
#include "model/mapped_file.h"

namespace tritune {

const char* path_name(Path p) {
  return p == Path::kReference ? "reference" : "kernel";
}

const char* linear_name(LinearId id) {
  static const char* kNames[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                 "ffn_gate", "ffn_up", "ffn_down"};
  const int i = (int)id;
  return i >= 0 && i < (int)LinearId::kCount ? kNames[i] : "?";
}

const char* quant_site_name(QuantSite s) {
  static const char* kNames[] = {"qkv_in", "o_in", "gate_up_in", "down_in"};
  const int i = (int)s;
  return i >= 0 && i < (int)QuantSite::kCount ? kNames[i] : "?";
}

const char* stage_name(Stage s) {
  static const char* kNames[] = {"embed", "rmsnorm", "quantize", "qkv",  "rope+kv",  "attention",
                                 "o",     "gate+up", "ffn act",  "down", "residual", "head"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == (size_t)Stage::kCount, "stage names");
  const int i = (int)s;
  return i >= 0 && i < (int)Stage::kCount ? kNames[i] : "?";
}

void check_tokens(const HParams& hp, const int32_t* tokens, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp.vocab) {
      throw Error("token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                  ", outside the vocabulary of " + std::to_string(hp.vocab));
    }
  }
}

namespace {

// The linear layers each quantization site feeds (they read one input: [first, first +
// count)) and the profile stage they are timed in.
struct SiteLayers {
  LinearId first;
  int count;
  Stage stage;
};
constexpr SiteLayers kSites[] = {{LinearId::kQ, 3, Stage::kQkv},
                                 {LinearId::kO, 1, Stage::kO},
                                 {LinearId::kGate, 2, Stage::kGateUp},
                                 {LinearId::kDown, 1, Stage::kDown}};
static_assert(sizeof(kSites) / sizeof(kSites[0]) == (size_t)QuantSite::kCount, "sites");

constexpr int kLinears = (int)LinearId::kCount;

int64_t head_dim_of(const HParams& hp) {
  return hp.head_dim > 0 ? hp.head_dim : (hp.heads > 0 ? hp.hidden / hp.heads : 0);
}

void check_vec(const std::vector<float>& v, int64_t n, const std::string& name) {
  if ((int64_t)v.size() != n) {
    throw Error("tensor '" + name + "' has " + std::to_string(v.size()) + " values, expected " +
                std::to_string(n));
  }
}

void check_packed(const PackedWeights& p, int64_t n, int64_t k, const std::string& name) {
  if (p.n != n || p.k != k) {
    throw Error("tensor '" + name + "' is " + std::to_string(p.n) + "x" + std::to_string(p.k) +
                ", expected " + std::to_string(n) + "x" + std::to_string(k) +
                " (out x in) from the hyper-parameters");
  }
  if (p.data.empty()) {
    throw Error("tensor '" + name + "' has no data (its bytes were moved into a kernel-path " +
                "Transformer by Transformer::consume)");
  }
  const int64_t need = format_bytes(p.format, n, k);
  if ((int64_t)p.data.size() < need) {
    throw Error("tensor '" + name + "' holds " + std::to_string(p.data.size()) + " bytes, " +
                format_traits(p.format).name + " needs " + std::to_string(need));
  }
}

void check_model(const ModelWeights& w) {
  const HParams& hp = w.hp;
  const int64_t D = head_dim_of(hp);
  if (hp.vocab <= 0 || hp.hidden <= 0 || hp.ffn <= 0 || hp.layers <= 0 || hp.heads <= 0 ||
      hp.kv_heads <= 0 || D <= 0) {
    throw Error("model '" + w.path + "': hyper-parameters must be positive (vocab " +
                std::to_string(hp.vocab) + ", hidden " + std::to_string(hp.hidden) + ", ffn " +
                std::to_string(hp.ffn) + ", layers " + std::to_string(hp.layers) + ", heads " +
                std::to_string(hp.heads) + ", kv_heads " + std::to_string(hp.kv_heads) + ")");
  }
  if (hp.heads % hp.kv_heads != 0) {
    throw Error("model '" + w.path + "': head_count " + std::to_string(hp.heads) +
                " is not a multiple of head_count_kv " + std::to_string(hp.kv_heads));
  }
  if (D % 2 != 0) throw Error("model '" + w.path + "': head_dim must be even for RoPE");
  if (hp.activation != "relu2") {
    throw Error("model '" + w.path + "': activation '" + hp.activation +
                "' is not supported (BitNet b1.58 uses relu2)");
  }
  if ((int64_t)w.layers.size() != hp.layers) {
    throw Error("model '" + w.path + "': " + std::to_string(w.layers.size()) +
                " layers present, block_count says " + std::to_string(hp.layers));
  }
  check_raw_matrix(w.tok_embd, hp.vocab, hp.hidden);
  if (w.output.rows > 0) check_raw_matrix(w.output, hp.vocab, hp.hidden);
  check_vec(w.output_norm, hp.hidden, "output_norm.weight");
  const int64_t q = hp.heads * D, kv = hp.kv_heads * D;
  for (int64_t l = 0; l < hp.layers; ++l) {
    const LayerWeights& L = w.layers[(size_t)l];
    const std::string b = "blk." + std::to_string(l) + ".";
    check_vec(L.attn_norm, hp.hidden, b + "attn_norm.weight");
    check_vec(L.attn_sub_norm, q, b + "attn_sub_norm.weight");
    check_vec(L.ffn_norm, hp.hidden, b + "ffn_norm.weight");
    check_vec(L.ffn_sub_norm, hp.ffn, b + "ffn_sub_norm.weight");
    check_packed(L.wq, q, hp.hidden, b + "attn_q.weight");
    check_packed(L.wk, kv, hp.hidden, b + "attn_k.weight");
    check_packed(L.wv, kv, hp.hidden, b + "attn_v.weight");
    check_packed(L.wo, hp.hidden, q, b + "attn_output.weight");
    check_packed(L.w_gate, hp.ffn, hp.hidden, b + "ffn_gate.weight");
    check_packed(L.w_up, hp.ffn, hp.hidden, b + "ffn_up.weight");
    check_packed(L.w_down, hp.hidden, hp.ffn, b + "ffn_down.weight");
  }
}

}  // namespace

Transformer::Transformer(std::shared_ptr<const ModelWeights> weights, const TransformerOptions& opt)
    : Transformer(std::const_pointer_cast<ModelWeights>(weights), opt, false) {}

std::unique_ptr<Transformer> Transformer::consume(std::shared_ptr<ModelWeights> weights,
                                                  const TransformerOptions& opt) {
  if (opt.path != Path::kKernel) {
    throw Error("Transformer::consume: only the kernel path can take the weights over");
  }
  return std::unique_ptr<Transformer>(new Transformer(std::move(weights), opt, true));
}

// The const_cast above is safe: with take_over == false nothing is modified.
Transformer::Transformer(std::shared_ptr<ModelWeights> weights, const TransformerOptions& opt,
                         bool take_over)
    : w_(std::move(weights)), opt_(opt), pool_(opt.threads) {
  if (!w_) throw Error("Transformer: no weights");
  check_model(*w_);
  const HParams& hp = w_->hp;
  const int64_t ctx = opt.context > 0 ? opt.context : std::max<int64_t>(hp.context, 1);
  cache_ = KvCache(hp.layers, hp.kv_heads, head_dim_of(hp), ctx, opt.kv);
  rope_ = RopeTable(head_dim_of(hp), ctx, hp.rope_theta);
  if (opt.path == Path::kKernel) {
    const bool fuse = opt.fuse && env_choice("TRITUNE_FUSE", {"0", "1"}, "1") == "1";
    groups_.resize((size_t)(hp.layers * (int)QuantSite::kCount));
    for (int64_t l = 0; l < hp.layers; ++l) {
      for (int s = 0; s < (int)QuantSite::kCount; ++s) {
        const SiteLayers& site = kSites[s];
        // A site of several layers: one group takes their weights (a copy of them unless
        // take_over) and its members become the site's Linears.
        if (fuse && site.count > 1) {
          std::vector<PackedWeights> copies;
          std::vector<PackedWeights*> members;
          for (int m = 0; m < site.count; ++m) {
            const PackedWeights& p = packed(l, (LinearId)((int)site.first + m));
            if (take_over) {
              members.push_back(const_cast<PackedWeights*>(&p));
            } else {
              copies.push_back(p);
            }
          }
          for (PackedWeights& c : copies) members.push_back(&c);
          if (auto g = LinearGroup::create(members)) {
            for (int m = 0; m < site.count; ++m) lin_.push_back(g->member(m));
            groups_[(size_t)(l * (int)QuantSite::kCount + s)] = std::move(g);
            continue;
          }
        }
        for (int m = 0; m < site.count; ++m) {
          const LinearId id = (LinearId)((int)site.first + m);
          const std::string name = "blk." + std::to_string(l) + "." + linear_name(id);
          if (take_over) {
            PackedWeights& p = const_cast<PackedWeights&>(packed(l, id));
            PackedWeights meta;
            meta.format = p.format;
            meta.n = p.n;
            meta.k = p.k;
            meta.scale = p.scale;
            lin_.push_back(Linear::create(std::move(p), name));
            p = std::move(meta);
          } else {
            lin_.push_back(Linear::create(packed(l, id), name));
          }
        }
      }
    }
    // TRITUNE_HEAD_LAYOUT=stored|interleaved overrides the head's layout choice (A/B runs).
    const std::string hls =
        env_choice("TRITUNE_HEAD_LAYOUT", {"stored", "interleaved", "auto"}, "auto");
    const HeadLayout layout = hls == "stored"        ? HeadLayout::kAsStored
                              : hls == "interleaved" ? HeadLayout::kInterleaved
                                                     : HeadLayout::kAuto;
    head_ = std::make_unique<OutputHead>(head_matrix(), layout);
  }
}

Transformer::~Transformer() = default;

const RawMatrix& Transformer::head_matrix() const {
  return w_->output.rows > 0 ? w_->output : w_->tok_embd;
}

const PackedWeights& Transformer::packed(int64_t layer, LinearId id) const {
  return *w_->layers[(size_t)layer].linears()[(size_t)id];
}

const Linear* Transformer::kernel_linear(int64_t layer, LinearId id) const {
  if (lin_.empty() || layer < 0 || layer >= hp().layers) return nullptr;
  return lin_[(size_t)(layer * kLinears + (int)id)].get();
}

bool Transformer::int8_acts(int64_t layer, LinearId id) const {
  return format_traits(packed(layer, id).format).act == ActType::kInt8PerToken;
}

const QuantizedActs& Transformer::quantize(int64_t layer, QuantSite site, const float* x,
                                           int64_t tokens, int64_t k) {
  int64_t align = 1;
  if (opt_.path == Path::kKernel) {
    const SiteLayers& sl = kSites[(int)site];
    for (int i = 0; i < sl.count; ++i) {
      align = std::max(align, kernel_linear(layer, (LinearId)((int)sl.first + i))->act_align());
    }
  }
  // One buffer for every site, reused (a prefill's are megabytes: fresh ones cost page faults
  // and zeroing on every call); each site's GEMV reads it before the next site fills it.
  QuantizedActs& a = buf_.acts;
  if (opt_.path == Path::kKernel) {
    // The vectorized quantizer, token rows across the pool; bit-identical to quantize_acts.
    a.tokens = tokens;
    a.k = k;
    a.k_stride = (k + align - 1) / align * align;
    a.q.resize((size_t)(tokens * a.k_stride));
    a.scale.resize((size_t)tokens);
    a.sum.resize((size_t)tokens);
    pool_.parallel_for(tokens, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        int8_t* row = a.q.data() + t * a.k_stride;
        std::memset(row + k, 0, (size_t)(a.k_stride - k));  // the zero tail kernels read
        try {
          a.scale[(size_t)t] = quantize_row_fast(x + t * k, k, row, &a.sum[(size_t)t]);
        } catch (const Error& e) {
          throw Error(std::string(e.what()) + " (token " + std::to_string(t) + ", layer " +
                      std::to_string(layer) + ", " + quant_site_name(site) + ")");
        }
      }
    });
  } else {
    a = quantize_acts(x, tokens, k, k, align);
  }
  if (hooks_.on_quant) {
    hooks_.on_quant(layer, site, a);
    if (a.tokens != tokens || a.k != k || a.k_stride % align != 0) {
      throw Error("forward hook changed the shape of the " + std::string(quant_site_name(site)) +
                  " activations of layer " + std::to_string(layer));
    }
  }
  return a;
}

const LinearGroup* Transformer::group(int64_t layer, QuantSite site) const {
  if (groups_.empty()) return nullptr;
  return groups_[(size_t)(layer * (int)QuantSite::kCount + (int)site)].get();
}

void Transformer::prefetch_site(int64_t layer, QuantSite site) const {
  // A fused site's members are consecutive row tiles of one store: one span (per part of K).
  const SiteLayers& sl = kSites[(int)site];
  const bool fused = group(layer, site) != nullptr;
  const Linear* first = kernel_linear(layer, sl.first);
  int64_t bytes = first->weight_bytes();
  for (int i = 1; fused && i < sl.count; ++i) {
    bytes += kernel_linear(layer, (LinearId)((int)sl.first + i))->weight_bytes();
  }
  pool_prefetch_next(first->weight_data(), bytes, first->weight_runs(), first->weight_run_stride());
}

bool Transformer::fused_linear(int64_t layer, QuantSite site, const QuantizedActs* a,
                               std::vector<float*> ys) {
  const LinearGroup* g = a == nullptr ? nullptr : group(layer, site);
  if (g == nullptr) return false;
  g->forward_q(*a, ys);
  return true;
}

void Transformer::linear(int64_t layer, LinearId id, const float* x, const QuantizedActs* a,
                         int64_t tokens, float* y) {
  const PackedWeights& p = packed(layer, id);
  if (opt_.path == Path::kKernel) {
    const Linear* L = kernel_linear(layer, id);
    if (a) {
      L->forward_q(*a, y, p.n);
    } else {
      L->forward(x, tokens, y, p.n);
    }
    return;
  }
  const FormatTraits& f = format_traits(p.format);
  if (p.data.empty()) {
    throw Error("reference path: blk." + std::to_string(layer) + "." + linear_name(id) +
                " has no data (a kernel-path Transformer consumed these weights)");
  }
  // Reference: the format's scalar reference, split over tokens across the pool.
  const int64_t grain = std::max<int64_t>(1, (tokens + pool_.size() - 1) / pool_.size());
  if (a) {
    std::vector<int32_t> raw((size_t)(tokens * p.n));
    pool_.parallel_for(
        tokens,
        [&](int64_t t0, int64_t t1, int) {
          QuantizedActs sub;
          sub.tokens = t1 - t0;
          sub.k = a->k;
          sub.k_stride = a->k_stride;
          sub.q.assign(a->q.begin() + t0 * a->k_stride, a->q.begin() + t1 * a->k_stride);
          sub.scale.assign(a->scale.begin() + t0, a->scale.begin() + t1);
          sub.sum.assign(a->sum.begin() + t0, a->sum.begin() + t1);
          f.ref_gemm_int(p, sub, raw.data() + t0 * p.n);
        },
        grain);
    if (hooks_.on_raw) hooks_.on_raw(layer, id, *a, raw.data());
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t j = 0; j < p.n; ++j) {
        y[t * p.n + j] = i2s_dequant(raw[(size_t)(t * p.n + j)], a->scale[(size_t)t], p.scale);
      }
    }
  } else {
    pool_.parallel_for(
        tokens,
        [&](int64_t t0, int64_t t1, int) { f.ref_gemm(p, x + t0 * p.k, t1 - t0, y + t0 * p.n); },
        grain);
  }
}

void Transformer::rmsnorm_rows(const float* x, const std::vector<float>& w, int64_t tokens,
                               int64_t n, float* y) {
  if (opt_.path == Path::kKernel) {
    pool_.parallel_for(tokens, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        rmsnorm_fast(x + t * n, w.data(), n, hp().rms_eps, y + t * n);
      }
    });
    return;
  }
  for (int64_t t = 0; t < tokens; ++t) rmsnorm_ref(x + t * n, w.data(), n, hp().rms_eps, y + t * n);
}

void Transformer::forward(const int32_t* tokens, int64_t n, int64_t logits_from, float* logits) {
  const HParams& hp = w_->hp;
  if (n <= 0) throw Error("forward: no tokens");
  if (logits_from < 0 || logits_from > n) {
    throw Error("forward: logits_from " + std::to_string(logits_from) + " outside [0, " +
                std::to_string(n) + "]");
  }
  if (pos_ + n > context()) {
    throw Error("forward: " + std::to_string(pos_) + " + " + std::to_string(n) +
                " tokens exceed the context of " + std::to_string(context()) +
                " (raise --ctx or reset)");
  }
  check_tokens(hp, tokens, n);
  // Long prompts run in micro-batches: the activation buffers scale with the batch (57 MB at
  // 512 tokens for 2B4T), while the GEMMs are already at the int8 peak from 128 tokens on.
  for (int64_t c0 = 0; c0 < n; c0 += kMicroBatch) {
    const int64_t c1 = std::min(n, c0 + kMicroBatch);
    const int64_t from = std::clamp(logits_from - c0, int64_t(0), c1 - c0);  // chunk rows
    forward_batch(tokens + c0, c1 - c0, from,
                  from < c1 - c0 ? logits + (c0 + from - logits_from) * hp.vocab : nullptr);
  }
  // Every embedding lookup faults in up to 64 KiB of the mapped table around its row (kernel
  // fault-around; MADV_RANDOM does not stop it): 140 MB of a 2B4T Q8_0 table after a few random
  // 512-token prompts, and 50-125 MB after pp512 + 3 x tg128 of `bench e2e` when decode steps
  // kept theirs. Unmap them after every call: a long prompt's whole table (one madvise over
  // the range, about 4 us for 2B4T), a few tokens' windows around their rows (about 1 us). The
  // next lookup re-faults a row from the page cache in about a microsecond.
  constexpr int64_t kRowWiseDrop = 16;  // up to this many tokens, per row
  const RawMatrix& e = w_->tok_embd;
  if (e.file_mapped) {
    if (n > kRowWiseDrop) {
      drop_mapped_pages(e.data, (size_t)e.bytes);
    } else {
      const int64_t row_bytes = e.bytes / e.rows;
      for (int64_t i = 0; i < n; ++i) {
        drop_faulted_around(e.data + tokens[i] * row_bytes, (size_t)row_bytes, e.data,
                            e.data + e.bytes);
      }
    }
  }
}

void Transformer::forward_batch(const int32_t* tokens, int64_t n, int64_t logits_from,
                                float* logits) {
  const HParams& hp = w_->hp;
  const int64_t H = hp.hidden, F = hp.ffn, D = head_dim_of(hp);
  const int64_t Q = hp.heads * D, KV = hp.kv_heads * D;
  const bool kernel = opt_.path == Path::kKernel;

  using Clock = std::chrono::steady_clock;
  ForwardProfile* prof = profile_;
  const Clock::time_point start = prof ? Clock::now() : Clock::time_point();
  const PoolStats pool_start = prof ? pool_stats() : PoolStats();
  Clock::time_point mark = start;
  // Charges the time since the previous lap to stage s (nothing without a profile).
  int64_t tail_mark = pool_start.tail_idle_ns;
  auto lap = [&](Stage s) {
    if (!prof) return;
    const Clock::time_point now = Clock::now();
    prof->seconds[(int)s] += std::chrono::duration<double>(now - mark).count();
    mark = now;
    const int64_t tail = pool_stats().tail_idle_ns;
    prof->tail_seconds[(int)s] += 1e-9 * (double)(tail - tail_mark);
    tail_mark = tail;
  };

  // Activation buffers live across calls: a 512-token prefill needs ~57 MB of them, and fresh
  // vectors would page-fault and zero all of it on every call.
  Buffers& B = buf_;
  for (auto [vec, size] : {std::pair{&B.x, n * H},
                           {&B.h, n * H},
                           {&B.tmp, n * H},
                           {&B.q, n * Q},
                           {&B.k, n * KV},
                           {&B.v, n * KV},
                           {&B.att, n * Q},
                           {&B.g, n * F},
                           {&B.u, n * F}}) {
    if ((int64_t)vec->size() < size) vec->resize((size_t)size);
  }
  std::vector<float>&x = B.x, &h = B.h, &tmp = B.tmp, &q = B.q, &k = B.k, &v = B.v, &att = B.att,
  &g = B.g, &u = B.u;
  // Decode: while the calling thread runs the small stages before each GEMV, the pool's idle
  // workers prefetch the start of their share of its weights (pool_prefetch_next).
  const bool hints = kernel && n == 1;
  auto hint_site = [&](int64_t l, QuantSite site) {
    if (hints) prefetch_site(l, site);
  };
  // ... and the calling thread, as it takes its last task of a GEMV, prefetches the cold
  // vectors the small stages after it read (pool_prefetch_at_tail).
  auto tail = [&](std::initializer_list<PrefetchSpan> spans) {
    if (hints) pool_prefetch_at_tail(spans.begin(), (int)spans.size());
  };
  auto floats = [](const float* p, int64_t n) {
    return PrefetchSpan{p, n * (int64_t)sizeof(float)};
  };
  hint_site(0, QuantSite::kQKV);
  for (int64_t t = 0; t < n; ++t) embed_row(w_->tok_embd, tokens[t], x.data() + t * H);
  lap(Stage::kEmbed);

  const AttentionShape shape{hp.heads, hp.kv_heads, D};
  // Per-token element-wise steps (RoPE and the KV store, the residual adds): a prefill's rows
  // across the pool (512 x 2560 floats per residual add); a decode step's one row runs in place
  // (parallel_for runs a single chunk on the calling thread).
  auto per_token = [&](auto&& body) {
    if (kernel) {
      pool_.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) body(t);
      });
    } else {
      for (int64_t t = 0; t < n; ++t) body(t);
    }
  };
  auto add_residual = [&] {
    per_token([&](int64_t t) {
      float* xt = x.data() + t * H;
      const float* dt = tmp.data() + t * H;
      for (int64_t i = 0; i < H; ++i) xt[i] += dt[i];
    });
  };
  for (int64_t l = 0; l < hp.layers; ++l) {
    const LayerWeights& L = w_->layers[(size_t)l];
    // Attention block.
    rmsnorm_rows(x.data(), L.attn_norm, n, H, h.data());
    lap(Stage::kNorm);
    {
      const bool i8 = int8_acts(l, LinearId::kQ);
      const QuantizedActs* a = i8 ? &quantize(l, QuantSite::kQKV, h.data(), n, H) : nullptr;
      lap(Stage::kQuantize);
      if (hints) {
        tail({floats(rope_.cos_row(pos_), D / 2), floats(rope_.sin_row(pos_), D / 2),
              floats(L.attn_sub_norm.data(), Q)});
      }
      if (!fused_linear(l, QuantSite::kQKV, a, {q.data(), k.data(), v.data()})) {
        linear(l, LinearId::kQ, h.data(), a, n, q.data());
        linear(l, LinearId::kK, h.data(), a, n, k.data());
        linear(l, LinearId::kV, h.data(), a, n, v.data());
      }
      hint_site(l, QuantSite::kO);
      lap(Stage::kQkv);
    }
    per_token([&](int64_t t) {
      apply_rope(q.data() + t * Q, hp.heads, pos_ + t, rope_);
      apply_rope(k.data() + t * KV, hp.kv_heads, pos_ + t, rope_);
      cache_.store(l, pos_ + t, k.data() + t * KV, v.data() + t * KV);
    });
    lap(Stage::kRopeCache);
    if (kernel) {
      attention_fast(q.data(), n, pos_, shape, cache_, l, att.data(), pool_);
    } else {
      attention_ref(q.data(), n, pos_, shape, cache_, l, att.data(), &pool_);
    }
    lap(Stage::kAttention);
    rmsnorm_rows(att.data(), L.attn_sub_norm, n, Q, att.data());
    lap(Stage::kNorm);
    {
      const bool i8 = int8_acts(l, LinearId::kO);
      const QuantizedActs* a = i8 ? &quantize(l, QuantSite::kO, att.data(), n, Q) : nullptr;
      lap(Stage::kQuantize);
      tail({floats(x.data(), H), floats(L.ffn_norm.data(), H)});
      linear(l, LinearId::kO, att.data(), a, n, tmp.data());
      hint_site(l, QuantSite::kGateUp);
      lap(Stage::kO);
    }
    add_residual();
    lap(Stage::kResidual);
    // Feed-forward block.
    rmsnorm_rows(x.data(), L.ffn_norm, n, H, h.data());
    lap(Stage::kNorm);
    {
      const bool i8 = int8_acts(l, LinearId::kGate);
      const QuantizedActs* a = i8 ? &quantize(l, QuantSite::kGateUp, h.data(), n, H) : nullptr;
      lap(Stage::kQuantize);
      tail({floats(L.ffn_sub_norm.data(), F)});
      if (!fused_linear(l, QuantSite::kGateUp, a, {g.data(), u.data()})) {
        linear(l, LinearId::kGate, h.data(), a, n, g.data());
        linear(l, LinearId::kUp, h.data(), a, n, u.data());
      }
      hint_site(l, QuantSite::kDown);
      lap(Stage::kGateUp);
    }
    if (kernel) {
      // relu2 and the sub-norm fused per token row while it is in cache, across the pool.
      pool_.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
          float* gt = g.data() + t * F;
          relu2_gate(gt, u.data() + t * F, F, gt);
          rmsnorm_fast(gt, L.ffn_sub_norm.data(), F, hp.rms_eps, gt);
        }
      });
      lap(Stage::kFfnAct);
    } else {
      relu2_gate(g.data(), u.data(), n * F, g.data());
      lap(Stage::kFfnAct);
      rmsnorm_rows(g.data(), L.ffn_sub_norm, n, F, g.data());
      lap(Stage::kNorm);
    }
    {
      const bool i8 = int8_acts(l, LinearId::kDown);
      const QuantizedActs* a = i8 ? &quantize(l, QuantSite::kDown, g.data(), n, F) : nullptr;
      lap(Stage::kQuantize);
      tail({floats(x.data(), H), l + 1 < hp.layers
                                     ? floats(w_->layers[(size_t)l + 1].attn_norm.data(), H)
                                     : floats(w_->output_norm.data(), H)});
      linear(l, LinearId::kDown, g.data(), a, n, tmp.data());
      if (l + 1 < hp.layers) {
        hint_site(l + 1, QuantSite::kQKV);
      } else if (hints && n > logits_from) {
        pool_prefetch_next(head_->weight_data(), head_->weight_bytes());
      }
      lap(Stage::kDown);
    }
    add_residual();
    lap(Stage::kResidual);
  }
  pos_ += n;

  const int64_t m = n - logits_from;
  if (m > 0) {
    rmsnorm_rows(x.data() + logits_from * H, w_->output_norm, m, H, h.data());
    lap(Stage::kNorm);
    if (kernel) {
      head_->forward(h.data(), m, H, logits, hp.vocab, pool_);
      hint_site(0, QuantSite::kQKV);  // the next token's first GEMV
    } else {
      head_reference(head_matrix(), h.data(), m, H, logits, hp.vocab, &pool_);
    }
    lap(Stage::kHead);
  }
  if (prof) {
    prof->calls += 1;
    prof->tokens += n;
    prof->total_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    const PoolStats end = pool_stats();
    prof->pool_loops += end.loops - pool_start.loops;
    prof->idle_prefetch_bytes += end.idle_prefetch_bytes - pool_start.idle_prefetch_bytes;
  }
}

std::vector<float> Transformer::forward_last(const std::vector<int32_t>& tokens) {
  std::vector<float> logits((size_t)hp().vocab);
  forward(tokens.data(), (int64_t)tokens.size(), (int64_t)tokens.size() - 1, logits.data());
  return logits;
}

int64_t Transformer::bytes_per_token(int64_t ctx) const {
  const HParams& hp = w_->hp;
  int64_t b = 0;
  for (int64_t l = 0; l < hp.layers; ++l) {
    for (int i = 0; i < kLinears; ++i) {
      const Linear* L = kernel_linear(l, (LinearId)i);
      b += L ? L->weight_bytes() : (int64_t)packed(l, (LinearId)i).data.size();
    }
  }
  const RawMatrix& hm = head_matrix();
  b += head_ ? head_->weight_bytes() : hm.bytes;
  b += w_->tok_embd.bytes / std::max<int64_t>(1, w_->tok_embd.rows);
  b += 2 * hp.layers * hp.kv_heads * head_dim_of(hp) * ctx * cache_.elem_bytes();
  return b;
}

std::vector<ByteSpan> Transformer::weight_spans() const {
  std::vector<ByteSpan> v;
  if (lin_.empty()) return v;
  for (const auto& L : lin_) {
    const int64_t runs = L->weight_runs(), run = L->weight_bytes() / runs;
    for (int64_t i = 0; i < runs; ++i) {
      v.push_back({L->weight_data() + i * L->weight_run_stride(), run});
    }
  }
  v.push_back({head_->weight_data(), head_->weight_bytes()});
  return v;
}

std::array<int64_t, (size_t)Stage::kCount> Transformer::stage_weight_bytes() const {
  std::array<int64_t, (size_t)Stage::kCount> b{};
  if (lin_.empty()) return b;
  for (int64_t l = 0; l < hp().layers; ++l) {
    for (const SiteLayers& site : kSites) {
      for (int m = 0; m < site.count; ++m) {
        b[(size_t)site.stage] += kernel_linear(l, (LinearId)((int)site.first + m))->weight_bytes();
      }
    }
  }
  b[(size_t)Stage::kHead] = head_->weight_bytes();
  return b;
}

int64_t Transformer::extra_bytes() const {
  int64_t b = cache_.bytes();
  for (const auto& L : lin_) b += L->weight_bytes();
  if (head_) b += head_->owned_bytes();
  return b;
}

std::string Transformer::describe() const {
  std::string s;
  if (lin_.empty()) return "reference path (scalar format references, double accumulation)";
  for (int i = 0; i < kLinears; ++i) {
    const Linear* L = kernel_linear(0, (LinearId)i);
    s += std::string(linear_name((LinearId)i)) + " " + format_traits(L->format()).name + " " +
         std::to_string(L->n()) + "x" + std::to_string(L->k()) + ": tg " + L->variant_for(1) +
         ", pp " + L->variant_for(512) + "\n";
  }
  for (int site = 0; site < (int)QuantSite::kCount; ++site) {
    const LinearGroup* g = group(0, (QuantSite)site);
    if (g == nullptr) continue;
    s += std::string(quant_site_name((QuantSite)site)) + " fused i2_s " + std::to_string(g->n()) +
         "x" + std::to_string(g->k()) + ": tg " + g->variant_for(1) + ", pp " +
         g->variant_for(512) + " (one call)\n";
  }
  s += "head: " + head_->describe() + "\n";
  return s;
}

}  // namespace tritune
