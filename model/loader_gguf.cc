// GGUF -> ModelWeights (bitnet.cpp and llama.cpp BitNet files). See loader.h for what each
// stored type becomes.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/i2s.h"
#include "model/ggml_types.h"
#include "model/loader.h"
#include "model/loader_internal.h"

namespace tritune {

namespace {

using loader_detail::count_conversion;
using loader_detail::dims_str;
using loader_detail::note;
using loader_detail::with_context;

bool is_head_type(uint32_t t) {
  return t == ggml::kF32 || t == ggml::kF16 || t == ggml::kBF16 || t == ggml::kQ8_0 ||
         t == ggml::kQ6_K;
}

class GgufLoader {
 public:
  GgufLoader(std::shared_ptr<const gguf::File> f, const LoadOptions& opt, LoadReport& r)
      : f_(std::move(f)), path_(f_->path()), opt_(opt), r_(r) {}

  ModelWeights load() {
    r_.source = "GGUF v" + std::to_string(f_->version());
    ModelWeights m;
    m.path = path_;
    m.name = f_->get_string("general.name", "");
    m.keepalive = std::const_pointer_cast<MappedFile>(f_->bytes());
    m.file_bytes = (int64_t)f_->bytes()->size();
    read_hparams(m.hp);
    if (opt_.load_tokenizer) read_tokenizer(m);

    m.tok_embd = raw_matrix("token_embd.weight", m.hp.vocab, m.hp.hidden);
    if (f_->tensor("output.weight")) {
      m.output = raw_matrix("output.weight", m.hp.vocab, m.hp.hidden);
    }
    m.output_norm = norm("output_norm.weight", m.hp.hidden);

    const int64_t H = m.hp.hidden, F = m.hp.ffn;
    const int64_t q_out = m.hp.heads * m.hp.head_dim, kv_out = m.hp.kv_heads * m.hp.head_dim;
    // Each layer has 11 tensors: a file claiming more layers than that allows is refused
    // before the layer vector is sized from it.
    if (m.hp.layers * 11 > (int64_t)f_->tensors().size()) {
      const std::string first_missing = first_missing_layer_tensor(m.hp.layers);
      throw Error(path_ + ": block_count is " + std::to_string(m.hp.layers) + " but the file has " +
                  std::to_string(f_->tensors().size()) + " tensors" +
                  (first_missing.empty() ? "" : "; tensor '" + first_missing + "' is missing"));
    }
    require_linear_memory(m.hp.layers);
    // Blocks beyond block_count are not read: say so, a wrong block_count silently truncates.
    int64_t beyond = 0, first_beyond = -1;
    for (const auto& t : f_->tensors()) {
      if (t.name.rfind("blk.", 0) != 0) continue;
      const int64_t b = std::strtoll(t.name.c_str() + 4, nullptr, 10);
      if (b >= m.hp.layers) {
        ++beyond;
        if (first_beyond < 0 || b < first_beyond) first_beyond = b;
      }
    }
    if (beyond > 0) {
      note(r_, std::to_string(beyond) + " tensors of blocks from blk." +
                   std::to_string(first_beyond) + " on are ignored: block_count is " +
                   std::to_string(m.hp.layers));
    }
    m.layers.resize((size_t)m.hp.layers);
    for (int64_t i = 0; i < m.hp.layers; ++i) {
      LayerWeights& L = m.layers[(size_t)i];
      L.attn_norm = norm(gguf_layer_tensor(i, "attn_norm"), H);
      L.attn_sub_norm = norm(gguf_layer_tensor(i, "attn_sub_norm"), q_out);
      L.ffn_norm = norm(gguf_layer_tensor(i, "ffn_norm"), H);
      L.ffn_sub_norm = norm(gguf_layer_tensor(i, "ffn_sub_norm"), F);
      L.wq = linear(gguf_layer_tensor(i, "attn_q"), q_out, H);
      L.wk = linear(gguf_layer_tensor(i, "attn_k"), kv_out, H);
      L.wv = linear(gguf_layer_tensor(i, "attn_v"), kv_out, H);
      L.wo = linear(gguf_layer_tensor(i, "attn_output"), H, q_out);
      L.w_gate = linear(gguf_layer_tensor(i, "ffn_gate"), F, H);
      L.w_up = linear(gguf_layer_tensor(i, "ffn_up"), F, H);
      L.w_down = linear(gguf_layer_tensor(i, "ffn_down"), H, F);
    }
    return m;
  }

