#include "model/model_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/i2s.h"
#include "kernels/json.h"
#include "model/ggml_types.h"
#include "model/loader.h"
#include "model/safetensors.h"
#include "model/temp_file_guard.h"

namespace tritune {

const char* proj_gguf_name(Proj p) {
  static const char* const k[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                  "ffn_gate", "ffn_up", "ffn_down"};
  return k[(int)p];
}

const char* proj_hf_name(Proj p) {
  static const char* const k[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                  "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                  "mlp.down_proj"};
  return k[(int)p];
}

std::pair<int64_t, int64_t> proj_shape(const HParams& hp, Proj p) {
  const int64_t q = hp.heads * hp.head_dim, kv = hp.kv_heads * hp.head_dim;
  switch (p) {
    case Proj::kQ:
      return {q, hp.hidden};
    case Proj::kK:
    case Proj::kV:
      return {kv, hp.hidden};
    case Proj::kO:
      return {hp.hidden, q};
    case Proj::kGate:
    case Proj::kUp:
      return {hp.ffn, hp.hidden};
    default:
      return {hp.hidden, hp.ffn};
  }
}

int64_t norm_size(const HParams& hp, NormId id) {
  switch (id) {
    case NormId::kAttnSub:
      return hp.heads * hp.head_dim;
    case NormId::kFfnSub:
      return hp.ffn;
    default:
      return hp.hidden;
  }
}

namespace {
const char* const kNormGguf[] = {"attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"};
const char* const kNormHf[] = {"input_layernorm", "self_attn.attn_sub_norm",
                               "post_attention_layernorm", "mlp.ffn_sub_norm"};
}  // namespace

LinearFormat parse_linear_format(const std::string& name) {
  if (name == "i2_s") return LinearFormat::kI2S;
  if (name == "tq2_0") return LinearFormat::kTQ2_0;
  if (name == "tq1_0") return LinearFormat::kTQ1_0;
  if (name == "f16") return LinearFormat::kF16;
  if (name == "f32") return LinearFormat::kF32;
  throw Error("unknown linear-layer format '" + name + "' (known: i2_s, tq2_0, tq1_0, f16, f32)");
}

const char* linear_format_name(LinearFormat f) {
  switch (f) {
    case LinearFormat::kI2S:
      return "i2_s";
    case LinearFormat::kTQ2_0:
      return "tq2_0";
    case LinearFormat::kTQ1_0:
      return "tq1_0";
    case LinearFormat::kF16:
      return "f16";
    case LinearFormat::kF32:
      return "f32";
  }
  return "?";
}

uint32_t linear_tensor_type(LinearFormat f, int64_t k, float scale) {
  const bool f16_exact = half_to_float(float_to_half(scale)) == scale;
  const uint32_t fallback = f16_exact ? ggml::kF16 : ggml::kF32;
  switch (f) {
    case LinearFormat::kI2S:
      return k % 128 == 0 ? ggml::kI2_S : fallback;
    case LinearFormat::kTQ2_0:
      return k % 256 == 0 ? ggml::kTQ2_0 : fallback;
    case LinearFormat::kTQ1_0:
      return k % 256 == 0 ? ggml::kTQ1_0 : fallback;
    case LinearFormat::kF16:
      return ggml::kF16;
    case LinearFormat::kF32:
      return ggml::kF32;
  }
  return fallback;
}

void encode_floats(uint32_t type, const float* x, int64_t n, uint8_t* out) {
  switch (type) {
    case ggml::kF32:
      std::memcpy(out, x, (size_t)n * 4);
      break;
    case ggml::kF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_half(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      break;
    case ggml::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = ggml::float_to_bf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      break;
    case ggml::kQ8_0:
      ggml::quantize_q8_0(x, out, n);
      break;
    case ggml::kQ6_K:
      ggml::quantize_q6_k(x, out, n);
      break;
    case ggml::kTQ1_0:
      ggml::quantize_tq1_0(x, out, n);
      break;
    case ggml::kTQ2_0:
      ggml::quantize_tq2_0(x, out, n);
      break;
    default:
      throw Error("cannot write tensors of type " + ggml::type_name(type));
  }
}

void encode_rows(uint32_t type, const float* x, int64_t rows, int64_t cols, uint8_t* out,
                 int64_t first_row) {
  const int64_t rb = ggml::row_bytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    try {
      encode_floats(type, x + r * cols, cols, out + r * rb);
    } catch (const Error& e) {
      throw Error("row " + std::to_string(first_row + r) + ", " + e.what());
    }
  }
}

void encode_floats(uint32_t type, const float* x, int64_t n, std::vector<uint8_t>& out) {
  out.resize((size_t)ggml::row_bytes(type, n));
  encode_floats(type, x, n, out.data());
}

namespace {
constexpr uint32_t kMatrixTypes[] = {ggml::kF32, ggml::kF16, ggml::kBF16, ggml::kQ8_0, ggml::kQ6_K};
}  // namespace

bool can_write_matrix_type(uint32_t t) {
  return std::find(std::begin(kMatrixTypes), std::end(kMatrixTypes), t) != std::end(kMatrixTypes);
}

uint32_t parse_matrix_type(const std::string& name) {
  for (uint32_t t : kMatrixTypes) {
    std::string n = ggml::type_name(t);
    for (char& c : n) c = (char)std::tolower((unsigned char)c);
    if (n == name) return t;
  }
  throw Error("unknown embedding type '" + name + "' (known: f16, q8_0, q6_k, f32, bf16)");
}

namespace {

// Rows per chunk so one chunk stays near 4M values (bounded memory for any shape).
int64_t chunk_rows(int64_t cols) {
  return std::max<int64_t>(1, (int64_t(1) << 22) / cols);
}

void write_norm(gguf::Writer& w, const std::string& name, const std::vector<float>& v) {
  w.write_tensor(name, v.data(), v.size() * 4);
}

void write_linear(gguf::Writer& w, const ModelSource& src, int64_t layer, Proj p,
                  const std::string& name, uint32_t type, int64_t n, int64_t k) {
  const bool ternary = src.is_ternary(layer, p);
  const float scale = ternary ? src.scale(layer, p) : 1.0f;
  const int64_t step = chunk_rows(k);
  std::vector<int8_t> t;
  std::vector<float> f;
  std::vector<uint8_t> bytes;
  w.begin_tensor(name);
  for (int64_t r0 = 0; r0 < n; r0 += step) {
    const int64_t rows = std::min(step, n - r0);
    const int64_t count = rows * k;
    if (ternary) {
      t.resize((size_t)count);
      src.ternary_rows(layer, p, r0, rows, t.data());
    }
    if (type == ggml::kI2_S) {
      if (!ternary) throw Error(name + ": an I2_S tensor needs ternary weights");
      const PackedWeights pk = i2s_pack_ternary(t.data(), rows, k, scale);
      w.append(pk.data.data(), (size_t)(count / 4));
    } else if (ternary && type == ggml::kTQ2_0) {
      bytes.resize((size_t)ggml::row_bytes(type, count));
      ggml::pack_tq2_0(t.data(), scale, bytes.data(), count);
      w.append(bytes.data(), bytes.size());
    } else if (ternary && type == ggml::kTQ1_0) {
      bytes.resize((size_t)ggml::row_bytes(type, count));
      ggml::pack_tq1_0(t.data(), scale, bytes.data(), count);
      w.append(bytes.data(), bytes.size());
    } else {
      f.resize((size_t)count);
      if (ternary) {
        for (int64_t i = 0; i < count; ++i) f[(size_t)i] = (float)t[(size_t)i] * scale;
      } else {
        src.float_rows(layer, p, r0, rows, f.data());
      }
      encode_floats(type, f.data(), count, bytes);
      w.append(bytes.data(), bytes.size());
    }
  }
  if (type == ggml::kI2_S) {
    uint8_t tail[32] = {};
    std::memcpy(tail, &scale, 4);
    w.append(tail, sizeof tail);
  }
  w.end_tensor();
}

void write_matrix(gguf::Writer& w, const ModelSource& src, bool output, const std::string& name,
                  uint32_t type, int64_t rows, int64_t cols) {
  const RawMatrix* raw = src.raw_matrix(output);
  if (raw && raw->ggml_type == type) {
    w.write_tensor(name, raw->data, (size_t)raw->bytes);
    return;
  }
  const int64_t step = chunk_rows(cols);
  std::vector<float> f;
  std::vector<uint8_t> bytes;
  w.begin_tensor(name);
  for (int64_t r0 = 0; r0 < rows; r0 += step) {
    const int64_t n = std::min(step, rows - r0);
    f.resize((size_t)(n * cols));
    src.matrix_rows(output, r0, n, f.data());
    bytes.resize((size_t)(n * ggml::row_bytes(type, cols)));
    try {
      encode_rows(type, f.data(), n, cols, bytes.data(), r0);
    } catch (const Error& e) {
      throw Error(name + ": " + e.what());
    }
    w.append(bytes.data(), bytes.size());
  }
  w.end_tensor();
}

uint32_t file_type_of(LinearFormat f) {
  // llama_ftype values (bitnet.cpp's MOSTLY_I2_S = 40).
  switch (f) {
    case LinearFormat::kI2S:
      return 40;
    case LinearFormat::kTQ2_0:
      return 37;
    case LinearFormat::kTQ1_0:
      return 36;
    case LinearFormat::kF16:
      return 1;
    case LinearFormat::kF32:
      return 0;
  }
  return 0;
}

}  // namespace

void set_gguf_tokenizer(gguf::Writer& w, const TokenizerData& tok) {
  w.set("tokenizer.ggml.model", gguf::Value::str("gpt2"));
  w.set("tokenizer.ggml.pre", gguf::Value::str(tok.pre));
  w.set("tokenizer.ggml.tokens", gguf::Value::strings(tok.tokens));
  if (!tok.token_types.empty())
    w.set("tokenizer.ggml.token_type", gguf::Value::i32s(tok.token_types));
  w.set("tokenizer.ggml.merges", gguf::Value::strings(tok.merges));
  if (tok.bos >= 0) w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32((uint32_t)tok.bos));
  if (tok.eos >= 0) w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32((uint32_t)tok.eos));
  if (tok.eot >= 0) w.set("tokenizer.ggml.eot_token_id", gguf::Value::u32((uint32_t)tok.eot));
  w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(tok.add_bos));
  if (!tok.chat_template.empty())
    w.set("tokenizer.chat_template", gguf::Value::str(tok.chat_template));
}

