// Random search: a seeded permutation of the legal points (baseline first).
#include <algorithm>
#include <random>

#include "tuner/strategy.h"

namespace tritune {
namespace {

class RandomStrategy : public Strategy {
 public:
  std::string name() const override { return "random"; }
  void reset(const SearchSpace&, const std::vector<Params>& points, int64_t first,
             uint64_t seed) override {
    order_.clear();
    for (size_t i = 0; i < points.size(); ++i) {
      if ((int64_t)i != first) order_.push_back(i);
    }
    std::mt19937_64 rng(seed);
    std::shuffle(order_.begin(), order_.end(), rng);
    if (first >= 0) order_.insert(order_.begin(), (size_t)first);
    pos_ = 0;
  }
  std::optional<size_t> next(const std::vector<Observation>& history) override {
    std::vector<bool> seen(order_.size(), false);
    for (const auto& o : history) seen[o.index] = true;
    while (pos_ < order_.size() && seen[order_[pos_]]) ++pos_;
    if (pos_ == order_.size()) return std::nullopt;
    return order_[pos_++];
  }

 private:
  std::vector<size_t> order_;
  size_t pos_ = 0;
};

}  // namespace

std::unique_ptr<Strategy> make_random_strategy() {
  return std::make_unique<RandomStrategy>();
}

}  // namespace tritune
