// Exhaustive grid: every legal point once, baseline first (so a budget-cut grid still has it).
#include "tuner/strategy.h"

namespace tritune {
namespace {

class GridStrategy : public OrderedStrategy {
 public:
  std::string name() const override { return "grid"; }
  void reset(const SearchSpace&, const std::vector<Params>& points, int64_t first,
             uint64_t) override {
    set_order(first, points_except(points.size(), first));
  }
};

}  // namespace

std::vector<size_t> points_except(size_t count, int64_t first) {
  std::vector<size_t> rest;
  for (size_t i = 0; i < count; ++i) {
    if ((int64_t)i != first) rest.push_back(i);
  }
  return rest;
}

void OrderedStrategy::set_order(int64_t first, std::vector<size_t> rest) {
  order_.clear();
  if (first >= 0) order_.push_back((size_t)first);
  order_.insert(order_.end(), rest.begin(), rest.end());
  pos_ = 0;
}

std::optional<size_t> OrderedStrategy::next(const std::vector<Observation>& history) {
  std::vector<bool> seen(order_.size(), false);
  for (const auto& o : history) seen[o.index] = true;
  while (pos_ < order_.size() && seen[order_[pos_]]) ++pos_;
  if (pos_ == order_.size()) return std::nullopt;
  return order_[pos_++];
}

std::unique_ptr<Strategy> make_grid_strategy() {
  return std::make_unique<GridStrategy>();
}

}  // namespace tritune
