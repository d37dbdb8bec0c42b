// Hugging Face BitNet checkpoint (config.json + safetensors) -> ModelWeights.
//
// Packed layout (transformers integrations/bitnet.py, peers.md §3.2): each linear stores
// `weight` uint8 [out/4, in] and `weight_scale` [1]. With R = out/4, bits 2i..2i+1 of
// packed[r, c] hold W[i*R + r, c] + 1, and W = t / weight_scale (the HF scale DIVIDES). BF16
// (or F16/F32) master checkpoints store `weight` [out, in] as floats: ternarized with absmean.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "kernels/error.h"
#include "kernels/json.h"
#include "model/ggml_types.h"
#include "model/loader.h"
#include "model/loader_internal.h"
#include "model/tokenizer.h"

namespace tritune {

namespace {

using loader_detail::count_conversion;
using loader_detail::dims_str;
using loader_detail::note;
using loader_detail::with_context;

bool file_exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_text(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0 || (size_t)size > limit) {
    throw Error(path + ": " + std::to_string((long long)size) + " bytes is larger than the " +
                std::to_string(limit) + "-byte limit for a JSON file");
  }
  in.seekg(0);
  std::string s((size_t)size, '\0');
  in.read(&s[0], size);
  return s;
}

std::string dirname_of(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

class HfLoader {
 public:
  HfLoader(const std::vector<std::shared_ptr<const safetensors::File>>& shards,
           const std::string& config_json, const std::string& config_name, const LoadOptions& opt,
           LoadReport& r)
      : shards_(shards), config_name_(config_name), opt_(opt), r_(r) {
    cfg_ = json::parse(config_json, config_name);
    if (!cfg_.is_object()) throw Error(config_name + ": config is not a JSON object");
    for (size_t s = 0; s < shards_.size(); ++s) {
      for (const auto& t : shards_[s]->tensors()) {
        if (index_.count(t.name)) {
          throw Error(shards_[s]->path() + ": tensor '" + t.name + "' also in " +
                      shards_[index_[t.name].first]->path());
        }
        index_[t.name] = {s, &t};
      }
    }
    name_ = shards_.empty() ? config_name : shards_[0]->path();
  }

  ModelWeights load() {
    ModelWeights m;
    m.path = name_;
    // The checkpoint's name: config.json's _name_or_path, else its directory's name.
    const json::Value* id = cfg_.is_object() ? cfg_.find("_name_or_path") : nullptr;
    // A hub id ("org/name") as it is; a local path (often a training directory) by its last part.
    const std::string id_text = id && id->is_string() ? id->as_string() : "";
    const bool local =
        !id_text.empty() && (id_text[0] == '/' || id_text[0] == '.' || id_text[0] == '~');
    const std::string nop =
        local ? last_path_component(id_text) : without_trailing_slashes(id_text);
    m.name = !nop.empty() && nop != "." && nop != "~"
                 ? nop
                 : last_path_component(dirname_of(config_name_));
    auto keep = std::make_shared<std::vector<std::shared_ptr<const safetensors::File>>>(shards_);
    m.keepalive = keep;
    for (const auto& s : shards_) m.file_bytes += (int64_t)s->bytes()->size();
    read_hparams(m.hp);
    const HParams& hp = m.hp;
    const bool packed = is_packed();
    r_.source = std::string("safetensors (") + (packed ? "HF packed" : "HF float masters") + ", " +
                std::to_string(shards_.size()) + " file" + (shards_.size() == 1 ? "" : "s") + ")";

    m.tok_embd = raw_matrix("model.embed_tokens.weight", hp.vocab, hp.hidden);
    const bool tie = cfg_bool("tie_word_embeddings", false);
    if (index_.count("lm_head.weight") && !tie) {
      m.output = raw_matrix("lm_head.weight", hp.vocab, hp.hidden);
    } else if (!tie) {
      note(r_, "lm_head.weight missing: output tied to the embedding");
    }
    m.output_norm = norm("model.norm.weight", hp.hidden);

    const int64_t H = hp.hidden, F = hp.ffn;
    const int64_t q_out = hp.heads * hp.head_dim, kv_out = hp.kv_heads * hp.head_dim;
    if (hp.layers * 11 > (int64_t)index_.size()) {
      throw Error(name_ + ": num_hidden_layers is " + std::to_string(hp.layers) +
                  " but the checkpoint has only " + std::to_string(index_.size()) + " tensors" +
                  missing_hint(hp.layers));
    }
    require_linear_memory(hp.layers, packed);
    m.layers.resize((size_t)hp.layers);
    for (int64_t i = 0; i < hp.layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      LayerWeights& L = m.layers[(size_t)i];
      L.attn_norm = norm(p + "input_layernorm.weight", H);
      L.attn_sub_norm = norm(p + "self_attn.attn_sub_norm.weight", q_out);
      L.ffn_norm = norm(p + "post_attention_layernorm.weight", H);
      L.ffn_sub_norm = norm(p + "mlp.ffn_sub_norm.weight", F);
      L.wq = linear(p + "self_attn.q_proj", q_out, H);
      L.wk = linear(p + "self_attn.k_proj", kv_out, H);
      L.wv = linear(p + "self_attn.v_proj", kv_out, H);
      L.wo = linear(p + "self_attn.o_proj", H, q_out);
      L.w_gate = linear(p + "mlp.gate_proj", F, H);
      L.w_up = linear(p + "mlp.up_proj", F, H);
      L.w_down = linear(p + "mlp.down_proj", H, F);
    }
    return m;
  }

 private:
  using Ref = std::pair<size_t, const safetensors::TensorInfo*>;

  // As the GGUF loader does: refuse, before the first copy, linear layers that will not fit in
  // the available memory once loaded (as I2_S; float masters also need one layer as floats while
  // it is ternarized).
  void require_linear_memory(int64_t layers, bool packed) {
    double bytes = 0, transient = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < layers; ++i) {
      for (const char* proj :
           {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
        auto it = index_.find("model.layers." + std::to_string(i) + "." + proj + ".weight");
        if (it == index_.end() || it->second.second->shape.size() != 2) continue;
        const auto& shape = it->second.second->shape;
        const double weights = (double)shape[0] * (double)shape[1] * (packed ? 4.0 : 1.0);
        bytes += weights / 4.0 + 32.0;  // I2_S: 2 bits a weight and the 32-byte tail
        transient = std::max(transient, weights * (packed ? 1.0 : 4.0));
        ++count;
      }
    }
    loader_detail::require_linear_memory(bytes + transient, count, name_, opt_);
  }

  std::string missing_hint(int64_t layers) const {
    for (int64_t i = 0; i < layers; ++i) {
      const std::string n = "model.layers." + std::to_string(i) + ".self_attn.q_proj.weight";
      if (!index_.count(n)) return "; tensor '" + n + "' is missing";
    }
    return "";
  }

  const json::Value* cfg(const std::string& k) const { return cfg_.find(k); }
  int64_t cfg_int(const std::string& k) const {
    const json::Value* v = cfg(k);
    if (!v) throw Error(config_name_ + ": required key '" + k + "' is missing");
    if (!v->is_int()) throw Error(config_name_ + ": key '" + k + "' is not an integer");
    return v->as_int64();
  }
  int64_t cfg_int(const std::string& k, int64_t def) const { return cfg(k) ? cfg_int(k) : def; }
  double cfg_num(const std::string& k, double def) const {
    const json::Value* v = cfg(k);
    if (!v) return def;
    if (!v->is_number()) throw Error(config_name_ + ": key '" + k + "' is not a number");
    return v->as_double();
  }
  bool cfg_bool(const std::string& k, bool def) const {
    const json::Value* v = cfg(k);
    if (!v || v->is_null()) return def;
    if (!v->is_bool()) throw Error(config_name_ + ": key '" + k + "' is not true/false");
    return v->as_bool();
  }

  void read_hparams(HParams& hp) {
    if (const json::Value* mt = cfg("model_type")) {
      if (!mt->is_string() || mt->as_string() != "bitnet") {
        note(r_, config_name_ + ": model_type is not 'bitnet'; loading it as BitNet b1.58");
      }
    }
    hp.arch = "bitnet-b1.58";
    hp.hidden = cfg_int("hidden_size");
    hp.ffn = cfg_int("intermediate_size");
    hp.layers = cfg_int("num_hidden_layers");
    hp.heads = cfg_int("num_attention_heads");
    hp.kv_heads = cfg_int("num_key_value_heads", hp.heads);
    hp.vocab = cfg_int("vocab_size");
    hp.context = cfg_int("max_position_embeddings", hp.context);
    hp.rms_eps = (float)cfg_num("rms_norm_eps", 1e-5);
    if (!cfg("rope_theta")) note(r_, config_name_ + ": rope_theta missing: using 500000");
    hp.rope_theta = (float)cfg_num("rope_theta", 500000.0);
    if (hp.heads <= 0) throw Error(config_name_ + ": num_attention_heads must be positive");
    hp.head_dim = cfg_int("head_dim", hp.hidden / hp.heads);
    if (const json::Value* act = cfg("hidden_act")) {
      if (act->is_string() && act->as_string() != "relu2") {
        note(r_, config_name_ + ": hidden_act is '" + act->as_string() +
                     "'; running relu2 (BitNet b1.58's activation)");
      }
    }
    hp.activation = "relu2";
    loader_detail::validate_hparams(hp, config_name_);
  }

  bool is_packed() const {
    auto it = index_.find("model.layers.0.self_attn.q_proj.weight");
    return it != index_.end() && it->second.second->dtype == "U8";
  }

  const safetensors::TensorInfo& need(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) {
      throw Error(name_ + ": tensor '" + name + "' is missing from the checkpoint");
    }
    return *it->second.second;
  }

  std::string where(const safetensors::TensorInfo& t) const {
    return shards_[index_.at(t.name).first]->path() + ": tensor '" + t.name + "'";
  }

  void release(const safetensors::TensorInfo& t) {
    if (!opt_.release_pages) return;
    const auto& shard = shards_[index_.at(t.name).first];
    shard->bytes()->release(shard->data_offset() + t.begin, (size_t)t.bytes);
  }

  // Float values of a float tensor (F32/F16/BF16), any shape with `count` elements.
  std::vector<float> floats(const safetensors::TensorInfo& t) {
    const uint32_t g = safetensors::dtype_to_ggml(t.dtype);
    if (!ggml::find_type(g)) {
      throw Error(where(t) + " has dtype " + t.dtype + " (expected F32, F16 or BF16)");
    }
    const int64_t count = t.elements();
    std::vector<float> out((size_t)count);
    ggml::dequantize_rows(g, t.data, count, 1, 0, 1, out.data());
    return out;
  }

  std::vector<float> norm(const std::string& name, int64_t n) {
    const safetensors::TensorInfo& t = need(name);
    if (t.shape != std::vector<int64_t>{n}) {
      throw Error(where(t) + " has shape " + t.shape_str() + ", expected [" + std::to_string(n) +
                  "]");
    }
    std::vector<float> v = floats(t);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        throw Error(where(t) + ": element " + std::to_string(i) + " is not finite");
      }
    }
    return v;
  }

  RawMatrix raw_matrix(const std::string& name, int64_t rows, int64_t cols) {
    const safetensors::TensorInfo& t = need(name);
    if (t.shape != std::vector<int64_t>{rows, cols}) {
      throw Error(where(t) + " has shape " + t.shape_str() + ", expected " +
                  dims_str({rows, cols}) + " (vocab, hidden)");
    }
    const uint32_t g = safetensors::dtype_to_ggml(t.dtype);
    if (!ggml::find_type(g)) {
      throw Error(where(t) + " has dtype " + t.dtype + " (expected F32, F16 or BF16)");
    }
    RawMatrix m;
    m.name = name;
    m.rows = rows;
    m.cols = cols;
    m.ggml_type = g;
    m.data = t.data;
    m.bytes = t.bytes;
    // Read in place from the shard's mapping (the transformer and the re-encoder drop its
    // pages from the resident set; a copy in memory, as tests build, is not mapped).
    m.file_mapped = shards_[index_.at(t.name).first]->bytes()->is_mapped();
    return m;
  }

  PackedWeights linear(const std::string& prefix, int64_t n, int64_t k) {
    const safetensors::TensorInfo& t = need(prefix + ".weight");
    const std::string what = where(t);
    PackedWeights p;
    if (t.dtype == "U8") {
      p = packed(t, prefix, n, k, what);
      count_conversion(r_, "HF packed U8", format_traits(p.format).name);
    } else {
      if (t.shape != std::vector<int64_t>{n, k}) {
        throw Error(what + " has shape " + t.shape_str() + ", expected " + dims_str({n, k}) +
                    " ([out, in])");
      }
      const std::vector<float> w = with_context(what, [&] { return floats(t); });
      p = loader_detail::ternarized_layer(w, n, k, what, r_);
      count_conversion(r_, "HF " + t.dtype + " master (absmean)", format_traits(p.format).name);
    }
    release(t);
    return p;
  }

  PackedWeights packed(const safetensors::TensorInfo& t, const std::string& prefix, int64_t n,
                       int64_t k, const std::string& what) {
    if (n % 4 != 0 || t.shape != std::vector<int64_t>{n / 4, k}) {
      throw Error(what + " has shape " + t.shape_str() + ", expected " + dims_str({n / 4, k}) +
                  " (packed [out/4, in] for out=" + std::to_string(n) + ")");
    }
    const safetensors::TensorInfo& st = need(prefix + ".weight_scale");
    if (st.elements() != 1) {
      throw Error(where(st) + " has shape " + st.shape_str() + ", expected one value");
    }
    const float ws = floats(st)[0];
    if (!(ws > 0.0f) || !std::isfinite(ws)) {
      throw Error(where(st) + " is " + std::to_string(ws) +
                  " (must be positive and finite: it divides the weights)");
    }
    const int64_t R = n / 4;
    // Code 3 is never written by the packer: scan 8 bytes at a time, name the first bad byte.
    const int64_t total = R * k;
    int64_t first_bad = -1;
    for (int64_t i = 0; i + 8 <= total && first_bad < 0; i += 8) {
      uint64_t w;
      std::memcpy(&w, t.data + i, 8);
      if ((w & (w >> 1) & 0x5555555555555555ull) != 0) first_bad = i;
    }
    for (int64_t i = first_bad < 0 ? total / 8 * 8 : first_bad; i < total; ++i) {
      if ((t.data[i] & (t.data[i] >> 1) & 0x55) != 0) {
        throw Error(what + ": byte [" + std::to_string(i / k) + ", " + std::to_string(i % k) +
                    "] holds the unused code 3: the packed weights are corrupt");
      }
    }
    const float scale = 1.0f / ws;
    if (!std::isfinite(scale)) {
      throw Error(where(st) + " is " + std::to_string(ws) + ": its inverse is not finite");
    }
    if (k % 128 == 0) return transcode_to_i2s(t.data, n, k, scale);
    std::vector<int8_t> tv((size_t)(n * k));  // K does not fit I2_S: go through the values
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* row = t.data + r * k;
      for (int64_t c = 0; c < k; ++c) {
        for (int i = 0; i < 4; ++i) {
          tv[(size_t)((i * R + r) * k + c)] = (int8_t)(((row[c] >> (2 * i)) & 3) - 1);
        }
      }
    }
    return loader_detail::ternary_layer(tv, n, k, scale, what, r_);
  }

  // HF packed -> I2_S without unpacking: both store code w + 1 in 2 bits, so each I2_S byte
  // (values p, 32+p, 64+p, 96+p of a 128-block of one row, bits 7:6 .. 1:0) gathers the 2-bit
  // field of row block i from four packed bytes of row r (output row i*R + r).
  static PackedWeights transcode_to_i2s(const uint8_t* packed, int64_t n, int64_t k, float scale) {
    PackedWeights p;
    p.format = Format::kI2S;
    p.n = n;
    p.k = k;
    p.scale = scale;
    p.data.assign((size_t)(n * k / 4 + 32), 0);
    const int64_t R = n / 4;
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* in = packed + r * k;
      for (int i = 0; i < 4; ++i) {
        uint8_t* out = p.data.data() + (i * R + r) * (k / 4);
        const int sh = 2 * i;
        for (int64_t blk = 0; blk < k / 128; ++blk) {
          const uint8_t* s = in + blk * 128;
          uint8_t* d = out + blk * 32;
          for (int q = 0; q < 32; ++q) {
            d[q] = (uint8_t)((((s[q] >> sh) & 3) << 6) | (((s[32 + q] >> sh) & 3) << 4) |
                             (((s[64 + q] >> sh) & 3) << 2) | ((s[96 + q] >> sh) & 3));
          }
        }
      }
    }
    std::memcpy(p.data.data() + n * k / 4, &scale, 4);
    return p;
  }

  const std::vector<std::shared_ptr<const safetensors::File>>& shards_;
  std::string config_name_, name_;
  const LoadOptions& opt_;
  LoadReport& r_;
  json::Value cfg_;
  std::map<std::string, Ref> index_;
};

}  // namespace