 private:
  std::string key(const std::string& k) const { return arch_ + "." + k; }

  void read_hparams(HParams& hp) {
    arch_ = f_->get_string("general.architecture");
    bool known = false;
    std::string names;
    for (const auto& a : gguf_architectures()) {
      known = known || arch_ == a;
      names += (names.empty() ? "" : ", ") + a;
    }
    if (!known) {
      throw Error(path_ + ": general.architecture is '" + arch_ +
                  "'; tritune runs BitNet b1.58 models (" + names + ")");
    }
    hp.arch = arch_;
    hp.hidden = f_->get_int(key("embedding_length"));
    hp.ffn = f_->get_int(key("feed_forward_length"));
    hp.layers = f_->get_int(key("block_count"));
    hp.heads = f_->get_int(key("attention.head_count"));
    hp.kv_heads = f_->get_int(key("attention.head_count_kv"), hp.heads);
    if (!f_->find(key("context_length"))) {
      note(r_, key("context_length") + " missing: using " + std::to_string(hp.context));
    }
    hp.context = f_->get_int(key("context_length"), hp.context);
    if (!f_->find(key("attention.layer_norm_rms_epsilon"))) {
      note(r_, key("attention.layer_norm_rms_epsilon") + " missing: using 1e-5");
    }
    hp.rms_eps = (float)f_->get_float(key("attention.layer_norm_rms_epsilon"), 1e-5);
    if (!f_->find(key("rope.freq_base"))) {
      note(r_, key("rope.freq_base") + " missing: using 10000 (llama.cpp's default)");
    }
    hp.rope_theta = (float)f_->get_float(key("rope.freq_base"), 10000.0);
    if (hp.heads <= 0) {
      throw Error(path_ + ": key '" + key("attention.head_count") + "' is " +
                  std::to_string(hp.heads));
    }
    hp.head_dim = f_->get_int(key("attention.key_length"), hp.hidden / hp.heads);
    const int64_t rot = f_->get_int(key("rope.dimension_count"), hp.head_dim);
    if (rot != hp.head_dim) {
      throw Error(path_ + ": key '" + key("rope.dimension_count") + "' is " + std::to_string(rot) +
                  " but the head dimension is " + std::to_string(hp.head_dim) +
                  " (partial rotary embeddings are not part of BitNet b1.58)");
    }
    // Vocabulary: the embedding's row count is the truth; other sources must agree.
    const gguf::TensorInfo* emb = f_->tensor("token_embd.weight");
    if (!emb) throw Error(path_ + ": tensor 'token_embd.weight' is missing");
    if (emb->ne.size() != 2) {
      throw Error(path_ + ": tensor 'token_embd.weight' has shape " + emb->shape_str() +
                  ", expected [hidden, vocab]");
    }
    hp.vocab = emb->ne[1];
    const int64_t declared = f_->get_int(key("vocab_size"), hp.vocab);
    if (declared != hp.vocab) {
      throw Error(path_ + ": key '" + key("vocab_size") + "' is " + std::to_string(declared) +
                  " but token_embd.weight has " + std::to_string(hp.vocab) + " rows");
    }
    hp.activation = "relu2";
    for (const auto& [k, v] : f_->metadata()) {
      const bool act_key = k.size() >= 10 && (k.compare(k.size() - 10, 10, "hidden_act") == 0 ||
                                              k.find("activation") != std::string::npos);
      if (act_key && v.type == gguf::ValueType::kString && v.s != "relu2" &&
          v.s != "relu_squared") {
        note(r_, "key '" + k + "' says '" + v.s +
                     "'; running relu2 (BitNet b1.58 is trained "
                     "with ReLU^2; llama.cpp's SiLU default for such files is a known bug)");
      }
    }
    loader_detail::validate_hparams(hp, path_);
  }

