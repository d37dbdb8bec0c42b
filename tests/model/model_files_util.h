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
#include "tests/kernels/test_util.h"  // scratch_dir

namespace tritune::testing {

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
