// Loaders: the same synthetic model written as I2_S, TQ2_0, TQ1_0, F32 GGUF and as a Hugging
// Face packed checkpoint loads to identical ternary weights, scales, norms, embeddings and
// tokenizer through every loader, equal to the generator itself; conversions preserve them;
// fallbacks and hostile model files behave as documented.
#include "model/loader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/json.h"
#include "model/convert.h"
#include "model/ggml_types.h"
#include "model/model_writer.h"
#include "model/synthetic.h"
#include "model/transformer.h"
#include "tests/model/model_files_util.h"

namespace tritune {
namespace {

using testing::scratch_dir;
constexpr uint64_t kSeed = 7;

struct TinyFiles {
  std::string dir, i2s, tq2, tq1, f32, f16, hf, untied_i2s, untied_hf;
};

const TinyFiles& tiny_files() {
  static const TinyFiles files = [] {
    TinyFiles f;
    f.dir = scratch_dir("loader");
    SyntheticOptions o;
    o.shape = find_shape("tiny");
    o.seed = kSeed;
    auto make = [&](const std::string& format, const std::string& name, bool untied = false) {
      SyntheticOptions x = o;
      x.format = format;
      x.untied_output = untied;
      write_synthetic_model(x, f.dir + "/" + name);
      return f.dir + "/" + name;
    };
    f.i2s = make("i2_s", "tiny_i2s.gguf");
    f.tq2 = make("tq2_0", "tiny_tq2.gguf");
    f.tq1 = make("tq1_0", "tiny_tq1.gguf");
    f.f32 = make("f32", "tiny_f32.gguf");
    f.f16 = make("f16", "tiny_f16.gguf");
    f.hf = make("safetensors", "tiny_hf");
    f.untied_i2s = make("i2_s", "tiny_untied.gguf", true);
    f.untied_hf = make("safetensors", "tiny_untied_hf", true);
    return f;
  }();
  return files;
}

const PackedWeights& proj_of(const LayerWeights& L, Proj p) {
  return *L.linears()[(size_t)p];
}

std::vector<float> matrix_floats(const RawMatrix& m) {
  std::vector<float> v((size_t)(m.rows * m.cols));
  ggml::dequantize_rows(m.ggml_type, m.data, m.cols, m.rows, 0, m.rows, v.data());
  return v;
}

// Everything a loader returned equals what the generator produced.
void expect_matches_generator(const ModelWeights& m, bool untied, const std::string& label,
                              bool expect_tokenizer = true) {
  SCOPED_TRACE(label);
  HParams hp = shape_hparams(find_shape("tiny"));
  EXPECT_EQ(m.hp.vocab, hp.vocab);
  EXPECT_EQ(m.hp.hidden, hp.hidden);
  EXPECT_EQ(m.hp.ffn, hp.ffn);
  EXPECT_EQ(m.hp.layers, hp.layers);
  EXPECT_EQ(m.hp.heads, hp.heads);
  EXPECT_EQ(m.hp.kv_heads, hp.kv_heads);
  EXPECT_EQ(m.hp.head_dim, hp.head_dim);
  EXPECT_EQ(m.hp.context, hp.context);
  EXPECT_FLOAT_EQ(m.hp.rope_theta, hp.rope_theta);
  EXPECT_FLOAT_EQ(m.hp.rms_eps, hp.rms_eps);
  EXPECT_EQ(m.hp.activation, "relu2");
  const auto gen = synthetic_source(hp, kSeed, untied);
  ASSERT_EQ((int64_t)m.layers.size(), hp.layers);
  for (int64_t l = 0; l < hp.layers; ++l) {
    const LayerWeights& L = m.layers[(size_t)l];
    EXPECT_EQ(L.attn_norm, gen->norm(l, NormId::kAttn));
    EXPECT_EQ(L.attn_sub_norm, gen->norm(l, NormId::kAttnSub));
    EXPECT_EQ(L.ffn_norm, gen->norm(l, NormId::kFfn));
    EXPECT_EQ(L.ffn_sub_norm, gen->norm(l, NormId::kFfnSub));
    for (int pi = 0; pi < (int)Proj::kCount; ++pi) {
      const Proj p = (Proj)pi;
      const PackedWeights& w = proj_of(L, p);
      const auto [n, k] = proj_shape(hp, p);
      EXPECT_EQ(w.format, Format::kI2S) << proj_gguf_name(p);
      ASSERT_EQ(w.n, n);
      ASSERT_EQ(w.k, k);
      const TernaryMatrix t = ternary_of(w);
      std::vector<int8_t> want((size_t)(n * k));
      gen->ternary_rows(l, p, 0, n, want.data());
      EXPECT_EQ(t.t, want) << "layer " << l << " " << proj_gguf_name(p);
      EXPECT_EQ(t.scale, gen->scale(l, p)) << "layer " << l << " " << proj_gguf_name(p);
    }
  }
  EXPECT_EQ(m.output_norm, gen->norm(-1, NormId::kAttn));
  std::vector<float> emb((size_t)(hp.vocab * hp.hidden));
  gen->matrix_rows(false, 0, hp.vocab, emb.data());
  ASSERT_EQ(m.tok_embd.rows, hp.vocab);
  ASSERT_EQ(m.tok_embd.cols, hp.hidden);
  EXPECT_EQ(matrix_floats(m.tok_embd), emb);
  if (untied) {
    gen->matrix_rows(true, 0, hp.vocab, emb.data());
    ASSERT_EQ(m.output.rows, hp.vocab);
    EXPECT_EQ(matrix_floats(m.output), emb);
  } else {
    EXPECT_EQ(m.output.rows, 0);
  }
  if (expect_tokenizer) {
    const TokenizerData& tok = *gen->tokenizer();
    EXPECT_EQ(m.tokenizer.tokens, tok.tokens);
    EXPECT_EQ(m.tokenizer.merges, tok.merges);
    EXPECT_EQ(m.tokenizer.bos, tok.bos);
    EXPECT_EQ(m.tokenizer.eos, tok.eos);
    EXPECT_EQ(m.tokenizer.eot, tok.eot);
    EXPECT_EQ(m.tokenizer.add_bos, tok.add_bos);
    EXPECT_EQ(m.tokenizer.chat_template, tok.chat_template);
  }
}

TEST(LoaderEquivalence, EveryFormatGivesTheGeneratorsWeights) {
  const TinyFiles& f = tiny_files();
  for (const std::string& path : {f.i2s, f.tq2, f.tq1}) {
    LoadReport r;
    const ModelWeights m = load_model(path, {}, &r);
    EXPECT_EQ(m.path, path);
    expect_matches_generator(m, false, path);
    EXPECT_EQ(r.source, "GGUF v3");
  }
  {
    LoadOptions o;
    o.ternarize_float = true;  // an F32 file of ternary x scale values ternarizes exactly
    expect_matches_generator(load_model(f.f32, o), false, f.f32);
  }
  LoadReport r;
  const ModelWeights hf = load_model(f.hf, {}, &r);
  expect_matches_generator(hf, false, f.hf);
  EXPECT_NE(r.source.find("HF packed"), std::string::npos) << r.source;
  // Embeddings are read in place from the mapping, and say so (the transformer and the
  // re-encoder drop mapped pages from the resident set only when this is set).
  EXPECT_TRUE(hf.tok_embd.file_mapped);
  const ModelWeights untied_hf = load_model(f.untied_hf);
  EXPECT_TRUE(untied_hf.output.file_mapped);
  // The single safetensors file path works too (config.json beside it).
  expect_matches_generator(load_model(f.hf + "/model.safetensors"), false, "model.safetensors");
  expect_matches_generator(load_model(f.untied_i2s), true, f.untied_i2s);
  expect_matches_generator(load_model(f.untied_hf), true, f.untied_hf);
}

// Linear layers that would not fit in memory are refused before the first copy (the OOM killer
// would otherwise end the process half-way through a large model), naming the file.
TEST(LoaderMemory, ModelsBeyondTheMemoryLimitAreRefusedBeforeLoading) {
  const TinyFiles& f = tiny_files();
  auto loaded_bytes = [](const ModelWeights& m) {
    int64_t b = 0;
    for (const LayerWeights& L : m.layers) {
      for (const PackedWeights* p : L.linears()) b += (int64_t)p->data.size();
    }
    return b;
  };
  for (const std::string& path : {f.i2s, f.tq2, f.tq1, f.f16, f.f32, f.hf}) {
    SCOPED_TRACE(path);
    LoadOptions o;
    o.memory_limit = 1;
    try {
      load_model(path, o);
      ADD_FAILURE() << "loaded within 1 byte";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("linear layers, read into memory would need"), std::string::npos) << m;
      EXPECT_NE(m.find("more than the 1 B available"), std::string::npos) << m;
      EXPECT_NE(m.find("run a smaller model"), std::string::npos) << m;
    }
    o.memory_limit = int64_t(1) << 30;
    EXPECT_NO_THROW(load_model(path, o));
  }
  // Layers read as they are stored (I2_S, F16 kept as the baseline) need exactly their bytes.
  for (const std::string& path : {f.i2s, f.f16}) {
    const int64_t need = loaded_bytes(load_model(path));
    LoadOptions o;
    o.memory_limit = need;
    EXPECT_NO_THROW(load_model(path, o)) << path;
    o.memory_limit = need - 1;
    EXPECT_THROW(load_model(path, o), Error) << path;
  }
}

TEST(LoaderEquivalence, FloatFilesKeepFloatLayers) {
  const TinyFiles& f = tiny_files();
  const HParams hp = shape_hparams(find_shape("tiny"));
  const auto gen = synthetic_source(hp, kSeed);
  for (const auto& [path, fmt] :
       {std::make_pair(f.f16, Format::kF16), std::make_pair(f.f32, Format::kF32)}) {
    const ModelWeights m = load_model(path);
    const PackedWeights& w = m.layers[1].w_down;
    EXPECT_EQ(w.format, fmt);
    const auto [n, k] = proj_shape(hp, Proj::kDown);
    std::vector<float> got((size_t)(n * k)), want((size_t)(n * k));
    format_traits(fmt).unpack(w, got.data());
    gen->float_rows(1, Proj::kDown, 0, n, want.data());
    EXPECT_EQ(got, want);
  }
}

TEST(LoaderEquivalence, EmbeddingsStayInTheMapping) {
  const ModelWeights m = load_model(tiny_files().i2s);
  const auto* map = static_cast<const MappedFile*>(m.keepalive.get());
  ASSERT_NE(map, nullptr);
  EXPECT_TRUE(map->is_mapped());
  EXPECT_GE(m.tok_embd.data, map->data());
  EXPECT_LE(m.tok_embd.data + m.tok_embd.bytes, map->data() + map->size());
  EXPECT_TRUE(m.tok_embd.owned.empty());
  EXPECT_EQ(m.tok_embd.ggml_type, (uint32_t)ggml::kF16);
}

// After a prompt the Transformer unmaps the embedding rows it faulted in (drop_mapped_pages);
// the next lookups read the same bytes back from the file: a second run of the same prompt gives
// the same logits, and the table still holds the file's bytes.
TEST(LoaderEquivalence, EmbeddingPagesDroppedAfterAPromptReadBack) {
  auto m = std::make_shared<ModelWeights>(load_model(tiny_files().i2s));
  ASSERT_TRUE(m->tok_embd.file_mapped);
  const std::vector<uint8_t> before(m->tok_embd.data, m->tok_embd.data + m->tok_embd.bytes);
  Transformer tf(m, {Path::kKernel, 1, KvType::kF32, 0});
  const int64_t V = m->hp.vocab;
  std::vector<int32_t> toks;
  for (int i = 0; i < 9; ++i) toks.push_back((int32_t)((i * 37 + 5) % V));
  std::vector<float> a((size_t)(toks.size() * V)), b(a.size());
  tf.forward(toks.data(), (int64_t)toks.size(), 0, a.data());
  tf.reset();
  tf.forward(toks.data(), (int64_t)toks.size(), 0, b.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::memcmp(before.data(), m->tok_embd.data, before.size()), 0);
}

// Whether the page holding `addr` is mapped in this process (/proc/self/pagemap, bit 63): 1,
// 0, or -1 when pagemap cannot be read.
int page_present(const void* addr) {
  const long page = sysconf(_SC_PAGESIZE);
  std::FILE* f = std::fopen("/proc/self/pagemap", "rb");
  if (f == nullptr) return -1;
  uint64_t entry = 0;
  const long off = (long)(reinterpret_cast<uintptr_t>(addr) / (uintptr_t)page * 8);
  const bool ok = std::fseek(f, off, SEEK_SET) == 0 && std::fread(&entry, 8, 1, f) == 1;
  std::fclose(f);
  return ok ? (int)(entry >> 63) : -1;
}

// Decode steps unmap the embedding pages their lookups faulted in, like prompts do (before,
// each step left up to 64 KiB of the table mapped around its row: 50-125 MB after a
// `bench e2e` run): after every single-token step the page of its row is no longer mapped, and
// the next steps read the same bytes back (same logits for the same token and position).
TEST(LoaderEquivalence, DecodeStepsLeaveNoEmbeddingPagesMapped) {
  auto m = std::make_shared<ModelWeights>(load_model(tiny_files().i2s));
  ASSERT_TRUE(m->tok_embd.file_mapped);
  if (page_present(m->tok_embd.data) < 0) GTEST_SKIP() << "/proc/self/pagemap is not readable";
  Transformer tf(m, {Path::kKernel, 1, KvType::kF32, 0});
  const int64_t V = m->hp.vocab, row_bytes = m->tok_embd.bytes / V;
  std::vector<float> first((size_t)V), again((size_t)V);
  for (int i = 0; i < 20; ++i) {
    const int32_t tok = (int32_t)((i * 131 + 7) % V);
    const uint8_t* row = m->tok_embd.data + tok * row_bytes;
    tf.forward(&tok, 1, 0, first.data());
    // The table's first and last pages are shared with the neighbouring tensors: kept.
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), mid = (uintptr_t)(row + row_bytes / 2);
    const uintptr_t lo = (uintptr_t)m->tok_embd.data, hi = lo + (uintptr_t)m->tok_embd.bytes;
    if (mid / page * page < lo || (mid / page + 1) * page > hi) continue;
    EXPECT_EQ(page_present(row + row_bytes / 2), 0) << "step " << i << ", token " << tok;
  }
  tf.reset();
  const int32_t tok = 7;
  tf.forward(&tok, 1, 0, again.data());
  tf.reset();
  tf.forward(&tok, 1, 0, first.data());
  EXPECT_EQ(first, again);
}

