// Named sets of linear-layer shapes (N outputs x K inputs) of the models tritune reproduces, and
// the parser of the `--shapes` forms (NxK lists, a JSON list, a JSON file).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tritune {

struct NamedShape {
  int64_t n = 0, k = 0;
  std::string layers;  // which projections have it ("q_proj, o_proj")
};

struct ModelShapeSet {
  const char* name;  // "2b4t"
  const char* doc;
  std::vector<NamedShape> shapes;
};

const std::vector<ModelShapeSet>& model_shape_sets();
const ModelShapeSet& find_model_shapes(const std::string& name);  // throws Error with names

// "2560x2560,640x2560", a JSON list "[[2560,2560],[640,2560]]" or [{"n":..,"k":..}], or the
// path of a .json file holding such a list. Throws Error naming the bad entry.
std::vector<std::pair<int64_t, int64_t>> parse_shapes(const std::string& text);

}  // namespace tritune
