// Random search: a seeded permutation of the legal points (baseline first).
#include <algorithm>
#include <random>

#include "tuner/strategy.h"

namespace tritune {
namespace {

class RandomStrategy : public OrderedStrategy {
 public:
  std::string name() const override { return "random"; }
  void reset(const SearchSpace&, const std::vector<Params>& points, int64_t first,
             uint64_t seed) override {
    std::vector<size_t> rest = points_except(points.size(), first);
    std::mt19937_64 rng(seed);
    std::shuffle(rest.begin(), rest.end(), rng);
    set_order(first, std::move(rest));
  }
};

}  // namespace

std::unique_ptr<Strategy> make_random_strategy() {
  return std::make_unique<RandomStrategy>();
}

}  // namespace tritune