TEST(LoaderEquivalence, EmbeddingTypes) {
  const std::string dir = scratch_dir("embd");
  const HParams hp = shape_hparams(find_shape("tiny"));
  std::vector<float> want((size_t)(hp.vocab * hp.hidden));
  synthetic_source(hp, kSeed)->matrix_rows(false, 0, hp.vocab, want.data());
  float amax = 0;
  for (float v : want) amax = std::fmax(amax, std::fabs(v));
  for (uint32_t t : {(uint32_t)ggml::kQ8_0, (uint32_t)ggml::kQ6_K, (uint32_t)ggml::kBF16,
                     (uint32_t)ggml::kF32}) {
    SyntheticOptions o;
    o.shape = find_shape("tiny");
    o.seed = kSeed;
    o.embd_type = t;
    const std::string path = dir + "/" + ggml::type_name(t) + ".gguf";
    write_synthetic_model(o, path);
    const ModelWeights m = load_model(path);
    EXPECT_EQ(m.tok_embd.ggml_type, t);
    const std::vector<float> got = matrix_floats(m.tok_embd);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], amax / 20.0f) << ggml::type_name(t) << " " << i;
    }
    if (t == ggml::kBF16 || t == ggml::kF32) {
      EXPECT_EQ(got, want);
    }
  }
}

