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

// The largest N or K a shape may have (the tuner, the benchmarks and the tuning database), and
// the most tokens and threads a task may have (the tuner's options and the database).
constexpr int64_t kMaxShapeDim = int64_t(1) << 20;
constexpr int64_t kMaxTaskTokens = 4096;
constexpr int64_t kMaxTaskThreads = 256;  // the thread pool's limit

// "2560x2560,640x2560", a JSON list "[[2560,2560],[640,2560]]" or [{"n":..,"k":..}], or the
// path of a .json file holding such a list. Throws Error naming the bad entry.
std::vector<std::pair<int64_t, int64_t>> parse_shapes(const std::string& text);

// Refuses, before anything is allocated, a shape the kernels cannot take or this machine cannot
// hold: an Error naming the shape, the format and the limit. One matrix in any of `formats`
// must fit a Halide buffer (at most 2^31 - 1 bytes: the kernels are built without Halide's
// large_buffers feature), and its weights in all of `formats` at once (the dense source, the
// packed matrix and `copies` copies of it each, as the tuner and the benchmarks build them)
// must fit in the available memory.
void require_shape_fits(int64_t n, int64_t k, const std::vector<std::string>& formats,
                        int64_t copies);

}  // namespace tritune
