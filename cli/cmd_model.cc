// `tritune make-model`, `tritune convert` and `tritune inspect`: model files in and out.
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "kernels/error.h"
#include "kernels/json.h"
#include "kernels/memory_budget.h"
#include "model/convert.h"
#include "model/ggml_types.h"
#include "model/gguf.h"
#include "model/loader.h"
#include "model/safetensors.h"
#include "model/synthetic.h"
#include "model/tokenizer.h"

namespace tritune::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t param_count(const HParams& hp, bool untied) {
  int64_t n = hp.vocab * hp.hidden * (untied ? 2 : 1) + hp.hidden;
  for (int p = 0; p < (int)Proj::kCount; ++p) {
    const auto [rows, cols] = proj_shape(hp, (Proj)p);
    n += hp.layers * rows * cols;
  }
  for (int i = 0; i < (int)NormId::kCount; ++i) n += hp.layers * norm_size(hp, (NormId)i);
  return n;
}

void print_hparams(const HParams& hp) {
  std::printf("architecture  %s\n", hp.arch.c_str());
  std::printf(
      "shape         hidden %lld, ffn %lld, layers %lld, heads %lld (kv %lld, dim %lld), "
      "vocab %lld, context %lld\n",
      (long long)hp.hidden, (long long)hp.ffn, (long long)hp.layers, (long long)hp.heads,
      (long long)hp.kv_heads, (long long)hp.head_dim, (long long)hp.vocab, (long long)hp.context);
  std::printf("rope / norm   theta %g, rms eps %g, activation %s\n", hp.rope_theta, hp.rms_eps,
              hp.activation.c_str());
}

