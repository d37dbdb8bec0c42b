// Search strategies: which legal point of a space to measure next, given the scores so far.
// One small module each (strategy_grid.cc, strategy_random.cc, strategy_evolution.cc,
// strategy_model.cc); they see only points and scores, never the kernels, so they are tested on
// synthetic spaces with fake scores.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generators/space.h"

namespace tritune {

struct Observation {
  size_t index = 0;  // into the candidate list given to reset()
  double score = 0;  // lower is better; +inf for a failed candidate
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // Starts a task: `points` are the legal candidates (the space's enumerate()), `first` the index
  // of the baseline point in it (or -1), so strategies may seed with the known default.
  virtual void reset(const SearchSpace& space, const std::vector<Params>& points, int64_t first,
                     uint64_t seed) = 0;
  // The next index to measure (never one already in history), or nullopt when done.
  virtual std::optional<size_t> next(const std::vector<Observation>& history) = 0;
};

// A strategy that walks a fixed order of the points (set by reset), skipping measured ones:
// grid (declaration order) and random (a seeded permutation) differ only in the order.
class OrderedStrategy : public Strategy {
 public:
  std::optional<size_t> next(const std::vector<Observation>& history) override;

 protected:
  // Sets the walk: `first` (the baseline, if >= 0) leads, then `rest`.
  void set_order(int64_t first, std::vector<size_t> rest);

 private:
  std::vector<size_t> order_;
  size_t pos_ = 0;
};
// The points other than `first`, in declaration order.
std::vector<size_t> points_except(size_t count, int64_t first);

// Factories (one per module) and the registry by name.
std::unique_ptr<Strategy> make_grid_strategy();
std::unique_ptr<Strategy> make_random_strategy();
std::unique_ptr<Strategy> make_evolution_strategy();
std::unique_ptr<Strategy> make_model_strategy();
std::unique_ptr<Strategy> make_strategy(const std::string& name);  // throws Error with names
struct StrategyInfo {
  const char* name;
  const char* summary;
};
const std::vector<StrategyInfo>& strategy_infos();

// Index of each point's domain values (shared by the model-guided strategies).
std::vector<std::vector<int>> domain_indices(const SearchSpace& space,
                                             const std::vector<Params>& points);

}  // namespace tritune