  void read_tokenizer(ModelWeights& m) {
    if (!f_->find("tokenizer.ggml.tokens")) {
      note(r_, "no tokenizer metadata (tokenizer.ggml.tokens) in the file");
      return;
    }
    // A vocabulary tritune cannot tokenize with is left out (with a note), not misread: the
    // weights still load for the commands that take token ids (bench, validate, run --tokens).
    const std::string model = f_->get_string("tokenizer.ggml.model", "gpt2");
    if (model != "gpt2") {
      note(r_, "tokenizer.ggml.model is '" + model +
                   "': tritune tokenizes byte-level BPE vocabularies ('gpt2', as LLaMA-3 and "
                   "BitNet b1.58 2B4T use), so this one is not loaded; pass token ids with --tokens");
      return;
    }
    TokenizerData& tok = m.tokenizer;
    tok.tokens = f_->get_strings("tokenizer.ggml.tokens");
    if ((int64_t)tok.tokens.size() != m.hp.vocab) {
      throw Error(path_ + ": tokenizer.ggml.tokens has " + std::to_string(tok.tokens.size()) +
                  " tokens but token_embd.weight has " + std::to_string(m.hp.vocab) + " rows");
    }
    // One id per token text: with two, encoding picks one and the model's special-token ids
    // (end of turn, ...) may name the other.
    std::unordered_map<std::string, size_t> seen;
    seen.reserve(tok.tokens.size());
    for (size_t i = 0; i < tok.tokens.size(); ++i) {
      const auto [it, fresh] = seen.emplace(tok.tokens[i], i);
      if (!fresh) {
        note(r_, "tokenizer.ggml.tokens has \"" + tok.tokens[i] + "\" twice (ids " +
                     std::to_string(it->second) + " and " + std::to_string(i) +
                     "): the vocabulary is not loaded; pass token ids with --tokens");
        tok = TokenizerData();
        return;
      }
    }
    if (f_->find("tokenizer.ggml.token_type")) {
      const std::vector<int64_t> types = f_->get_ints("tokenizer.ggml.token_type");
      if (types.size() != tok.tokens.size()) {
        throw Error(path_ + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                    " entries for " + std::to_string(tok.tokens.size()) + " tokens");
      }
      tok.token_types.reserve(types.size());
      for (size_t i = 0; i < types.size(); ++i) {
        if (types[i] < 0 || types[i] > 6) {
          throw Error(path_ + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] is " +
                      std::to_string(types[i]) + " (valid: 0..6)");
        }
        tok.token_types.push_back((int32_t)types[i]);
      }
    }
    if (f_->find("tokenizer.ggml.merges")) tok.merges = f_->get_strings("tokenizer.ggml.merges");
    auto id = [&](const char* k) -> int32_t {
      const int64_t v = f_->get_int(k, -1);
      if (v < -1 || v >= m.hp.vocab) {
        throw Error(path_ + ": key '" + std::string(k) + "' is " + std::to_string(v) +
                    ", outside the vocabulary of " + std::to_string(m.hp.vocab));
      }
      return (int32_t)v;
    };
    tok.bos = id("tokenizer.ggml.bos_token_id");
    tok.eos = id("tokenizer.ggml.eos_token_id");
    tok.eot = id("tokenizer.ggml.eot_token_id");
    // Missing or empty: TokenizerData's default pre-tokenizer (LLaMA-3's).
    const std::string pre = f_->get_string("tokenizer.ggml.pre", "");
    if (!pre.empty()) tok.pre = pre;
    tok.chat_template = f_->get_string("tokenizer.chat_template", "");
    tok.add_bos = f_->get_bool("tokenizer.ggml.add_bos_token", true);
  }