// ---- make-model ------------------------------------------------------------------------------
int run_make_model(const std::vector<std::string>& argv) {
  std::string shapes;
  for (const auto& s : model_shapes()) shapes += (shapes.empty() ? "" : "|") + s.name;
  Args args(
      "make-model",
      "Write a random-weight BitNet b1.58 model of a named shape: ternary linear layers with\n"
      "a power-of-two scale per tensor, norms near 1, small embeddings and the built-in\n"
      "tokenizer. The same --shape and --seed give the same weights in every format.\n"
      "Written tensor by tensor, so any size fits in memory.");
  args.option("--shape", "NAME", shapes)
      .option("--format", "FMT", "i2_s | tq2_0 | tq1_0 | f16 | f32 | safetensors (a directory)",
              "i2_s")
      .option("--embd-type", "T", "embedding type: f16 | q8_0 | q6_k | f32 | bf16", "f16")
      .option("--seed", "N", "random seed", "1")
      .option("--layers", "N", "override the shape's layer count")
      .option("--arch", "NAME",
              "GGUF architecture name: bitnet-b1.58 | bitnet (llama.cpp's name; its llama-bench "
              "loads the file) | bitnet-25 (default: the shape's)")
      .flag("--untied-output", "write a separate output matrix (default: tied to the embedding)")
      .flag("--list-shapes", "list the shapes and exit")
      .option("-o", "PATH", "output file (a directory for --format safetensors)");
  if (!args.parse(argv)) return 0;
  if (args.has("--list-shapes")) {
    std::printf("%-6s %7s %7s %6s %6s %4s %7s  %s\n", "shape", "hidden", "ffn", "layers", "heads",
                "kv", "vocab", "params");
    for (const auto& s : model_shapes()) {
      const HParams hp = shape_hparams(s);
      std::printf("%-6s %7lld %7lld %6lld %6lld %4lld %7lld  %6.2fB  %s\n", s.name.c_str(),
                  (long long)s.hidden, (long long)s.ffn, (long long)s.layers, (long long)s.heads,
                  (long long)s.kv_heads, (long long)s.vocab, param_count(hp, false) / 1e9,
                  s.doc.c_str());
    }
    return 0;
  }
  if (!args.has("--shape")) throw Error("--shape is required (" + shapes + ")");
  if (!args.has("-o")) throw Error("-o PATH is required");
  SyntheticOptions o;
  o.shape = find_shape(args.get("--shape"));
  o.format = args.get("--format");
  if (o.format != "safetensors") parse_linear_format(o.format);  // validate early
  o.embd_type = embd_type_arg(args);
  o.seed = seed_arg(args);
  o.layers = args.has("--layers") ? args.get_int("--layers") : 0;
  if (args.has("--layers") && (o.layers < 1 || o.layers > 4096)) {
    throw Error("--layers must be 1..4096");
  }
  if (o.format == "safetensors" && o.embd_type != UINT32_MAX && o.embd_type != ggml::kBF16) {
    throw Error("the safetensors (HF) layout stores embeddings as BF16; drop --embd-type");
  }
  o.untied_output = args.has("--untied-output");
  if (args.has("--arch")) {
    if (o.format == "safetensors")
      throw Error("--arch names a GGUF architecture; drop it for safetensors");
    o.arch = args.get("--arch");
    check_gguf_architecture(o.arch, "--arch");
  }
  HParams hp = shape_hparams(o.shape);
  if (o.layers > 0) hp.layers = o.layers;
  const std::string out = args.get("-o");
  check_model_output(out, o.format == "safetensors",
                     "name it .gguf, or write the Hugging Face layout with --format safetensors "
                     "(-o names a directory then)");
  const std::string layers =
      o.layers > 0 ? ", " + std::to_string(hp.layers) + " layers (--layers)" : "";
  std::printf("writing %s (%s, %.3fB parameters%s) as %s to %s\n", o.shape.name.c_str(),
              o.shape.doc.c_str(), param_count(hp, o.untied_output) / 1e9, layers.c_str(),
              o.format.c_str(), out.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  const WriteSummary s = write_synthetic_model(o, out);
  for (const auto& n : s.notes) std::printf("note: %s\n", n.c_str());
  const double secs = seconds_since(t0);
  std::printf("wrote %lld tensors, %s in %.1f s (%s/s)\n", (long long)s.tensors,
              human_bytes((double)s.bytes).c_str(), secs,
              human_bytes((double)s.bytes / std::max(secs, 1e-9)).c_str());
  return 0;
}

// ---- convert ---------------------------------------------------------------------------------
int run_convert(const std::vector<std::string>& argv) {
  Args args("convert",
            "Convert a BitNet model (GGUF, HF packed or BF16 safetensors) to GGUF. Ternary layers\n"
            "keep their exact values and scale (tq2_0/tq1_0 store it as f16 per 256-block); float\n"
            "layers are ternarized with absmean for ternary formats.");
  args.option("-i", "PATH", "input model (GGUF file, .safetensors file or HF directory)")
      .option("-o", "FILE", "output GGUF file")
      .option("--format", "FMT", "linear layers: i2_s | tq2_0 | tq1_0 | f16 | f32", "i2_s")
      .option("--embd-type", "T",
              "embedding type: f16 | q8_0 | q6_k | f32 | bf16 (default: as "
              "stored)")
      .option("--arch", "NAME",
              "GGUF architecture name: bitnet-b1.58 | bitnet (llama.cpp's name) | bitnet-25 "
              "(default: as loaded)");
  if (!args.parse(argv)) return 0;
  if (!args.has("-i") || !args.has("-o")) {
    throw Error("-i IN and -o OUT.gguf are required");
  }
  ConvertOptions c;
  c.format = args.get("--format");
  parse_linear_format(c.format);
  c.embd_type = embd_type_arg(args);
  if (args.has("--arch")) {
    c.arch = args.get("--arch");
    check_gguf_architecture(c.arch, "--arch");
  }
  check_model_output(args.get("-o"), false,
                     "name it .gguf (convert writes GGUF only; tritune reads safetensors as they "
                     "are)");
  const auto t0 = std::chrono::steady_clock::now();
  LoadReport r;
  const ModelWeights w = load_model(args.get("-i"), {}, &r);
  std::printf("loaded %s (%s) in %.1f s\n", args.get("-i").c_str(), r.source.c_str(),
              seconds_since(t0));
  for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
  const auto t1 = std::chrono::steady_clock::now();
  const WriteSummary s = convert_to_gguf(w, args.get("-o"), c);
  for (const auto& n : s.notes) std::printf("note: %s\n", n.c_str());
  std::printf("wrote %s: %lld tensors, %s in %.1f s\n", args.get("-o").c_str(),
              (long long)s.tensors, human_bytes((double)s.bytes).c_str(), seconds_since(t1));
  return 0;
}

// ---- inspect ---------------------------------------------------------------------------------
void print_gguf(const gguf::File& f, bool all) {
  std::printf("GGUF v%u, %s, alignment %llu, data at offset %llu\n", f.version(),
              human_bytes((double)f.bytes()->size()).c_str(), (unsigned long long)f.alignment(),
              (unsigned long long)f.data_offset());
  std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
  for (const auto& [k, v] : f.metadata()) {
    std::printf("  %-44s %s\n", k.c_str(), v.summary(all ? SIZE_MAX : 6).c_str());
  }
  std::printf("\ntensors (%zu):\n", f.tensors().size());
  std::printf("  %-34s %-6s %-16s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
  size_t shown = 0;
  for (const auto& t : f.tensors()) {
    if (!all && shown++ >= 40 && f.tensors().size() > 48) {
      std::printf("  ... %zu more (--all shows every tensor)\n", f.tensors().size() - 40);
      break;
    }
    std::printf("  %-34s %-6s %-16s %12llu %12lld\n", t.name.c_str(),
                ggml::type_name(t.type).c_str(), t.shape_str().c_str(),
                (unsigned long long)t.file_offset, (long long)t.bytes);
  }
}

void print_safetensors(const safetensors::File& f, bool all) {
  std::printf("safetensors %s, %s, header %llu bytes\n", f.path().c_str(),
              human_bytes((double)f.bytes()->size()).c_str(),
              (unsigned long long)f.data_offset() - 8);
  for (const auto& [k, v] : f.metadata())
    std::printf("  __metadata__ %s = %s\n", k.c_str(), v.c_str());
  std::printf("\ntensors (%zu):\n", f.tensors().size());
  size_t shown = 0;
  for (const auto& t : f.tensors()) {
    if (!all && shown++ >= 40 && f.tensors().size() > 48) {
      std::printf("  ... %zu more (--all shows every tensor)\n", f.tensors().size() - 40);
      break;
    }
    std::printf("  %-52s %-5s %-16s %12llu %12lld\n", t.name.c_str(), t.dtype.c_str(),
                t.shape_str().c_str(), (unsigned long long)t.begin, (long long)t.bytes);
  }
}

// ---- inspect --json ----------------------------------------------------------------------------
// A metadata value as JSON: scalars as numbers, booleans and strings (non-finite floats as the
// strings "nan", "inf", "-inf": JSON has no spelling for them); arrays as {"type", "count",
// "items"}, items cut to the first 6 unless `all`.
json::Value metadata_json(const gguf::Value& v, bool all) {
  using gguf::ValueType;
  if (v.type == ValueType::kArray) {
    json::Value a = json::Value::object();
    a.set("type", std::string("array<") + gguf::value_type_name(v.elem) + ">");
    a.set("count", (int64_t)v.arr.size());
    json::Value items = json::Value::array();
    for (size_t k = 0; k < v.arr.size() && (all || k < 6); ++k) {
      items.push_back(metadata_json(v.arr[k], all));
    }
    a.set("items", std::move(items));
    return a;
  }
  if (v.type == ValueType::kBool) return json::Value(v.u != 0);
  if (v.type == ValueType::kString) return json::Value(v.s);
  if (v.is_float()) {
    if (std::isnan(v.f)) return json::Value("nan");
    if (std::isinf(v.f)) return json::Value(v.f > 0 ? "inf" : "-inf");
    return json::Value(v.f);
  }
  // Integers: signed types keep theirs in v.i, unsigned ones in v.u.
  const bool is_signed = v.type == ValueType::kI8 || v.type == ValueType::kI16 ||
                         v.type == ValueType::kI32 || v.type == ValueType::kI64;
  if (is_signed) return json::Value(v.i);
  if (v.u > (uint64_t)INT64_MAX) return json::Value((double)v.u);
  return json::Value((int64_t)v.u);
}

json::Value shape_json(const std::vector<int64_t>& shape) {
  json::Value a = json::Value::array();
  for (int64_t d : shape) a.push_back(d);
  return a;
}

json::Value gguf_json(const gguf::File& f, bool all) {
  json::Value o = json::Value::object();
  o.set("format", "gguf");
  o.set("version", (int64_t)f.version());
  o.set("bytes", (int64_t)f.bytes()->size());
  o.set("alignment", (int64_t)f.alignment());
  o.set("data_offset", (int64_t)f.data_offset());
  json::Value md = json::Value::object();
  for (const auto& [k, v] : f.metadata()) md.set(k, metadata_json(v, all));
  o.set("metadata", std::move(md));
  json::Value ts = json::Value::array();
  for (const auto& t : f.tensors()) {
    json::Value e = json::Value::object();
    e.set("name", t.name);
    e.set("type", ggml::type_name(t.type));
    e.set("shape", shape_json(t.ne));
    e.set("offset", (int64_t)t.file_offset);
    e.set("bytes", t.bytes);
    ts.push_back(std::move(e));
  }
  o.set("tensors", std::move(ts));
  return o;
}

json::Value safetensors_json(const safetensors::File& f) {
  json::Value o = json::Value::object();
  o.set("format", "safetensors");
  o.set("bytes", (int64_t)f.bytes()->size());
  o.set("data_offset", (int64_t)f.data_offset());
  json::Value md = json::Value::object();
  for (const auto& [k, v] : f.metadata()) md.set(k, v);
  o.set("metadata", std::move(md));
  json::Value ts = json::Value::array();
  for (const auto& t : f.tensors()) {
    json::Value e = json::Value::object();
    e.set("name", t.name);
    e.set("type", t.dtype);
    e.set("shape", shape_json(t.shape));
    e.set("offset", (int64_t)(f.data_offset() + t.begin));
    e.set("bytes", (int64_t)(t.end - t.begin));
    ts.push_back(std::move(e));
  }
  o.set("tensors", std::move(ts));
  return o;
}

int run_inspect(const std::vector<std::string>& argv) {
  Args args("inspect",
            "Print a model file's metadata and tensor table, then load it as a BitNet model and\n"
            "report hyper-parameters, what each layer type became, and resident memory.");
  args.option("-m", "PATH", "GGUF file, .safetensors file or HF model directory")
      .flag("--all", "print every array element and every tensor")
      .flag("--no-load", "only print the file's tables")
      .flag("--json",
            "print one JSON object: the file's metadata and tensor table (offset, bytes), and "
            "unless --no-load what it loaded as");
  if (!args.parse(argv)) return 0;
  if (!args.has("-m")) throw Error("-m PATH is required");
  const std::string path = args.get("-m");
  const bool all = args.has("--all");
  const bool as_json = args.has("--json");
  json::Value doc = json::Value::object();
  doc.set("file", path);
  const int64_t rss0 = resident_bytes();
  int64_t file_bytes = 0;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    throw Error(path + ": no such file or directory (expected a GGUF file, a .safetensors file "
                       "or a Hugging Face model directory)");
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    throw Error(path + ": not a regular file (a device, fifo or socket); give a model file");
  }
  if (is_gguf(path)) {
    const auto f = gguf::File::open(path);
    file_bytes = (int64_t)f->bytes()->size();
    if (as_json) {
      doc.set("file_tables", gguf_json(*f, all));
    } else {
      print_gguf(*f, all);
    }
  } else if (S_ISDIR(st.st_mode) || is_safetensors(path)) {
    // One file's table as an object; a sharded checkpoint's as {"format", "shards": [...]}.
    json::Value shards = json::Value::array();
    const std::vector<std::string> files = hf_weight_files(path);
    for (const std::string& name : files) {
      const auto f = safetensors::File::open(name);
      file_bytes += (int64_t)f->bytes()->size();
      if (as_json) {
        shards.push_back(safetensors_json(*f));
      } else {
        print_safetensors(*f, all);
      }
    }
    if (as_json && files.size() == 1) {
      doc.set("file_tables", shards[0]);
    } else if (as_json) {
      json::Value t = json::Value::object();
      t.set("format", "safetensors-sharded");
      t.set("shards", std::move(shards));
      doc.set("file_tables", std::move(t));
    }
  } else if (args.has("--no-load")) {
    throw Error(path + ": neither a GGUF file (no 'GGUF' magic) nor a safetensors file nor a "
                       "model directory");
  }
  if (args.has("--no-load")) {
    if (as_json) std::printf("%s\n", json::dump(doc, 1).c_str());
    return 0;
  }
  if (!as_json) std::printf("\nloading as a BitNet model:\n");
  const auto t0 = std::chrono::steady_clock::now();
  LoadReport r;
  const ModelWeights w = load_model(path, {}, &r);
  const double secs = seconds_since(t0);
  const int64_t rss1 = resident_bytes();
  const double params = param_count(w.hp, w.output.rows > 0);
  const std::string embd = ggml::type_name(w.tok_embd.ggml_type);
  const std::string output = w.output.rows ? ggml::type_name(w.output.ggml_type) : "tied";
  // The tokenizer is built as run builds it: a vocabulary that loads but cannot tokenize (bad
  // merges, a missing byte token) is reported here rather than at the first run.
  std::string tokenizer_error;
  if (!w.tokenizer.tokens.empty()) {
    try {
      Tokenizer::from_vocab(w.tokenizer);
    } catch (const Error& e) {
      tokenizer_error = e.what();
    }
  }
  if (as_json) {
    json::Value m = json::Value::object();
    m.set("source", r.source);
    m.set("load_seconds", secs);
    json::Value hp = json::Value::object();
    hp.set("arch", w.hp.arch);
    hp.set("hidden", w.hp.hidden);
    hp.set("ffn", w.hp.ffn);
    hp.set("layers", w.hp.layers);
    hp.set("heads", w.hp.heads);
    hp.set("kv_heads", w.hp.kv_heads);
    hp.set("head_dim", w.hp.head_dim);
    hp.set("vocab", w.hp.vocab);
    hp.set("context", w.hp.context);
    hp.set("rope_theta", (double)w.hp.rope_theta);
    hp.set("rms_eps", (double)w.hp.rms_eps);
    hp.set("activation", w.hp.activation);
    m.set("hparams", std::move(hp));
    m.set("params", (int64_t)params);
    m.set("embedding", embd);
    m.set("embedding_in_mapping", w.tok_embd.owned.empty());
    m.set("output", output);
    json::Value conv = json::Value::array();
    for (const auto& [c, n] : r.conversions) {
      json::Value e = json::Value::object();
      e.set("conversion", c);
      e.set("count", n);
      conv.push_back(std::move(e));
    }
    m.set("linear", std::move(conv));
    json::Value notes = json::Value::array();
    for (const auto& n : r.notes) notes.push_back(n);
    m.set("notes", std::move(notes));
    if (!tokenizer_error.empty()) m.set("tokenizer_error", tokenizer_error);
    if (rss0 >= 0 && rss1 >= 0) m.set("resident_bytes_added", rss1 - rss0);
    doc.set("model", std::move(m));
    std::printf("%s\n", json::dump(doc, 1).c_str());
    return tokenizer_error.empty() ? 0 : 1;
  }
  std::printf("source        %s, loaded in %.2f s\n", r.source.c_str(), secs);
  print_hparams(w.hp);
  std::printf("parameters    %.3fB\n", params / 1e9);
  std::printf("embedding     %s%s\n", embd.c_str(),
              w.tok_embd.owned.empty() ? " (in the mapping)" : " (converted copy)");
  std::printf("output        %s\n", w.output.rows ? output.c_str() : "tied to the embedding");
  for (const auto& [conv, n] : r.conversions) {
    std::printf("linear        %lld x %s\n", (long long)n, conv.c_str());
  }
  const TokenizerData& tok = w.tokenizer;
  if (!tok.tokens.empty()) {
    std::printf("tokenizer     %zu tokens, %zu merges, pre '%s', bos %d eos %d eot %d\n",
                tok.tokens.size(), tok.merges.size(), tok.pre.c_str(), tok.bos, tok.eos, tok.eot);
  }
  for (const auto& n : r.notes) std::printf("note          %s\n", n.c_str());
  if (rss0 >= 0 && rss1 >= 0) {
    std::printf("resident      +%s after load", human_bytes((double)(rss1 - rss0)).c_str());
    if (file_bytes > 0) std::printf(" (%.2fx the file)", (double)(rss1 - rss0) / file_bytes);
    std::printf("\n");
  }
  if (!tokenizer_error.empty()) {
    throw Error(path + ": the tokenizer cannot be built: " + tokenizer_error);
  }
  return 0;
}

CommandRegistrar reg_make({"make-model", "write a random-weight BitNet model of a named shape",
                           run_make_model});
CommandRegistrar reg_convert({"convert", "convert a BitNet model (GGUF / safetensors) to GGUF",
                              run_convert});
CommandRegistrar reg_inspect({"inspect", "print a model file's metadata and tensors, then load it",
                              run_inspect});

}  // namespace
}  // namespace tritune::cli