ModelWeights load_hf_parts(const std::vector<std::shared_ptr<const safetensors::File>>& shards,
                           const std::string& config_json, const std::string& config_name,
                           const LoadOptions& opt, LoadReport* report) {
  LoadReport local;
  return HfLoader(shards, config_json, config_name, opt, report ? *report : local).load();
}

std::vector<std::string> hf_weight_files(const std::string& path) {
  struct stat st;
  const bool is_dir = stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const std::string dir = is_dir ? path : dirname_of(path);
  std::vector<std::string> files;
  if (!is_dir) {
    files.push_back(path);
  } else if (file_exists(dir + "/model.safetensors.index.json")) {
    const std::string idx_path = dir + "/model.safetensors.index.json";
    const json::Value idx = json::parse(read_text(idx_path, 64u << 20), idx_path);
    const json::Value* wm = idx.is_object() ? idx.find("weight_map") : nullptr;
    if (!wm || !wm->is_object()) throw Error(idx_path + ": no \"weight_map\" object");
    std::set<std::string> unique;
    for (const auto& [name, file] : wm->members()) {
      if (!file.is_string() || file.as_string().find('/') != std::string::npos) {
        throw Error(idx_path + ": weight_map['" + name + "'] is not a file name in " + dir);
      }
      unique.insert(file.as_string());
    }
    for (const auto& f : unique) files.push_back(dir + "/" + f);
  } else if (file_exists(dir + "/model.safetensors")) {
    files.push_back(dir + "/model.safetensors");
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  return files;
}

ModelWeights load_hf(const std::string& path, const LoadOptions& opt, LoadReport* report) {
  struct stat st;
  const bool is_dir = stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const std::string dir = is_dir ? path : dirname_of(path);
  const std::string config = dir + "/config.json";
  if (!file_exists(config)) {
    struct stat cs;
    throw Error(config + (stat(config.c_str(), &cs) == 0 ? ": not a regular file" : ": missing") +
                " (a Hugging Face checkpoint needs its config.json)");
  }
  const std::vector<std::string> files = hf_weight_files(path);
  std::vector<std::shared_ptr<const safetensors::File>> shards;
  for (const auto& f : files) shards.push_back(safetensors::File::open(f));
  LoadReport local;
  LoadReport& r = report ? *report : local;
  ModelWeights m = load_hf_parts(shards, read_text(config, 16u << 20), config, opt, &r);
  if (opt.load_tokenizer && file_exists(dir + "/tokenizer.json")) {
    const std::string tc = dir + "/tokenizer_config.json";
    TokenizerData td =
        tokenizer_data_from_hf_json(dir + "/tokenizer.json", file_exists(tc) ? tc : "");
    if ((int64_t)td.tokens.size() > m.hp.vocab) {
      throw Error(dir + "/tokenizer.json: " + std::to_string(td.tokens.size()) +
                  " tokens, more than the embedding's " + std::to_string(m.hp.vocab) + " rows");
    }
    m.tokenizer = std::move(td);
  } else if (opt.load_tokenizer) {
    note(r, dir + ": no tokenizer.json");
  }
  return m;
}

}  // namespace tritune