  std::string first_missing_layer_tensor(int64_t layers) const {
    static const char* const kNames[] = {"attn_norm",   "attn_q",        "attn_k",      "attn_v",
                                         "attn_output", "attn_sub_norm", "ffn_norm",    "ffn_gate",
                                         "ffn_up",      "ffn_down",      "ffn_sub_norm"};
    for (int64_t i = 0; i < layers; ++i) {
      for (const char* n : kNames) {
        const std::string name = gguf_layer_tensor(i, n);
        if (!f_->tensor(name)) return name;
      }
    }
    return "";
  }

  const gguf::TensorInfo& need(const std::string& name, const std::vector<int64_t>& ne) {
    const gguf::TensorInfo* t = f_->tensor(name);
    if (!t) {
      throw Error(path_ + ": tensor '" + name + "' is missing (" + arch_ + " model, " +
                  std::to_string(f_->tensors().size()) + " tensors in the file)");
    }
    if (t->ne != ne) {
      throw Error(path_ + ": tensor '" + name + "' has shape " + t->shape_str() + ", expected " +
                  dims_str(ne) + " (from the hyper-parameters)");
    }
    return *t;
  }

  void release(const gguf::TensorInfo& t) {
    if (opt_.release_pages) f_->bytes()->release(t.file_offset, (size_t)t.bytes);
  }

  std::vector<float> dequantized(const gguf::TensorInfo& t, int64_t rows, int64_t cols) {
    std::vector<float> out((size_t)(rows * cols));
    with_context(path_ + ": tensor '" + t.name + "'",
                 [&] { ggml::dequantize_rows(t.type, t.data, cols, rows, 0, rows, out.data()); });
    return out;
  }

