// Search spaces of the full-precision baseline families (fp_generator.cpp): f32 and f16 weights.
#include <string>

#include "generators/space.h"
#include "kernels/cpu_features.h"

namespace tritune {

std::vector<SearchSpace> fp_spaces() {
  std::vector<SearchSpace> out;
  for (const char* fmt : {"f32", "f16"}) {
    for (const char* op : {"gemv", "gemm"}) {
      SearchSpace s;
      s.family = fmt;
      s.op = op;
      s.format = fmt;
      s.generator = std::string(fmt) + "_" + op;
      const bool gemm = std::string(op) == "gemm";
      s.params = {
          {"rows", "r", {"1", "2", "4", "8"}, gemm ? "4" : "4", {}, "output rows per block"},
          {"tokens",
           "t",
           gemm ? std::vector<std::string>{"1", "2", "4", "6"} : std::vector<std::string>{"1"},
           gemm ? "4" : "1",
           {{"avx2", gemm ? "2" : "1"}, {"x86_64", gemm ? "2" : "1"}},
           "tokens per block"},
          {"kunroll", "u", {"1", "2", "4"}, "2", {}, "unroll of the K-vector loop"},
          {"vbits",
           "v",
           {"128", "256", "512"},
           "512",
           {{"avx2", "256"}, {"x86_64", "128"}},
           "f32 vector width in bits"},
          {"grain",
           "g",
           {"0", "1", "4", "8", "16"},
           gemm ? "1" : "8",
           {},
           "row blocks per parallel task"},
      };
      s.constraints.push_back(
          {"vbits <= the ISA's vector width", [](const Params& p, const Shape*, Isa isa) {
             const int v = std::stoi(p.at("vbits"));
             const int w = isa == Isa::kAvx512Vnni ? 512 : isa == Isa::kAvx2 ? 256 : 128;
             return v <= w ? std::string() : std::to_string(v) + " > " + std::to_string(w);
           }});
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace tritune
