#include "tuner/strategy.h"

#include "kernels/error.h"

namespace tritune {

const std::vector<StrategyInfo>& strategy_infos() {
  static const std::vector<StrategyInfo> infos = {
      {"grid", "every legal point, in declaration order (exhaustive)"},
      {"random", "legal points in a seeded random order"},
      {"evolution", "mutate the best points found so far (tournament selection)"},
      {"model", "cost model (Gaussian process on log score) picks the most promising point"},
  };
  return infos;
}

std::unique_ptr<Strategy> make_strategy(const std::string& name) {
  if (name == "grid") return make_grid_strategy();
  if (name == "random") return make_random_strategy();
  if (name == "evolution") return make_evolution_strategy();
  if (name == "model") return make_model_strategy();
  std::string known;
  for (const auto& s : strategy_infos()) known += std::string(known.empty() ? "" : ", ") + s.name;
  throw Error("unknown strategy '" + name + "' (known: " + known + ")");
}

std::vector<std::vector<int>> domain_indices(const SearchSpace& space,
                                             const std::vector<Params>& points) {
  std::vector<std::vector<int>> out(points.size(), std::vector<int>(space.params.size(), 0));
  for (size_t p = 0; p < points.size(); ++p) {
    for (size_t i = 0; i < space.params.size(); ++i) {
      const ParamDomain& d = space.params[i];
      const std::string& v = points[p].at(d.name);
      for (size_t j = 0; j < d.values.size(); ++j) {
        if (d.values[j] == v) out[p][i] = (int)j;
      }
    }
  }
  return out;
}

}  // namespace tritune