  std::vector<float> norm(const std::string& name, int64_t n) {
    const gguf::TensorInfo& t = need(name, {n});
    std::vector<float> v = dequantized(t, 1, n);
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[(size_t)i])) {
        throw Error(path_ + ": tensor '" + name + "' element " + std::to_string(i) +
                    " is not finite");
      }
    }
    return v;
  }

  RawMatrix raw_matrix(const std::string& name, int64_t rows, int64_t cols) {
    const gguf::TensorInfo& t = need(name, {cols, rows});
    RawMatrix m;
    m.name = name;
    m.rows = rows;
    m.cols = cols;
    if (is_head_type(t.type)) {
      m.ggml_type = t.type;
      m.data = t.data;
      m.bytes = t.bytes;
      m.file_mapped = f_->bytes()->is_mapped();
      return m;
    }
    if (!ggml::can_dequantize(t.type)) {
      throw Error(path_ + ": tensor '" + name + "' has type " + ggml::type_name(t.type) +
                  ", which tritune cannot read (readable: " + ggml::readable_type_names() + ")");
    }
    note(r_, name + ": " + ggml::type_name(t.type) + " converted to F32 at load");
    const std::vector<float> f = dequantized(t, rows, cols);
    m.ggml_type = ggml::kF32;
    m.owned.resize(f.size() * 4);
    std::memcpy(m.owned.data(), f.data(), m.owned.size());
    m.data = m.owned.data();
    m.bytes = (int64_t)m.owned.size();
    return m;
  }

  // Optional llama.cpp per-tensor scale ("blk.N.attn_q.scale"), multiplied into the weights.
  float extra_scale(const std::string& weight_name) {
    const std::string sname = weight_name.substr(0, weight_name.size() - 7) + ".scale";
    const gguf::TensorInfo* s = f_->tensor(sname);
    if (!s) return 1.0f;
    if (s->elements() != 1) {
      throw Error(path_ + ": tensor '" + sname + "' has shape " + s->shape_str() +
                  ", expected one value");
    }
    const float v = dequantized(*s, 1, 1)[0];
    if (!std::isfinite(v)) throw Error(path_ + ": tensor '" + sname + "' is not finite");
    return v;
  }

  // The linear layers are copied out of the mapping (and converted): refuse, before the first
  // copy, a model whose layers will not fit in the available memory, instead of being killed by
  // the OOM killer half-way through. From the tensor table (already checked against the file
  // size): each layer in the format it loads as, plus one float copy of a layer that is
  // converted from floats.
  void require_linear_memory(int64_t layers) {
    double bytes = 0, transient = 0;
    int64_t count = 0;
    static const char* const kLinears[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                           "ffn_gate", "ffn_up", "ffn_down"};
    for (int64_t i = 0; i < layers; ++i) {
      for (const char* kind : kLinears) {
        const gguf::TensorInfo* t = f_->tensor(gguf_layer_tensor(i, kind));
        if (t == nullptr || t->ne.size() != 2) continue;  // refused with its name later
        const double weights = (double)t->ne[0] * (double)t->ne[1];
        // Read as stored (I2_S; F16/F32 kept as the baseline), converted to I2_S (TQ1_0, TQ2_0,
        // BF16, ternarized floats: 2 bits a weight and the 32-byte tail), or to f32.
        const bool float_type = t->type == ggml::kF32 || t->type == ggml::kF16;
        const bool as_stored = t->type == ggml::kI2_S || (float_type && !opt_.ternarize_float);
        const bool to_i2s = t->type == ggml::kTQ1_0 || t->type == ggml::kTQ2_0 ||
                            t->type == ggml::kBF16 || float_type;
        bytes += as_stored ? (double)t->bytes : to_i2s ? weights / 4.0 + 32.0 : weights * 4.0;
        if (!as_stored) transient = std::max(transient, weights * 4.0);
        ++count;
      }
    }
    loader_detail::require_linear_memory(bytes + transient, count, path_, opt_);
  }

  PackedWeights linear(const std::string& name, int64_t n, int64_t k) {
    const gguf::TensorInfo& t = need(name, {k, n});
    const std::string what = path_ + ": tensor '" + name + "'";
    const float mult = extra_scale(name);
    const std::string from = ggml::type_name(t.type);
    PackedWeights p;
    switch (t.type) {
      case ggml::kI2_S:
        p = i2s(t, n, k, what, mult);
        break;
      case ggml::kTQ1_0:
      case ggml::kTQ2_0:
        p = tq(t, n, k, what, mult);
        break;
      case ggml::kF32:
      case ggml::kF16:
        if (!opt_.ternarize_float && mult == 1.0f) {
          p.format = t.type == ggml::kF32 ? Format::kF32 : Format::kF16;
          p.n = n;
          p.k = k;
          p.data.assign(t.data, t.data + t.bytes);
        } else {
          std::vector<float> w = dequantized(t, n, k);
          for (float& x : w) x *= mult;
          p = opt_.ternarize_float ? loader_detail::ternarized_layer(w, n, k, what, r_)
                                   : loader_detail::f32_layer(std::move(w), n, k);
        }
        break;
      case ggml::kBF16: {
        std::vector<float> w = dequantized(t, n, k);
        for (float& x : w) x *= mult;
        p = loader_detail::ternarized_layer(w, n, k, what, r_);
        note(r_, "BF16 linear layers ternarized with absmean (BitNet's weight quantizer)");
        break;
      }
      default: {
        if (!ggml::can_dequantize(t.type)) {
          throw Error(what + " has type " + from + ", which tritune cannot read (readable: " +
                      ggml::readable_type_names() + ")");
        }
        std::vector<float> w = dequantized(t, n, k);
        for (float& x : w) x *= mult;
        p = loader_detail::f32_layer(std::move(w), n, k);
        note(r_, from + " linear layers dequantized to f32 (not a kernel format)");
      }
    }
    release(t);
    count_conversion(r_, from, format_traits(p.format).name);
    return p;
  }

  PackedWeights i2s(const gguf::TensorInfo& t, int64_t n, int64_t k, const std::string& what,
                    float mult) {
    if (k % kI2SBlock != 0) {
      throw Error(what + ": I2_S needs rows that are a multiple of 128 values, this one has " +
                  std::to_string(k));
    }
    const int64_t code_bytes = n * k / 4;
    // Code 3 (both bits of a 2-bit field set) is never written by a packer: find it 8 bytes at
    // a time, then name the first offending byte.
    int64_t i = 0;
    for (; i + 8 <= code_bytes; i += 8) {
      uint64_t w;
      std::memcpy(&w, t.data + i, 8);
      if ((w & (w >> 1) & 0x5555555555555555ull) != 0) break;
    }
    for (; i < code_bytes; ++i) {
      const uint8_t b = t.data[i];
      if ((b & (b >> 1) & 0x55) != 0) {
        throw Error(what + ": byte " + std::to_string(i) + " (file offset " +
                    std::to_string(t.file_offset + (uint64_t)i) +
                    ") holds the unused code 3: the I2_S data is corrupt");
      }
    }
    float scale;
    std::memcpy(&scale, t.data + code_bytes, 4);
    if (!std::isfinite(scale)) {
      throw Error(what + ": I2_S scale (file offset " +
                  std::to_string(t.file_offset + (uint64_t)code_bytes) + ") is not finite");
    }
    scale *= mult;
    PackedWeights p;
    p.format = Format::kI2S;
    p.n = n;
    p.k = k;
    p.scale = scale;
    p.data.assign(t.data, t.data + t.bytes);
    std::memcpy(p.data.data() + code_bytes, &scale, 4);  // keep the tail consistent
    return p;
  }

  PackedWeights tq(const gguf::TensorInfo& t, int64_t n, int64_t k, const std::string& what,
                   float mult) {
    const int64_t count = n * k;
    std::vector<int8_t> trits((size_t)count);
    std::vector<uint16_t> d((size_t)(count / 256));
    with_context(what, [&] {
      if (t.type == ggml::kTQ1_0) {
        ggml::unpack_tq1_0(t.data, count, trits.data(), d.data());
      } else {
        ggml::unpack_tq2_0(t.data, count, trits.data(), d.data());
      }
    });
    // One scale for the tensor: every block holding a non-zero value must carry the same f16
    // scale (llama.cpp's quantizer writes max|W| per block = the tensor's scale), give or take
    // one f16 step; all-zero blocks and d = 0 blocks contribute nothing.
    int ref = -1;
    bool uniform = true;
    for (size_t b = 0; b < d.size(); ++b) {
      if (!std::isfinite(half_to_float(d[b]))) {
        throw Error(what + ": block " + std::to_string(b) + " has a non-finite scale");
      }
      bool any = false;
      for (int j = 0; j < 256 && !any; ++j) any = trits[b * 256 + j] != 0;
      if (!any) continue;
      if (d[b] == 0 || d[b] == 0x8000) {
        for (int j = 0; j < 256; ++j) trits[b * 256 + j] = 0;
        continue;
      }
      if (ref < 0) {
        ref = (int)b;
      } else {
        const uint16_t a = d[(size_t)ref], c = d[b];
        const bool same_sign = (a & 0x8000) == (c & 0x8000);
        const int diff = (int)(a & 0x7fff) - (int)(c & 0x7fff);
        if (!same_sign || diff > 1 || diff < -1) uniform = false;
      }
    }
    if (!uniform) {
      note(r_, what + ": " + ggml::type_name(t.type) +
                   " block scales differ (not one tensor scale): kept as f32");
      std::vector<float> w = dequantized(t, n, k);
      for (float& x : w) x *= mult;
      return loader_detail::f32_layer(std::move(w), n, k);
    }
    const float scale = (ref < 0 ? 0.0f : half_to_float(d[(size_t)ref])) * mult;
    return loader_detail::ternary_layer(trits, n, k, scale, what, r_);
  }

  std::shared_ptr<const gguf::File> f_;
  std::string path_;
  const LoadOptions& opt_;
  LoadReport& r_;
  std::string arch_;
};

}  // namespace

ModelWeights load_gguf(std::shared_ptr<const gguf::File> file, const LoadOptions& opt,
                       LoadReport* report) {
  LoadReport local;
  return GgufLoader(std::move(file), opt, report ? *report : local).load();
}

}  // namespace tritune
