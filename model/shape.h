// Tensor dimension lists as the file readers store them (GGUF ne[], safetensors shape[]).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tritune {

inline int64_t shape_elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// "[2560, 6912]"
inline std::string shape_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

}  // namespace tritune
