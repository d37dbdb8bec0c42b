// Exhaustive grid: every legal point once, baseline first (so a budget-cut grid still has it).
#include "tuner/strategy.h"

namespace tritune {
namespace {

class GridStrategy : public Strategy {
 public:
  std::string name() const override { return "grid"; }
  void reset(const SearchSpace&, const std::vector<Params>& points, int64_t first,
             uint64_t) override {
    order_.clear();
    if (first >= 0) order_.push_back((size_t)first);
    for (size_t i = 0; i < points.size(); ++i) {
      if ((int64_t)i != first) order_.push_back(i);
    }
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

std::unique_ptr<Strategy> make_grid_strategy() {
  return std::make_unique<GridStrategy>();
}

}  // namespace tritune