TEST(LoaderConvert, RoundTripsBetweenFormats) {
  const TinyFiles& f = tiny_files();
  const std::string dir = scratch_dir("convert");
  // HF -> I2_S GGUF, I2_S -> TQ1_0 -> TQ2_0, all equal to the generator.
  ConvertOptions c;
  c.format = "i2_s";
  convert_to_gguf(load_model(f.hf), dir + "/from_hf.gguf", c);
  expect_matches_generator(load_model(dir + "/from_hf.gguf"), false, "hf->i2_s");
  c.format = "tq1_0";
  convert_to_gguf(load_model(f.i2s), dir + "/tq1.gguf", c);
  expect_matches_generator(load_model(dir + "/tq1.gguf"), false, "i2_s->tq1_0");
  c.format = "tq2_0";
  convert_to_gguf(load_model(dir + "/tq1.gguf"), dir + "/tq2.gguf", c);
  expect_matches_generator(load_model(dir + "/tq2.gguf"), false, "tq1_0->tq2_0");
  // The stored embedding bytes are kept as they are by default.
  EXPECT_EQ(gguf::File::open(dir + "/tq2.gguf")->tensor("token_embd.weight")->type,
            (uint32_t)ggml::kF16);
  // F16 -> I2_S ternarizes (exactly, the values are ternary x scale).
  c.format = "i2_s";
  convert_to_gguf(load_model(f.f16), dir + "/from_f16.gguf", c);
  expect_matches_generator(load_model(dir + "/from_f16.gguf"), false, "f16->i2_s");
  // I2_S -> F32 keeps float layers of the same values.
  c.format = "f32";
  c.embd_type = ggml::kQ8_0;
  convert_to_gguf(load_model(f.untied_i2s), dir + "/f32.gguf", c);
  LoadOptions o;
  o.ternarize_float = true;
  const ModelWeights m = load_model(dir + "/f32.gguf", o);
  EXPECT_EQ(m.tok_embd.ggml_type, (uint32_t)ggml::kQ8_0);
  EXPECT_EQ(m.output.ggml_type, (uint32_t)ggml::kQ8_0);
  EXPECT_EQ(ternary_of(m.layers[0].wq).t, ternary_of(load_model(f.i2s).layers[0].wq).t);
}

