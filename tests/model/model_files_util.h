// Helpers for the model-file tests (GGUF, safetensors, loaders, fuzzing): a scratch directory,
// whole-file reads, and a tiny custom shape.
#pragma once
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "model/synthetic.h"

namespace tritune::testing {

// A fresh directory under $TRITUNE_TEST_TMP (or /tmp) for one test.
inline std::string scratch_dir(const std::string& tag) {
  const char* base = std::getenv("TRITUNE_TEST_TMP");
  std::string root = base && *base ? base : "/tmp";
  mkdir(root.c_str(), 0755);
  std::string tmpl = root + "/" + tag + "_XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) return root;
  return std::string(buf.data());
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A custom shape (tests vary widths to hit block-size edge cases).
inline ModelShape test_shape(int64_t hidden, int64_t ffn, int64_t layers, int64_t heads,
                             int64_t kv_heads, int64_t vocab) {
  return ModelShape{"test", hidden,         ffn,       layers, heads, kv_heads, vocab,
                    128,    "bitnet-b1.58", 500000.0f, "test"};
}

}  // namespace tritune::testing
