#include "tuner/shapes.h"

#include <fstream>
#include <sstream>

#include "kernels/error.h"
#include "kernels/json.h"
#include "kernels/memory_budget.h"

namespace tritune {

const std::vector<ModelShapeSet>& model_shape_sets() {
  static const std::vector<ModelShapeSet> sets = {
      {"2b4t",
       "BitNet b1.58 2B4T: hidden 2560, FFN 6912, 20 query / 5 KV heads of 128",
       {{2560, 2560, "q_proj, o_proj"},
        {640, 2560, "k_proj, v_proj"},
        {6912, 2560, "gate_proj, up_proj"},
        {2560, 6912, "down_proj"},
        // What the kernel path runs (LinearGroup): q+k+v and gate+up as one GEMV each.
        {3840, 2560, "q+k+v fused"},
        {13824, 2560, "gate+up fused"}}},
      {"700m",
       "bitnet_b1_58-large (the papers' 700M): hidden 1536, FFN 4096, 16 heads",
       {{1536, 1536, "q/k/v/o_proj"},
        {4096, 1536, "gate_proj, up_proj"},
        {1536, 4096, "down_proj"},
        {4608, 1536, "q+k+v fused"},
        {8192, 1536, "gate+up fused"}}},
      {"3b",
       "bitnet_b1_58-3B: hidden 3200, FFN 8640, 32 heads",
       {{3200, 3200, "q/k/v/o_proj"},
        {8640, 3200, "gate_proj, up_proj"},
        {3200, 8640, "down_proj"},
        {9600, 3200, "q+k+v fused"},
        {17280, 3200, "gate+up fused"}}},
  };
  return sets;
}

const ModelShapeSet& find_model_shapes(const std::string& name) {
  std::string known;
  for (const auto& s : model_shape_sets()) {
    if (name == s.name) return s;
    known += std::string(known.empty() ? "" : ", ") + s.name;
  }
  throw Error("unknown model shape set '" + name + "' (known: " + known + ")");
}

namespace {

void check(int64_t n, int64_t k, const std::string& what) {
  if (n <= 0 || k <= 0 || n > kMaxShapeDim || k > kMaxShapeDim) {
    throw Error("shape '" + what + "': N and K must be in 1.." + std::to_string(kMaxShapeDim));
  }
}

std::vector<std::pair<int64_t, int64_t>> from_json(const json::Value& j, const std::string& where) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (!j.is_array()) throw Error(where + ": expected a JSON list of shapes");
  for (const json::Value& e : j.as_array()) {
    int64_t n = 0, k = 0;
    try {
      if (e.is_array() && e.as_array().size() == 2) {
        n = e.as_array()[0].as_int64();
        k = e.as_array()[1].as_int64();
      } else {
        n = e.at("n").as_int64();
        k = e.at("k").as_int64();
      }
    } catch (const Error& err) {
      throw Error(where + ": entry " + std::to_string(out.size()) + " is not [N, K] or " +
                  "{\"n\": N, \"k\": K} (" + err.what() + ")");
    }
    check(n, k, json::dump(e));
    out.emplace_back(n, k);
  }
  return out;
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> parse_shapes(const std::string& text) {
  if (!text.empty() && text[0] == '[') return from_json(json::parse(text, "--shapes"), "--shapes");
  if (text.size() > 5 && text.compare(text.size() - 5, 5, ".json") == 0) {
    std::ifstream in(text);
    if (!in) throw Error("shapes file " + text + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    return from_json(json::parse(ss.str(), text), "shapes file " + text);
  }
  std::vector<std::pair<int64_t, int64_t>> out;
  if (!text.empty() && text.back() == ',') throw Error("--shapes '" + text + "': trailing comma");
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t x = item.find('x');
    char* e1 = nullptr;
    char* e2 = nullptr;
    const long long n = x == std::string::npos ? 0 : std::strtoll(item.c_str(), &e1, 10);
    const long long k = x == std::string::npos ? 0 : std::strtoll(item.c_str() + x + 1, &e2, 10);
    if (x == std::string::npos || x == 0 || x + 1 == item.size() || e1 != item.c_str() + x ||
        *e2 != 0) {
      throw Error("shape '" + item + "' is not NxK (e.g. 2560x6912)");
    }
    check(n, k, item);
    out.emplace_back(n, k);
  }
  if (out.empty()) throw Error("--shapes: no shapes given");
  return out;
}

void require_shape_fits(int64_t n, int64_t k, const std::vector<std::string>& formats,
                        int64_t copies) {
  const std::string shape = std::to_string(n) + "x" + std::to_string(k);
  double bytes = 0;
  std::string names;
  for (const std::string& name : formats) {
    const FormatTraits& f = find_format(name);
    const double matrix = (double)n * (double)k * f.bits_per_weight / 8.0;
    if (matrix > (double)kMaxKernelBufferBytes) {
      throw Error("shape " + shape + " in " + f.name + " is " + human_bytes(matrix) +
                  ", more than one kernel call takes (a Halide buffer holds at most 2 GiB - 1 "
                  "byte); use a smaller shape or split the matrix along N");
    }
    bytes += weight_set_bytes(f.id, n, k, copies);
    names += (names.empty() ? "" : " + ") + name;
  }
  require_memory(
      bytes,
      "shape " + shape + " (" + names + ", " + std::to_string(copies) + " weight copies each)",
      "use a smaller shape");
}

}  // namespace tritune