// --arch: the same weights under llama.cpp's architecture name (keys prefixed "bitnet."),
// from the generator and from a conversion; a name that is not BitNet's is refused.
TEST(LoaderConvert, ArchitectureNameIsChosenAtWrite) {
  const TinyFiles& f = tiny_files();
  const std::string dir = scratch_dir("arch");
  SyntheticOptions o;
  o.shape = find_shape("tiny");
  o.seed = kSeed;
  o.format = "tq2_0";
  o.arch = "bitnet";
  write_synthetic_model(o, dir + "/llama_name.gguf");
  const auto file = gguf::File::open(dir + "/llama_name.gguf");
  EXPECT_EQ(file->get_string("general.architecture"), "bitnet");
  EXPECT_EQ(file->get_int("bitnet.block_count"), 2);
  EXPECT_EQ(file->find("bitnet-b1.58.block_count"), nullptr);
  const ModelWeights m = load_model(dir + "/llama_name.gguf");
  EXPECT_EQ(m.hp.arch, "bitnet");
  expect_matches_generator(m, false, "make-model --arch bitnet");

  ConvertOptions c;
  c.format = "i2_s";
  c.arch = "bitnet-25";
  convert_to_gguf(load_model(dir + "/llama_name.gguf"), dir + "/b25.gguf", c);
  EXPECT_EQ(load_model(dir + "/b25.gguf").hp.arch, "bitnet-25");
  expect_matches_generator(load_model(dir + "/b25.gguf"), false, "convert --arch bitnet-25");

  for (const std::string bad : {"llama", "BITNET", "bitnet-b1.58 "}) {
    c.arch = bad;
    try {
      convert_to_gguf(load_model(f.i2s), dir + "/bad.gguf", c);
      ADD_FAILURE() << "accepted architecture '" << c.arch << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not a BitNet architecture"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("bitnet-b1.58, bitnet, bitnet-25"), std::string::npos);
    }
  }
}
// A shape whose FFN width (320) fits neither the I2_S block (128) nor the TQ block (256).
TEST(LoaderFallback, OddWidthsFallBackExactly) {
  const std::string dir = scratch_dir("fallback");
  SyntheticOptions o;
  o.shape = testing::test_shape(256, 320, 1, 4, 4, 300);
  o.seed = 3;
  const HParams hp = shape_hparams(o.shape);
  const auto gen = synthetic_source(hp, 3);
  for (const std::string fmt : {"i2_s", "tq2_0", "safetensors"}) {
    SCOPED_TRACE(fmt);
    o.format = fmt;
    const std::string path = dir + "/odd_" + fmt;
    const WriteSummary s = write_synthetic_model(o, path);
    if (fmt != "safetensors") {
      EXPECT_FALSE(s.notes.empty());
      EXPECT_EQ(gguf::File::open(path)->tensor("blk.0.ffn_down.weight")->type,
                (uint32_t)ggml::kF16);
    }
    LoadReport r;
    const ModelWeights m = load_model(path, {}, &r);
    // down (K = 320) is f16 with the exact values; the K = 256 layers are i2_s.
    EXPECT_EQ(m.layers[0].w_down.format, Format::kF16);
    EXPECT_EQ(m.layers[0].w_gate.format, Format::kI2S);
    std::vector<float> got(256 * 320), want(256 * 320);
    format_traits(Format::kF16).unpack(m.layers[0].w_down, got.data());
    gen->float_rows(0, Proj::kDown, 0, 256, want.data());
    EXPECT_EQ(got, want);
    EXPECT_EQ(ternary_of(m.layers[0].w_up).scale, gen->scale(0, Proj::kUp));
    if (fmt == "safetensors") {
      EXPECT_FALSE(r.notes.empty());
    }
  }
}

// The fallback type of a layer whose K no block holds: F16 only when every t * scale (t in
// {-1, 0, 1}) is exact in f16, that is when the scale is; else F32.
TEST(LoaderFallback, InexactScalesFallBackToF32) {
  // 0.1f needs all 24 bits of a float's significand; f16 keeps 11. 0.375 = 3/8 fits.
  EXPECT_EQ(linear_tensor_type(LinearFormat::kI2S, 320, 0.1f), (uint32_t)ggml::kF32);
  EXPECT_EQ(linear_tensor_type(LinearFormat::kTQ2_0, 320, 0.1f), (uint32_t)ggml::kF32);
  EXPECT_EQ(linear_tensor_type(LinearFormat::kTQ1_0, 128, 0.1f), (uint32_t)ggml::kF32);
  // 1e-8 is below f16's smallest subnormal (2^-24 ~ 6e-8).
  EXPECT_EQ(linear_tensor_type(LinearFormat::kI2S, 320, 1e-8f), (uint32_t)ggml::kF32);
  EXPECT_EQ(linear_tensor_type(LinearFormat::kI2S, 320, 0.375f), (uint32_t)ggml::kF16);
  EXPECT_EQ(linear_tensor_type(LinearFormat::kTQ2_0, 128, 0.375f), (uint32_t)ggml::kF16);
  // K a multiple of the block: the format's own type whatever the scale.
  EXPECT_EQ(linear_tensor_type(LinearFormat::kI2S, 128, 0.1f), (uint32_t)ggml::kI2_S);
  EXPECT_EQ(linear_tensor_type(LinearFormat::kTQ2_0, 256, 0.1f), (uint32_t)ggml::kTQ2_0);
  EXPECT_EQ(linear_tensor_type(LinearFormat::kTQ1_0, 512, 0.1f), (uint32_t)ggml::kTQ1_0);
}

// ---- rewriting a GGUF file with one thing wrong -----------------------------------------------
struct Edit {
  std::function<void(std::vector<std::pair<std::string, gguf::Value>>&)> meta;
  // Return false to drop the tensor; may change type/shape/data.
  std::function<bool(std::string& name, uint32_t& type, std::vector<int64_t>& ne,
                     std::vector<uint8_t>& data)>
      tensor;
};

std::string rewrite(const std::string& src, const std::string& dst, const Edit& e) {
  const auto f = gguf::File::open(src);
  auto kv = f->metadata();
  if (e.meta) e.meta(kv);
  struct T {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<T> ts;
  for (const auto& t : f->tensors()) {
    T x{t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.bytes)};
    if (e.tensor && !e.tensor(x.name, x.type, x.ne, x.data)) continue;
    ts.push_back(std::move(x));
  }
  gguf::Writer w(dst);
  for (auto& [k, v] : kv) w.set(k, v);
  for (const auto& t : ts) w.add_tensor(t.name, t.type, t.ne);
  for (const auto& t : ts) w.write_tensor(t.name, t.data.data(), t.data.size());
  w.finish();
  return dst;
}

