// Evolutionary search: after a small random start (baseline first), each step takes the better of
// two members of the current elite (tournament), mutates one or two knobs (mostly to a
// neighbouring value: schedule knobs are ordinal), and proposes the result if it is a legal,
// unmeasured point. Cheap, no model; a reference point for the cost-model strategy.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "tuner/strategy.h"

namespace tritune {
namespace {

class EvolutionStrategy : public Strategy {
 public:
  std::string name() const override { return "evolution"; }

  void reset(const SearchSpace& space, const std::vector<Params>& points, int64_t first,
             uint64_t seed) override {
    idx_ = domain_indices(space, points);
    sizes_.clear();
    for (const auto& d : space.params) sizes_.push_back((int)d.values.size());
    lookup_.clear();
    for (size_t i = 0; i < idx_.size(); ++i) lookup_[idx_[i]] = i;
    first_ = first;
    rng_.seed(seed);
  }

  std::optional<size_t> next(const std::vector<Observation>& history) override {
    const size_t n = idx_.size();
    std::vector<bool> seen(n, false);
    for (const auto& o : history) seen[o.index] = true;
    if (history.size() >= n) return std::nullopt;
    if (first_ >= 0 && !seen[(size_t)first_]) return (size_t)first_;
    const size_t n_init = std::min<size_t>(6, n);
    std::vector<Observation> elite;
    for (const auto& o : history) {
      if (std::isfinite(o.score)) elite.push_back(o);
    }
    if (history.size() >= n_init && !elite.empty()) {
      std::sort(elite.begin(), elite.end(),
                [](const Observation& a, const Observation& b) { return a.score < b.score; });
      elite.resize(std::min<size_t>(elite.size(), 6));
      std::uniform_int_distribution<size_t> pick(0, elite.size() - 1);
      std::uniform_real_distribution<double> u(0, 1);
      for (int attempt = 0; attempt < 300; ++attempt) {
        const Observation& a = elite[pick(rng_)];
        const Observation& b = elite[pick(rng_)];
        std::vector<int> child = idx_[(a.score <= b.score ? a : b).index];
        if (u(rng_) < 0.25) {  // crossover with another elite member
          const std::vector<int>& other = idx_[elite[pick(rng_)].index];
          for (size_t i = 0; i < child.size(); ++i) {
            if (u(rng_) < 0.5) child[i] = other[i];
          }
        }
        const int flips = u(rng_) < 0.7 ? 1 : 2;
        for (int f = 0; f < flips; ++f) mutate(child, u);
        auto it = lookup_.find(child);
        if (it != lookup_.end() && !seen[it->second]) return it->second;
      }
    }
    std::vector<size_t> unseen;
    for (size_t i = 0; i < n; ++i) {
      if (!seen[i]) unseen.push_back(i);
    }
    std::uniform_int_distribution<size_t> pick(0, unseen.size() - 1);
    return unseen[pick(rng_)];
  }

 private:
  void mutate(std::vector<int>& p, std::uniform_real_distribution<double>& u) {
    std::vector<size_t> knobs;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      if (sizes_[i] > 1) knobs.push_back(i);
    }
    if (knobs.empty()) return;
    const size_t i = knobs[std::uniform_int_distribution<size_t>(0, knobs.size() - 1)(rng_)];
    if (u(rng_) < 0.6) {
      p[i] += (u(rng_) < 0.5 ? -1 : 1);
      p[i] = std::clamp(p[i], 0, sizes_[i] - 1);
    } else {
      p[i] = std::uniform_int_distribution<int>(0, sizes_[i] - 1)(rng_);
    }
  }

  std::vector<std::vector<int>> idx_;
  std::vector<int> sizes_;
  std::map<std::vector<int>, size_t> lookup_;
  int64_t first_ = -1;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Strategy> make_evolution_strategy() {
  return std::make_unique<EvolutionStrategy>();
}

}  // namespace tritune