const std::vector<std::string>& gguf_architectures() {
  static const std::vector<std::string> k = {"bitnet-b1.58", "bitnet", "bitnet-25"};
  return k;
}

void check_gguf_architecture(const std::string& arch, const std::string& what) {
  std::string known;
  for (const auto& a : gguf_architectures()) {
    if (a == arch) return;
    known += (known.empty() ? "" : ", ") + a;
  }
  throw Error(what + " '" + arch + "' is not a BitNet architecture (known: " + known + ")");
}

WriteSummary write_gguf_model(const ModelSource& src, const std::string& path,
                              const GgufModelOptions& opt) {
  const HParams& hp = src.hparams();
  WriteSummary sum;
  const std::string& a = opt.arch.empty() ? hp.arch : opt.arch;
  check_gguf_architecture(a, "the architecture");
  gguf::Writer w(path);
  w.set("general.architecture", gguf::Value::str(a));
  w.set("general.name", gguf::Value::str(opt.name.empty() ? "tritune model" : opt.name));
  w.set("general.file_type", gguf::Value::u32(file_type_of(opt.linear)));
  if (opt.linear != LinearFormat::kF16 && opt.linear != LinearFormat::kF32) {
    w.set("general.quantization_version", gguf::Value::u32(2));
  }
  w.set(a + ".vocab_size", gguf::Value::u32((uint32_t)hp.vocab));
  w.set(a + ".context_length", gguf::Value::u32((uint32_t)hp.context));
  w.set(a + ".embedding_length", gguf::Value::u32((uint32_t)hp.hidden));
  w.set(a + ".block_count", gguf::Value::u32((uint32_t)hp.layers));
  w.set(a + ".feed_forward_length", gguf::Value::u32((uint32_t)hp.ffn));
  w.set(a + ".attention.head_count", gguf::Value::u32((uint32_t)hp.heads));
  w.set(a + ".attention.head_count_kv", gguf::Value::u32((uint32_t)hp.kv_heads));
  w.set(a + ".attention.layer_norm_rms_epsilon", gguf::Value::f32(hp.rms_eps));
  w.set(a + ".rope.freq_base", gguf::Value::f32(hp.rope_theta));
  w.set(a + ".rope.dimension_count", gguf::Value::u32((uint32_t)hp.head_dim));
  if (hp.head_dim * hp.heads != hp.hidden) {
    w.set(a + ".attention.key_length", gguf::Value::u32((uint32_t)hp.head_dim));
    w.set(a + ".attention.value_length", gguf::Value::u32((uint32_t)hp.head_dim));
  }
  if (const TokenizerData* tok = src.tokenizer()) set_gguf_tokenizer(w, *tok);
  for (const auto& kv : opt.extra_metadata) w.set(kv.first, kv.second);

  // Embedding type: as requested, else as stored, else F16; a block type the row length cannot
  // hold falls back to F16.
  auto matrix_type = [&](bool output) {
    uint32_t t = opt.embd_type;
    if (t == UINT32_MAX) {
      const RawMatrix* raw = src.raw_matrix(output);
      t = raw && can_write_matrix_type(raw->ggml_type) ? raw->ggml_type : (uint32_t)ggml::kF16;
    }
    if (!can_write_matrix_type(t)) {
      throw Error(path + ": embeddings cannot be written as " + ggml::type_name(t) +
                  " (use f32, f16, bf16, q8_0 or q6_k)");
    }
    const ggml::TypeInfo* ti = ggml::find_type(t);
    if (hp.hidden % ti->block != 0) {
      sum.notes.push_back(std::string(output ? "output" : "token_embd") + ": hidden " +
                          std::to_string(hp.hidden) + " is not a multiple of the " + ti->name +
                          " block; written as F16");
      t = ggml::kF16;
    }
    return t;
  };
  const uint32_t embd_type = matrix_type(false);
  const uint32_t out_type = src.has_output() ? matrix_type(true) : 0;

  // Declare every tensor (the header needs all of them before any data).
  w.add_tensor("token_embd.weight", embd_type, {hp.hidden, hp.vocab});
  w.add_tensor("output_norm.weight", ggml::kF32, {hp.hidden});
  if (src.has_output()) w.add_tensor("output.weight", out_type, {hp.hidden, hp.vocab});
  std::vector<uint32_t> types;
  for (int64_t l = 0; l < hp.layers; ++l) {
    for (int n = 0; n < (int)NormId::kCount; ++n) {
      w.add_tensor(gguf_layer_tensor(l, kNormGguf[n]), ggml::kF32, {norm_size(hp, (NormId)n)});
    }
    for (int pi = 0; pi < (int)Proj::kCount; ++pi) {
      const Proj p = (Proj)pi;
      const auto [n, k] = proj_shape(hp, p);
      const bool ternary = src.is_ternary(l, p);
      uint32_t t = linear_tensor_type(opt.linear, k, ternary ? src.scale(l, p) : 1.0f);
      if (!ternary && (t == ggml::kI2_S || t == ggml::kTQ2_0 || t == ggml::kTQ1_0)) {
        throw Error(path + ": layer " + std::to_string(l) + " " + proj_gguf_name(p) +
                    " is not ternary; ternarize it before writing " +
                    linear_format_name(opt.linear));
      }
      const bool fell_back = t != linear_tensor_type(opt.linear, 1 << 20, 1.0f);
      if (fell_back && l == 0) {
        sum.notes.push_back(std::string(proj_gguf_name(p)) + ": K=" + std::to_string(k) +
                            " is not a multiple of the " + linear_format_name(opt.linear) +
                            " block; written as " + ggml::type_name(t) +
                            " (ternary x scale, exact)");
      }
      types.push_back(t);
      w.add_tensor(gguf_layer_tensor(l, proj_gguf_name(p)), t, {k, n});
    }
  }

  // Data, in declaration order.
  write_matrix(w, src, false, "token_embd.weight", embd_type, hp.vocab, hp.hidden);
  write_norm(w, "output_norm.weight", src.norm(-1, NormId::kAttn));
  if (src.has_output()) write_matrix(w, src, true, "output.weight", out_type, hp.vocab, hp.hidden);
  size_t ti = 0;
  for (int64_t l = 0; l < hp.layers; ++l) {
    for (int n = 0; n < (int)NormId::kCount; ++n) {
      write_norm(w, gguf_layer_tensor(l, kNormGguf[n]), src.norm(l, (NormId)n));
    }
    for (int pi = 0; pi < (int)Proj::kCount; ++pi) {
      const Proj p = (Proj)pi;
      const auto [n, k] = proj_shape(hp, p);
      write_linear(w, src, l, p, gguf_layer_tensor(l, proj_gguf_name(p)), types[ti++], n, k);
    }
  }
  w.finish();
  sum.bytes = w.bytes_written();
  sum.tensors = 3 + (src.has_output() ? 1 : 0) + hp.layers * 11 - 1;
  return sum;
}