void expect_load_error(const std::string& path, const std::vector<std::string>& fragments) {
  try {
    load_model(path);
    ADD_FAILURE() << path << " loaded; expected " << fragments[0];
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

TEST(LoaderHostile, GgufModelErrorsNameTheFileAndTensor) {
  const std::string src = tiny_files().i2s;
  const std::string dir = scratch_dir("hostile_model");
  auto drop = [](const std::string& victim) {
    Edit e;
    e.tensor = [victim](std::string& n, uint32_t&, std::vector<int64_t>&, std::vector<uint8_t>&) {
      return n != victim;
    };
    return e;
  };
  expect_load_error(rewrite(src, dir + "/no_q.gguf", drop("blk.1.attn_q.weight")),
                    {"blk.1.attn_q.weight", "missing"});
  expect_load_error(rewrite(src, dir + "/no_embd.gguf", drop("token_embd.weight")),
                    {"token_embd.weight", "missing"});
  expect_load_error(rewrite(src, dir + "/no_subnorm.gguf", drop("blk.0.ffn_sub_norm.weight")),
                    {"blk.0.ffn_sub_norm.weight", "missing"});
  {
    Edit e;  // attn_k with the shape of attn_q
    e.tensor = [](std::string& n, uint32_t& t, std::vector<int64_t>& ne, std::vector<uint8_t>& d) {
      if (n == "blk.0.attn_k.weight") {
        ne = {256, 256};
        d.assign((size_t)ggml::tensor_bytes(t, ne, "x"), 0x55);
      }
      return true;
    };
    expect_load_error(rewrite(src, dir + "/shape.gguf", e),
                      {"blk.0.attn_k.weight", "[256, 256]", "expected [256, 128]"});
  }
  {
    Edit e;  // an embedding type nobody can read
    e.tensor = [](std::string& n, uint32_t& t, std::vector<int64_t>& ne, std::vector<uint8_t>& d) {
      if (n == "token_embd.weight") {
        t = ggml::kQ4_K;
        d.assign((size_t)ggml::tensor_bytes(t, ne, "x"), 0);
      }
      return true;
    };
    expect_load_error(rewrite(src, dir + "/q4k.gguf", e), {"token_embd.weight", "Q4_K"});
  }
  {
    Edit e;  // code 3 inside I2_S data
    e.tensor = [](std::string& n, uint32_t&, std::vector<int64_t>&, std::vector<uint8_t>& d) {
      if (n == "blk.1.ffn_up.weight") d[100] = 0xC0;
      return true;
    };
    expect_load_error(rewrite(src, dir + "/code3.gguf", e),
                      {"blk.1.ffn_up.weight", "code 3", "byte 100"});
  }
  {
    Edit e;  // NaN scale in the I2_S tail
    e.tensor = [](std::string& n, uint32_t&, std::vector<int64_t>&, std::vector<uint8_t>& d) {
      if (n == "blk.0.attn_v.weight") {
        const float nan = NAN;
        std::memcpy(d.data() + d.size() - 32, &nan, 4);
      }
      return true;
    };
    expect_load_error(rewrite(src, dir + "/nan.gguf", e), {"blk.0.attn_v.weight", "not finite"});
  }
  auto meta = [](std::function<void(std::vector<std::pair<std::string, gguf::Value>>&)> fn) {
    Edit e;
    e.meta = std::move(fn);
    return e;
  };
  auto set_key = [](std::vector<std::pair<std::string, gguf::Value>>& kv, const std::string& k,
                    gguf::Value v) {
    for (auto& x : kv) {
      if (x.first == k) x.second = v;
    }
  };
  expect_load_error(rewrite(src, dir + "/arch.gguf", meta([&](auto& kv) {
                              set_key(kv, "general.architecture", gguf::Value::str("llama"));
                            })),
                    {"general.architecture", "llama"});
  expect_load_error(rewrite(src, dir + "/layers.gguf", meta([&](auto& kv) {
                              set_key(kv, "bitnet-b1.58.block_count", gguf::Value::u64(1u << 30));
                            })),
                    {"block count"});
  expect_load_error(rewrite(src, dir + "/layers3.gguf", meta([&](auto& kv) {
                              set_key(kv, "bitnet-b1.58.block_count", gguf::Value::u32(3));
                            })),
                    {"blk.2.attn_norm.weight", "missing"});
  {
    // Fewer blocks than the file holds: it loads, and the ignored tensors are named.
    const std::string one = rewrite(src, dir + "/layers1.gguf", meta([&](auto& kv) {
                                      set_key(kv, "bitnet-b1.58.block_count", gguf::Value::u32(1));
                                    }));
    LoadReport rep;
    const ModelWeights w = load_model(one, {}, &rep);
    EXPECT_EQ(w.hp.layers, 1);
    bool noted = false;
    for (const auto& n : rep.notes) {
      noted = noted || n == "11 tensors of blocks from blk.1 on are ignored: block_count is 1";
    }
    EXPECT_TRUE(noted) << ::testing::PrintToString(rep.notes);
  }
  expect_load_error(rewrite(src, dir + "/heads.gguf", meta([&](auto& kv) {
                              set_key(kv, "bitnet-b1.58.attention.head_count_kv",
                                      gguf::Value::u32(3));
                            })),
                    {"KV head count 3"});
  expect_load_error(rewrite(src, dir + "/hidden.gguf", meta([&](auto& kv) {
                              set_key(kv, "bitnet-b1.58.embedding_length", gguf::Value::str("256"));
                            })),
                    {"embedding_length", "expected an integer"});
  expect_load_error(rewrite(src, dir + "/vocab.gguf", meta([&](auto& kv) {
                              set_key(kv, "bitnet-b1.58.vocab_size", gguf::Value::u32(999));
                            })),
                    {"vocab_size", "999"});
  expect_load_error(rewrite(src, dir + "/bos.gguf", meta([&](auto& kv) {
                              set_key(kv, "tokenizer.ggml.bos_token_id", gguf::Value::u32(5000));
                            })),
                    {"bos_token_id", "5000"});
  // A SentencePiece vocabulary would be tokenized as byte-level BPE, and a token text listed
  // twice makes encoding pick one id where the special-token ids may name the other: either
  // vocabulary is left out with a note (not misread); the weights still load.
  const auto no_vocab = [&](const std::string& path, const std::string& why) {
    LoadReport rep;
    const ModelWeights w = load_model(path, {}, &rep);
    EXPECT_TRUE(w.tokenizer.tokens.empty()) << path;
    EXPECT_EQ(w.hp.layers, 2) << path;
    bool noted = false;
    for (const auto& n : rep.notes) noted = noted || n.find(why) != std::string::npos;
    EXPECT_TRUE(noted) << why << ": " << ::testing::PrintToString(rep.notes);
  };
  no_vocab(rewrite(src, dir + "/spm.gguf", meta([&](auto& kv) {
             set_key(kv, "tokenizer.ggml.model", gguf::Value::str("llama"));
           })),
           "tokenizer.ggml.model is 'llama'");
  no_vocab(rewrite(src, dir + "/dup.gguf", meta([&](auto& kv) {
             for (auto& x : kv) {
               if (x.first == "tokenizer.ggml.tokens") x.second.arr[7] = x.second.arr[9];
             }
           })),
           "twice (ids 7 and 9)");
}

TEST(LoaderHostile, ActivationKeyIsOverriddenWithANote) {
  const std::string dir = scratch_dir("act");
  Edit e;
  e.meta = [](auto& kv) { kv.emplace_back("bitnet-b1.58.hidden_act", gguf::Value::str("silu")); };
  const std::string path = rewrite(tiny_files().i2s, dir + "/silu.gguf", e);
  LoadReport r;
  const ModelWeights m = load_model(path, {}, &r);
  EXPECT_EQ(m.hp.activation, "relu2");
  bool noted = false;
  for (const auto& n : r.notes) noted = noted || n.find("silu") != std::string::npos;
  EXPECT_TRUE(noted);
}

// Optional hyperparameter keys: llama.cpp's defaults when missing (RoPE base 10000, RMSNorm
// epsilon 1e-5), each with a note; an epsilon outside (0, 1] is refused.
TEST(LoaderHostile, MissingRopeBaseAndEpsilonTakeLlamaCppDefaults) {
  const std::string dir = scratch_dir("defaults");
  const std::string src = tiny_files().i2s;
  const ModelWeights orig = load_model(src);
  ASSERT_NE(orig.hp.rope_theta, 10000.0f);  // the file's own base is not the default
  Edit drop;
  drop.meta = [](auto& kv) {
    std::vector<std::pair<std::string, gguf::Value>> keep;
    for (auto& x : kv) {
      if (x.first != "bitnet-b1.58.rope.freq_base" &&
          x.first != "bitnet-b1.58.attention.layer_norm_rms_epsilon") {
        keep.push_back(x);
      }
    }
    kv = keep;
  };
  LoadReport r;
  const ModelWeights m = load_model(rewrite(src, dir + "/nokeys.gguf", drop), {}, &r);
  EXPECT_EQ(m.hp.rope_theta, 10000.0f);
  EXPECT_EQ(m.hp.rms_eps, 1e-5f);
  bool rope_noted = false, eps_noted = false;
  for (const auto& n : r.notes) {
    rope_noted = rope_noted || n.find("rope.freq_base missing") != std::string::npos;
    eps_noted = eps_noted || n.find("layer_norm_rms_epsilon missing") != std::string::npos;
  }
  EXPECT_TRUE(rope_noted) << ::testing::PrintToString(r.notes);
  EXPECT_TRUE(eps_noted) << ::testing::PrintToString(r.notes);
  for (float eps : {2.0f, 0.0f, -1e-5f}) {
    Edit e;
    e.meta = [eps](auto& kv) {
      for (auto& x : kv) {
        if (x.first == "bitnet-b1.58.attention.layer_norm_rms_epsilon") {
          x.second = gguf::Value::f32(eps);
        }
      }
    };
    expect_load_error(rewrite(src, dir + "/eps.gguf", e), {"RMSNorm epsilon"});
  }
}

// A TQ layer whose blocks do not share one scale cannot become I2_S (one scale per tensor): it
// is kept as f32 holding exactly the dequantized TQ values, with a note, whether a later block's
// scale is above the first or below it. One f16 step either way still counts as the same scale.
void check_block_scale_shift(const std::string& dir, int sign) {
  Edit e;
  e.tensor = [sign](std::string& n, uint32_t& t, std::vector<int64_t>&, std::vector<uint8_t>& d) {
    if (n == "blk.0.attn_q.weight" || n == "blk.0.attn_k.weight") {
      EXPECT_EQ(t, (uint32_t)ggml::kTQ2_0);
      uint16_t h;
      std::memcpy(&h, d.data() + 66 + 64, 2);  // the second block's scale
      h = (uint16_t)(h + sign * (n == "blk.0.attn_q.weight" ? 8 : 1));
      std::memcpy(d.data() + 66 + 64, &h, 2);
    }
    return true;
  };
  const std::string path = rewrite(tiny_files().tq2, dir + "/tq.gguf", e);
  LoadReport r;
  const ModelWeights m = load_model(path, {}, &r);
  ASSERT_EQ(m.layers[0].wq.format, Format::kF32);
  EXPECT_EQ(m.layers[0].wk.format, Format::kI2S);
  EXPECT_EQ(m.layers[0].wv.format, Format::kI2S);
  bool noted = false;
  for (const auto& n : r.notes) noted = noted || n.find("block scales differ") != std::string::npos;
  EXPECT_TRUE(noted);
  const auto f = gguf::File::open(path);
  const gguf::TensorInfo* t = f->tensor("blk.0.attn_q.weight");
  std::vector<float> want(256 * 256), got(256 * 256);
  ggml::dequantize_rows(t->type, t->data, 256, 256, 0, 256, want.data());
  format_traits(Format::kF32).unpack(m.layers[0].wq, got.data());
  EXPECT_EQ(got, want);
}

TEST(LoaderTq, DifferingBlockScalesKeepF32) {
  check_block_scale_shift(scratch_dir("tqscale"), +1);
}

TEST(LoaderTq, LowerBlockScalesKeepF32Too) {
  check_block_scale_shift(scratch_dir("tqscale_down"), -1);
}

// ---- Hugging Face specifics -------------------------------------------------------------------
TEST(LoaderHf, Bf16MastersAreTernarizedWithAbsmean) {
  const std::string dir = scratch_dir("bf16");
  const std::string src_dir = tiny_files().hf;
  const auto packed = safetensors::File::open(src_dir + "/model.safetensors");
  std::mt19937_64 rng(11);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::map<std::string, std::vector<float>> masters;
  {
    safetensors::Writer w(dir + "/model.safetensors");
    for (const auto& t : packed->tensors()) {
      if (t.name.find("weight_scale") != std::string::npos) continue;
      if (t.dtype == "U8") {
        w.add_tensor(t.name, "BF16", {t.shape[0] * 4, t.shape[1]});
      } else {
        w.add_tensor(t.name, t.dtype, t.shape);
      }
    }
    for (const auto& t : packed->tensors()) {
      if (t.name.find("weight_scale") != std::string::npos) continue;
      if (t.dtype != "U8") {
        w.write_tensor(t.name, t.data, (size_t)t.bytes);
        continue;
      }
      std::vector<float>& m = masters[t.name];
      std::vector<uint8_t> b;
      for (int64_t i = 0; i < t.shape[0] * 4 * t.shape[1]; ++i) {
        const uint16_t h = ggml::float_to_bf16(nd(rng));
        m.push_back(ggml::bf16_to_float(h));
        b.push_back((uint8_t)h);
        b.push_back((uint8_t)(h >> 8));
      }
      w.write_tensor(t.name, b.data(), b.size());
    }
    w.finish();
  }
  testing::write_bytes(dir + "/config.json", testing::read_bytes(src_dir + "/config.json"));
  LoadReport r;
  const ModelWeights m = load_model(dir, {}, &r);
  EXPECT_NE(r.source.find("float masters"), std::string::npos);
  const std::vector<float>& w = masters["model.layers.1.mlp.down_proj.weight"];
  std::vector<int8_t> t(w.size());
  const float scale = ternarize_absmean(w.data(), (int64_t)w.size(), t.data());
  const TernaryMatrix got = ternary_of(m.layers[1].w_down);
  EXPECT_EQ(got.t, t);
  EXPECT_EQ(got.scale, scale);
  EXPECT_EQ(m.layers[1].w_down.format, Format::kI2S);
}

TEST(LoaderHf, HostileCheckpoints) {
  const std::string src = tiny_files().hf;
  const std::string config = testing::read_text(src + "/config.json");
  const auto file = safetensors::File::open(src + "/model.safetensors");
  const std::vector<uint8_t> bytes = testing::read_bytes(src + "/model.safetensors");
  auto load_bytes = [&](std::vector<uint8_t> b, const std::string& cfg) {
    return load_hf_parts({safetensors::File::parse(MappedFile::from_bytes(std::move(b), "m.st"))},
                         cfg, "config.json");
  };
  EXPECT_NO_THROW(load_bytes(bytes, config));
  auto expect = [&](std::function<void()> fn, const std::vector<std::string>& fragments) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected " << fragments[0];
    } catch (const Error& e) {
      for (const auto& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  };
  // Code 3 in the packed weights.
  {
    std::vector<uint8_t> b = bytes;
    const auto* t = file->tensor("model.layers.0.mlp.up_proj.weight");
    b[(size_t)(file->data_offset() + t->begin + 5)] = 0x03;
    expect([&] { load_bytes(b, config); }, {"m.st", "up_proj.weight", "code 3"});
  }
  // weight_scale zero (it divides).
  {
    std::vector<uint8_t> b = bytes;
    const auto* t = file->tensor("model.layers.1.self_attn.o_proj.weight_scale");
    b[(size_t)(file->data_offset() + t->begin)] = 0;
    b[(size_t)(file->data_offset() + t->begin + 1)] = 0;
    expect([&] { load_bytes(b, config); }, {"o_proj.weight_scale", "positive"});
  }
  // Config lies about the shape or is not JSON.
  std::string bad = config;
  bad.replace(bad.find("\"intermediate_size\": 512"), 24, "\"intermediate_size\": 768");
  expect([&] { load_bytes(bytes, bad); }, {"ffn_sub_norm.weight", "expected [768]"});
  expect([&] { load_bytes(bytes, "{\"hidden_size\": 256"); }, {"config.json"});
  std::string nolayers = config;
  nolayers.replace(nolayers.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 3");
  expect([&] { load_bytes(bytes, nolayers); }, {"layers.2", "missing"});
  // Header: absurd length, truncated data, bad offsets.
  {
    std::vector<uint8_t> b = bytes;
    const uint64_t huge = 1ull << 62;
    std::memcpy(b.data(), &huge, 8);
    expect([&] { load_bytes(b, config); }, {"m.st", "header length"});
  }
  {
    std::vector<uint8_t> b(bytes.begin(), bytes.end() - 100);
    expect([&] { load_bytes(b, config); }, {"m.st", "extends past the end"});
  }
  // Missing config / directory.
  expect([&] { load_model(scratch_dir("empty")); }, {"config.json", "missing"});
  expect([&] { load_model("/nonexistent/model.gguf"); }, {"/nonexistent/model.gguf"});
}

TEST(Safetensors, RoundTripAndValidation) {
  const std::string path = scratch_dir("st") + "/x.safetensors";
  {
    safetensors::Writer w(path);
    w.set_metadata("format", "pt");
    w.add_tensor("a", "F32", {2, 3});
    w.add_tensor("b", "U8", {5});
    w.add_tensor("c", "BF16", {0});
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const uint8_t b[5] = {9, 8, 7, 6, 5};
    w.write_tensor("a", a, sizeof a);
    w.write_tensor("b", b, sizeof b);
    w.write_tensor("c", nullptr, 0);
    w.finish();
  }
  const auto f = safetensors::File::open(path);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->data_offset() % 8, 0u);
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->tensor("a")->shape, (std::vector<int64_t>{2, 3}));
  float a5;
  std::memcpy(&a5, f->tensor("a")->data + 20, 4);
  EXPECT_EQ(a5, 6.0f);
  EXPECT_EQ(f->tensor("b")->data[4], 5);
  const std::vector<uint8_t> full = testing::read_bytes(path);
  int errors = 0;
  for (size_t len = 0; len < full.size(); ++len) {
    try {
      safetensors::File::parse(MappedFile::from_bytes(
          std::vector<uint8_t>(full.begin(), full.begin() + (long)len), "cut.st"));
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("cut.st"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(errors, (int)full.size());
  auto header = [](const std::string& json) {
    std::vector<uint8_t> b(8 + json.size() + 64, 0);
    const uint64_t n = json.size();
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, json.data(), json.size());
    return b;
  };
  auto expect_bad = [&](const std::string& json, const std::string& fragment) {
    try {
      safetensors::File::parse(MappedFile::from_bytes(header(json), "h.st"));
      ADD_FAILURE() << json;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_bad(R"({"t": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}})", "unknown dtype");
  expect_bad(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", "needs 8");
  expect_bad(R"({"t": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}})",
             "past the end");
  expect_bad(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "shape");
  expect_bad(R"({"t": {"dtype": "U8", "shape": [9999999999, 9999999999], "data_offsets": [0, 4]}})",
             "overflows");
  expect_bad(R"({"t": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                 "u": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}})",
             "overlap");
  expect_bad(R"({"t": [1, 2]})", "not an object");
  expect_bad(R"({"t": {"dtype": "U8"}})", "data_offsets");
  expect_bad(R"([1])", "does not start");
}

// The named shapes that are published models, from their config.json:
// microsoft/bitnet-b1.58-2B-4T (GQA: 20 heads over 5 key/value heads of 128, rope_theta
// 500000), 1bitLLM/bitnet_b1_58-3B and bitnet_b1_58-large, the papers' 700M.
TEST(SyntheticShapes, PublishedShapesAreTheirConfigs) {
  struct Want {
    const char* name;
    int64_t hidden, ffn, layers, heads, kv_heads, vocab, context, head_dim;
  };
  for (const Want& w : {Want{"2b4t", 2560, 6912, 30, 20, 5, 128256, 4096, 128},
                        Want{"3b", 3200, 8640, 26, 32, 32, 32002, 2048, 100},
                        Want{"700m", 1536, 4096, 24, 16, 16, 32002, 2048, 96}}) {
    SCOPED_TRACE(w.name);
    const ModelShape& s = find_shape(w.name);
    EXPECT_EQ(s.hidden, w.hidden);
    EXPECT_EQ(s.ffn, w.ffn);
    EXPECT_EQ(s.layers, w.layers);
    EXPECT_EQ(s.heads, w.heads);
    EXPECT_EQ(s.kv_heads, w.kv_heads);
    EXPECT_EQ(s.vocab, w.vocab);
    EXPECT_EQ(shape_hparams(s).head_dim, w.head_dim);
    EXPECT_EQ(shape_hparams(s).kv_heads, w.kv_heads);
    EXPECT_EQ(s.context, w.context);
  }
  EXPECT_EQ(find_shape("2b4t").rope_theta, 500000.0f);
  EXPECT_EQ(shape_hparams(find_shape("2b4t")).activation, "relu2");
}

// A head dimension other than hidden / heads is written as attention.key_length and
// value_length (llama.cpp's default is hidden / heads); tritune's loader refuses such a model
// (BitNet's attn_sub_norm needs heads x head_dim = hidden), but the file must still say it.
// hidden 256 over 4 heads of 32; the tiny shape's own 4 x 64 needs no key.
TEST(LoaderGguf, HeadDimOtherThanHiddenOverHeadsIsWritten) {
  HParams hp = shape_hparams(find_shape("tiny"));
  hp.head_dim = 32;  // q: 4 x 32 = 128 rows, not 256
  const std::string dir = scratch_dir("headdim");
  GgufModelOptions g;
  g.linear = LinearFormat::kI2S;
  write_gguf_model(*synthetic_source(hp, kSeed), dir + "/narrow_heads.gguf", g);
  const auto f = gguf::File::open(dir + "/narrow_heads.gguf");
  EXPECT_EQ(f->get_int(hp.arch + ".attention.key_length", -1), 32);
  EXPECT_EQ(f->get_int(hp.arch + ".attention.value_length", -1), 32);
  EXPECT_EQ(f->get_int(hp.arch + ".rope.dimension_count", -1), 32);
  EXPECT_THROW(load_model(dir + "/narrow_heads.gguf"), Error);
  write_gguf_model(*synthetic_source(shape_hparams(find_shape("tiny")), kSeed), dir + "/tiny.gguf",
                   g);
  const auto t = gguf::File::open(dir + "/tiny.gguf");
  EXPECT_EQ(t->find(hp.arch + ".attention.key_length"), nullptr);
  EXPECT_EQ(load_model(dir + "/tiny.gguf").hp.head_dim, 64);
}

// llama.cpp's optional per-tensor scale "blk.N.attn_q.scale" (the weight's name with ".weight"
// replaced by ".scale") multiplies into that tensor only.
TEST(LoaderGguf, PerTensorScaleMultipliesIntoItsWeight) {
  const std::string dir = scratch_dir("tscale");
  const std::string path = dir + "/scaled.gguf";
  {
    const auto f = gguf::File::open(tiny_files().i2s);
    gguf::Writer w(path);
    for (const auto& [k, v] : f->metadata()) w.set(k, v);
    for (const auto& t : f->tensors()) w.add_tensor(t.name, t.type, t.ne);
    w.add_tensor("blk.1.attn_q.scale", ggml::kF32, {1});
    for (const auto& t : f->tensors()) w.write_tensor(t.name, t.data, (size_t)t.bytes);
    const float quarter = 0.25f;
    w.write_tensor("blk.1.attn_q.scale", &quarter, sizeof quarter);
    w.finish();
  }
  const ModelWeights m = load_model(path);
  const HParams hp = shape_hparams(find_shape("tiny"));
  const auto gen = synthetic_source(hp, kSeed, false);
  const TernaryMatrix q = ternary_of(m.layers[1].wq);
  EXPECT_EQ(q.scale, gen->scale(1, Proj::kQ) * 0.25f);  // powers of two: exact
  std::vector<int8_t> want((size_t)(q.n * q.k));
  gen->ternary_rows(1, Proj::kQ, 0, q.n, want.data());
  EXPECT_EQ(q.t, want);
  // The other tensors keep their own scales.
  EXPECT_EQ(ternary_of(m.layers[0].wq).scale, gen->scale(0, Proj::kQ));
  EXPECT_EQ(ternary_of(m.layers[1].wk).scale, gen->scale(1, Proj::kK));
}

// config.json without "head_dim" (as in many HF BitNet/LLaMA configs): hidden_size /
// num_attention_heads, i.e. 256 / 4 = 64 for the tiny shape (GQA 4/2).
TEST(LoaderHf, MissingHeadDimIsHiddenOverAttentionHeads) {
  const std::string src = tiny_files().hf;
  const json::Value cfg = json::parse(testing::read_text(src + "/config.json"));
  ASSERT_NE(cfg.find("head_dim"), nullptr);
  json::Value no_dim = json::Value::object();
  for (const auto& [k, v] : cfg.members()) {
    if (k != "head_dim") no_dim.set(k, v);
  }
  const ModelWeights m = load_hf_parts({safetensors::File::open(src + "/model.safetensors")},
                                       json::dump(no_dim), "config.json");
  EXPECT_EQ(m.hp.heads, 4);
  EXPECT_EQ(m.hp.kv_heads, 2);
  EXPECT_EQ(m.hp.head_dim, 64);
  EXPECT_EQ(m.layers[0].wk.n, 2 * 64);
}

// Element sizes from the safetensors format: 8 bytes for F64/I64/U64, 4 for F32/I32/U32, 2 for
// F16/BF16/I16/U16, 1 for I8/U8/BOOL/F8_*. A tensor of 3 elements spans exactly 3 * size bytes.
TEST(Safetensors, DtypeSizesFollowTheFormat) {
  const std::vector<std::pair<std::string, int>> sizes = {
      {"F64", 8}, {"I64", 8}, {"U64", 8},  {"F32", 4},     {"I32", 4},
      {"U32", 4}, {"F16", 2}, {"BF16", 2}, {"I16", 2},     {"U16", 2},
      {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  auto parse = [](const std::string& dtype, int bytes) {
    const std::string json = "{\"t\": {\"dtype\": \"" + dtype +
                             "\", \"shape\": [3], \"data_offsets\": [0, " + std::to_string(bytes) +
                             "]}}";
    std::vector<uint8_t> b(8 + json.size() + 64, 0);
    const uint64_t n = json.size();
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, json.data(), json.size());
    return safetensors::File::parse(MappedFile::from_bytes(b, "d.st"));
  };
  for (const auto& [dtype, size] : sizes) {
    SCOPED_TRACE(dtype);
    EXPECT_NO_THROW(parse(dtype, 3 * size));
    EXPECT_THROW(parse(dtype, 3 * size + 1), Error);
    if (size > 1) {
      EXPECT_THROW(parse(dtype, 3 * size - 1), Error);
    }
  }
}

// Only regular files are mapped: a fifo (which would block a reader) and a device are named.
TEST(MappedFileOpen, RefusesWhatIsNotARegularFile) {
  const std::string dir = scratch_dir("mapped_nonreg");
  const std::string fifo = dir + "/fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  for (const std::string& path : {fifo, std::string("/dev/null"), dir}) {
    try {
      MappedFile::open(path);
      ADD_FAILURE() << path << " was opened";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  std::remove(fifo.c_str());
}

}  // namespace
}  // namespace tritune
