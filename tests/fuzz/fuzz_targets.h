// The targets of the coverage-guided fuzzer (tests/fuzz/fuzz_loaders.cc), shared with the test
// that replays tests/fuzz/regressions/ (tests/model/fuzz_regressions_test.cc).
//
// run_one(data, size, seed): the first byte picks the target (mod 6); the rest is the input:
//   0  a GGUF file: parsed, loaded, its tokenizer built and run, and, when it loads and is
//      small, one forward step of the kernel path and of the reference path, and one of the
//      kernel path with the head re-encoded as Q8_0 and as Q6_K (--embd-type)
//   1  a model.safetensors, loaded with the seed checkpoint's valid config.json
//   2  a config.json, loaded with the seed checkpoint's valid model.safetensors
//   3  a tokenizer.json (text starting with '{'), built and run
//   4  a tuning database (JSON lines: header, records), written to a scratch file, opened for
//      its own header's fingerprint and loaded (corrupt lines become warnings)
//   5  any text (bytes), through the built-in LLaMA-3-style tokenizer of the synthetic models:
//      decode(encode(text)) must give the text back exactly, with and without special-token
//      parsing, and StreamDecoder one token at a time must give decode()'s bytes
// It returns normally or throws tritune::Error (a refusal); anything else is a bug (a broken
// property of target 5 throws std::logic_error).
// The seed checkpoint: `tritune make-model --shape tiny --format safetensors --layers 1`
// (seed 1), which scripts/fuzz.sh writes and the replay test writes itself.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "model/convert.h"
#include "model/ggml_types.h"
#include "model/gguf.h"
#include "model/loader.h"
#include "model/mapped_file.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "tests/model/model_files_util.h"
#include "tuner/database.h"

namespace tritune::fuzz {

struct SeedCheckpoint {
  std::vector<uint8_t> safetensors;
  std::string config;
};

// Encodes and decodes a few strings that reach every pre-tokenizer class and the specials.
inline void exercise(const Tokenizer& t) {
  for (const char* s : {"Hello, world! 123 caf\xC3\xA9  \n\t", "<|begin_of_text|>x<|eot_id|>",
                        "\xF0\x9F\x98\x80\xFF\xFE ab'll", ""}) {
    const std::vector<int32_t> ids = t.encode(s, true, true);
    (void)t.decode(ids);
  }
}

// Target 5: the tokenizer's round-trip promises (model/tokenizer.h) on arbitrary bytes.
inline void text_target(const uint8_t* p, size_t n) {
  static const Tokenizer tok = Tokenizer::from_vocab(make_builtin_vocab(512));
  const std::string text(reinterpret_cast<const char*>(p), n);
  for (bool parse_special : {false, true}) {
    const std::vector<int32_t> ids = tok.encode(text, false, parse_special);
    for (int32_t id : ids) {
      if (id < 0 || id >= tok.n_vocab()) throw std::logic_error("encode: id out of range");
    }
    if (tok.decode(ids) != text) {
      throw std::logic_error(std::string("decode(encode(text)) != text (parse_special ") +
                             (parse_special ? "on" : "off") + ")");
    }
    for (bool skip : {false, true}) {
      StreamDecoder sd(tok, skip);
      std::string streamed;
      for (int32_t id : ids) streamed += sd.push(id);
      streamed += sd.flush();
      if (streamed != tok.decode(ids, skip)) {
        throw std::logic_error("StreamDecoder differs from decode()");
      }
    }
  }
}

// A loaded model small enough to run one token through both paths.
inline void run_one_token(const std::shared_ptr<const ModelWeights>& w) {
  const HParams& hp = w->hp;
  if (hp.vocab > 4096 || hp.hidden > 512 || hp.ffn > 2048 || hp.layers > 4) return;
  for (Path path : {Path::kKernel, Path::kReference}) {
    TransformerOptions o;
    o.path = path;
    o.context = 8;
    auto t = std::make_unique<Transformer>(w, o);
    std::vector<float> logits((size_t)hp.vocab);
    const int32_t tokens[2] = {0, (int32_t)(hp.vocab - 1)};
    t->forward(tokens, 2, 1, logits.data());
  }
  // The head re-encoded at load (--embd-type) from whatever the file stored, then one token.
  for (uint32_t type : {(uint32_t)ggml::kQ8_0, (uint32_t)ggml::kQ6_K}) {
    auto c = std::make_shared<ModelWeights>(*w);
    requantize_embeddings(*c, type, 2);
    TransformerOptions o;
    o.context = 8;
    Transformer t(c, o);
    std::vector<float> logits((size_t)hp.vocab);
    const int32_t token = (int32_t)(hp.vocab - 1);
    t.forward(&token, 1, 0, logits.data());
  }
}

inline void gguf_target(const uint8_t* p, size_t n) {
  std::vector<uint8_t> bytes(p, p + n);
  const auto f = gguf::File::parse(MappedFile::from_bytes(std::move(bytes), "fuzz.gguf"));
  const auto m = std::make_shared<const ModelWeights>(load_gguf(f));
  if (!m->tokenizer.tokens.empty()) exercise(Tokenizer::from_vocab(m->tokenizer));
  run_one_token(m);
}

inline void safetensors_target(std::vector<uint8_t> st, const std::string& config) {
  const auto f =
      safetensors::File::parse(MappedFile::from_bytes(std::move(st), "fuzz.safetensors"));
  run_one_token(std::make_shared<const ModelWeights>(load_hf_parts({f}, config, "config.json")));
}

inline void tuning_db_target(const uint8_t* p, size_t n) {
  // One scratch file per process (libFuzzer runs inputs one at a time in a process).
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("tritune_fuzz_db_" + std::to_string(getpid()) + ".jsonl"))
                                      .string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(p), (std::streamsize)n);
  }
  struct Remove {
    ~Remove() { std::remove(path.c_str()); }
  } remove;
  const Fingerprint fp = TuningDb::read_header(path);
  const DbLoad load = TuningDb::open_file(path, fp).load();
  for (const Record& r : load.records) (void)json::dump(r.to_json());
}

// A checkpoint directory's model.safetensors and config.json (empty when missing).
inline SeedCheckpoint read_seed(const std::string& dir) {
  SeedCheckpoint s;
  s.safetensors = testing::read_bytes(dir + "/model.safetensors");
  s.config = testing::read_text(dir + "/config.json");
  return s;
}

inline void run_one(const uint8_t* data, size_t size, const SeedCheckpoint& seed) {
  if (size < 1) return;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 6) {
    case 0:
      gguf_target(p, n);
      break;
    case 1:
      if (!seed.config.empty()) safetensors_target(std::vector<uint8_t>(p, p + n), seed.config);
      break;
    case 2:
      if (!seed.safetensors.empty())
        safetensors_target(seed.safetensors, std::string((const char*)p, n));
      break;
    case 3:
      // from_tokenizer_json takes text only when it starts with '{' (else it is a path).
      if (n == 0 || p[0] != '{') break;
      exercise(Tokenizer::from_tokenizer_json(std::string((const char*)p, n)));
      break;
    case 4:
      tuning_db_target(p, n);
      break;
    default:
      text_target(p, n);
      break;
  }
}

}  // namespace tritune::fuzz