// ---- Hugging Face --------------------------------------------------------------------------
namespace {

void write_text_file(const std::string& path, const std::string& text) {
  std::string tmp;
  FILE* f = create_temp_for(path, &tmp);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    throw Error(tmp + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Error(path + ": cannot rename into place: " + std::strerror(errno));
  }
}

const char kLlama3RegexHf[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace

std::string hf_tokenizer_json(const TokenizerData& tok) {
  json::Value root = json::Value::object();
  root.set("version", json::Value("1.0"));
  json::Value added = json::Value::array();
  json::Value vocab = json::Value::object();
  for (size_t i = 0; i < tok.tokens.size(); ++i) {
    const int32_t type = tok.token_types.empty() ? kTokenNormal : tok.token_types[i];
    if (type == kTokenControl || type == kTokenUserDefined) {
      json::Value a = json::Value::object();
      a.set("id", json::Value((int64_t)i));
      a.set("content", json::Value(tok.tokens[i]));
      a.set("single_word", json::Value(false));
      a.set("lstrip", json::Value(false));
      a.set("rstrip", json::Value(false));
      a.set("normalized", json::Value(false));
      a.set("special", json::Value(type == kTokenControl));
      added.push_back(std::move(a));
    } else {
      vocab.set(tok.tokens[i], json::Value((int64_t)i));
    }
  }
  root.set("added_tokens", std::move(added));
  root.set("normalizer", json::Value());
  json::Value split = json::Value::object();
  split.set("type", json::Value("Split"));
  json::Value pattern = json::Value::object();
  pattern.set("Regex", json::Value(kLlama3RegexHf));
  split.set("pattern", std::move(pattern));
  split.set("behavior", json::Value("Isolated"));
  split.set("invert", json::Value(false));
  json::Value bl = json::Value::object();
  bl.set("type", json::Value("ByteLevel"));
  bl.set("add_prefix_space", json::Value(false));
  bl.set("trim_offsets", json::Value(true));
  bl.set("use_regex", json::Value(false));
  json::Value seq = json::Value::array();
  seq.push_back(std::move(split));
  seq.push_back(bl);
  json::Value pre = json::Value::object();
  pre.set("type", json::Value("Sequence"));
  pre.set("pretokenizers", std::move(seq));
  root.set("pre_tokenizer", std::move(pre));
  if (tok.add_bos && tok.bos >= 0) {
    json::Value st = json::Value::object();
    st.set("id", json::Value(tok.tokens[(size_t)tok.bos]));
    st.set("type_id", json::Value(0));
    json::Value first = json::Value::object();
    first.set("SpecialToken", std::move(st));
    json::Value sq = json::Value::object();
    sq.set("id", json::Value("A"));
    sq.set("type_id", json::Value(0));
    json::Value second = json::Value::object();
    second.set("Sequence", std::move(sq));
    json::Value single = json::Value::array();
    single.push_back(std::move(first));
    single.push_back(std::move(second));
    json::Value pp = json::Value::object();
    pp.set("type", json::Value("TemplateProcessing"));
    pp.set("single", std::move(single));
    root.set("post_processor", std::move(pp));
  }
  json::Value dec = json::Value::object();
  dec.set("type", json::Value("ByteLevel"));
  root.set("decoder", std::move(dec));
  json::Value model = json::Value::object();
  model.set("type", json::Value("BPE"));
  model.set("ignore_merges", json::Value(tok.ignore_merges.value_or(true)));
  model.set("vocab", std::move(vocab));
  json::Value merges = json::Value::array();
  for (const auto& m : tok.merges) merges.push_back(json::Value(m));
  model.set("merges", std::move(merges));
  root.set("model", std::move(model));
  return json::dump(root);
}

std::string hf_tokenizer_config_json(const TokenizerData& tok) {
  json::Value c = json::Value::object();
  if (tok.bos >= 0) c.set("bos_token", json::Value(tok.tokens[(size_t)tok.bos]));
  if (tok.eos >= 0) c.set("eos_token", json::Value(tok.tokens[(size_t)tok.eos]));
  c.set("add_bos_token", json::Value(tok.add_bos));
  if (!tok.chat_template.empty()) c.set("chat_template", json::Value(tok.chat_template));
  c.set("tokenizer_class", json::Value("PreTrainedTokenizerFast"));
  return json::dump(c, 2);
}

WriteSummary write_hf_model(const ModelSource& src, const std::string& dir) {
  const HParams& hp = src.hparams();
  WriteSummary sum;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    throw Error(dir + ": cannot create directory: " + std::strerror(errno));
  }
  const std::string path = dir + "/model.safetensors";
  safetensors::Writer w(path);
  w.set_metadata("format", "pt");
  w.add_tensor("model.embed_tokens.weight", "BF16", {hp.vocab, hp.hidden});
  for (int64_t l = 0; l < hp.layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    for (int n = 0; n < (int)NormId::kCount; ++n) {
      w.add_tensor(pre + kNormHf[n] + ".weight", "BF16", {norm_size(hp, (NormId)n)});
    }
    for (int pi = 0; pi < (int)Proj::kCount; ++pi) {
      const Proj p = (Proj)pi;
      const auto [n, k] = proj_shape(hp, p);
      if (n % 4 != 0) {
        throw Error(dir + ": " + proj_hf_name(p) + " has " + std::to_string(n) +
                    " output rows; the HF packed layout needs a multiple of 4");
      }
      if (!src.is_ternary(l, p)) {
        throw Error(dir + ": layer " + std::to_string(l) + " " + proj_hf_name(p) +
                    " is not ternary; the HF packed layout holds ternary weights only");
      }
      w.add_tensor(pre + proj_hf_name(p) + ".weight", "U8", {n / 4, k});
      w.add_tensor(pre + proj_hf_name(p) + ".weight_scale", "BF16", {1});
    }
  }
  w.add_tensor("model.norm.weight", "BF16", {hp.hidden});
  if (src.has_output()) w.add_tensor("lm_head.weight", "BF16", {hp.vocab, hp.hidden});

  std::vector<float> f;
  std::vector<uint8_t> bytes;
  auto bf16_tensor = [&](const std::string& name, const std::vector<float>& v) {
    encode_floats(ggml::kBF16, v.data(), (int64_t)v.size(), bytes);
    w.write_tensor(name, bytes.data(), bytes.size());
  };
  auto matrix = [&](const std::string& name, bool output) {
    const int64_t step = chunk_rows(hp.hidden);
    w.begin_tensor(name);
    for (int64_t r0 = 0; r0 < hp.vocab; r0 += step) {
      const int64_t n = std::min(step, hp.vocab - r0);
      f.resize((size_t)(n * hp.hidden));
      src.matrix_rows(output, r0, n, f.data());
      encode_floats(ggml::kBF16, f.data(), n * hp.hidden, bytes);
      w.append(bytes.data(), bytes.size());
    }
    w.end_tensor();
  };
  matrix("model.embed_tokens.weight", false);
  std::vector<int8_t> t;
  for (int64_t l = 0; l < hp.layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    for (int n = 0; n < (int)NormId::kCount; ++n) {
      bf16_tensor(pre + kNormHf[n] + ".weight", src.norm(l, (NormId)n));
    }
    for (int pi = 0; pi < (int)Proj::kCount; ++pi) {
      const Proj p = (Proj)pi;
      const auto [n, k] = proj_shape(hp, p);
      // Packed rows r of all four blocks at once: bits 2i..2i+1 of packed[r, c] hold
      // W[i*R + r, c] + 1 (R = n/4).
      const int64_t R = n / 4;
      const int64_t step = std::max<int64_t>(1, chunk_rows(k) / 4);
      w.begin_tensor(pre + proj_hf_name(p) + ".weight");
      std::vector<int8_t> blocks[4];
      for (int64_t r0 = 0; r0 < R; r0 += step) {
        const int64_t rows = std::min(step, R - r0);
        for (int i = 0; i < 4; ++i) {
          blocks[i].resize((size_t)(rows * k));
          src.ternary_rows(l, p, i * R + r0, rows, blocks[i].data());
        }
        bytes.assign((size_t)(rows * k), 0);
        for (int64_t j = 0; j < rows * k; ++j) {
          uint8_t b = 0;
          for (int i = 0; i < 4; ++i) b |= (uint8_t)((blocks[i][(size_t)j] + 1) << (2 * i));
          bytes[(size_t)j] = b;
        }
        w.append(bytes.data(), bytes.size());
      }
      w.end_tensor();
      bf16_tensor(pre + proj_hf_name(p) + ".weight_scale", {1.0f / src.scale(l, p)});
    }
  }
  bf16_tensor("model.norm.weight", src.norm(-1, NormId::kAttn));
  if (src.has_output()) matrix("lm_head.weight", true);
  w.finish();

  json::Value cfg = json::Value::object();
  json::Value archs = json::Value::array();
  archs.push_back(json::Value("BitNetForCausalLM"));
  cfg.set("architectures", std::move(archs));
  cfg.set("model_type", json::Value("bitnet"));
  cfg.set("hidden_size", json::Value(hp.hidden));
  cfg.set("intermediate_size", json::Value(hp.ffn));
  cfg.set("num_hidden_layers", json::Value(hp.layers));
  cfg.set("num_attention_heads", json::Value(hp.heads));
  cfg.set("num_key_value_heads", json::Value(hp.kv_heads));
  cfg.set("head_dim", json::Value(hp.head_dim));
  cfg.set("vocab_size", json::Value(hp.vocab));
  cfg.set("max_position_embeddings", json::Value(hp.context));
  cfg.set("rms_norm_eps", json::Value((double)hp.rms_eps));
  cfg.set("rope_theta", json::Value((double)hp.rope_theta));
  cfg.set("hidden_act", json::Value("relu2"));
  cfg.set("tie_word_embeddings", json::Value(!src.has_output()));
  cfg.set("torch_dtype", json::Value("bfloat16"));
  if (const TokenizerData* tok = src.tokenizer()) {
    if (tok->bos >= 0) cfg.set("bos_token_id", json::Value((int64_t)tok->bos));
    if (tok->eos >= 0) cfg.set("eos_token_id", json::Value((int64_t)tok->eos));
  }
  json::Value q = json::Value::object();
  q.set("quant_method", json::Value("bitnet"));
  q.set("linear_class", json::Value("bitlinear"));
  q.set("quantization_mode", json::Value("offline"));
  cfg.set("quantization_config", std::move(q));
  write_text_file(dir + "/config.json", json::dump(cfg, 2) + "\n");
  if (const TokenizerData* tok = src.tokenizer()) {
    write_text_file(dir + "/tokenizer.json", hf_tokenizer_json(*tok));
    write_text_file(dir + "/tokenizer_config.json", hf_tokenizer_config_json(*tok) + "\n");
  }
  struct stat st;
  sum.bytes = stat(path.c_str(), &st) == 0 ? (int64_t)st.st_size : 0;
  sum.tensors = 2 + hp.layers * 18 + (src.has_output() ? 1 : 0);
  return sum;
}

}  // namespace tritune
