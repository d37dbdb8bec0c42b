#include "tuner/strategy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "kernels/error.h"
#include "synthetic.h"

namespace tritune {
namespace {

using testing::synthetic_cost;
using testing::synthetic_optimum;
using testing::synthetic_space;

struct SearchRun {
  std::vector<Observation> history;
  double optimum = 0;
};

// Drives a strategy on the synthetic space for up to `budget` evaluations.
SearchRun drive(const std::string& name, size_t budget, uint64_t seed, int64_t first = 0) {
  const SearchSpace s = synthetic_space();
  const auto points = s.enumerate(nullptr, Isa::kX86_64);
  auto st = make_strategy(name);
  st->reset(s, points, first, seed);
  SearchRun run;
  run.optimum = 1e300;
  for (const auto& p : points) run.optimum = std::min(run.optimum, synthetic_cost(p));
  while (run.history.size() < budget) {
    auto nx = st->next(run.history);
    if (!nx) break;
    EXPECT_LT(*nx, points.size());
    for (const auto& o : run.history) EXPECT_NE(o.index, *nx) << name << " repeated a point";
    run.history.push_back({*nx, synthetic_cost(points[*nx])});
  }
  return run;
}

double best_of(const SearchRun& r) {
  double b = 1e300;
  for (const auto& o : r.history) b = std::min(b, o.score);
  return b;
}

TEST(Strategy, RegistryNamesEveryStrategyAndRefusesUnknown) {
  std::set<std::string> names;
  for (const auto& i : strategy_infos()) names.insert(make_strategy(i.name)->name());
  EXPECT_EQ(names, (std::set<std::string>{"grid", "random", "evolution", "model"}));
  EXPECT_THROW(make_strategy("annealing"), Error);
}

TEST(Strategy, SyntheticSpaceHasTheKnownOptimum) {
  const SearchSpace s = synthetic_space();
  const auto points = s.enumerate(nullptr, Isa::kX86_64);
  EXPECT_LT(points.size(), s.size()) << "the constraint should prune points";
  const Params* best = nullptr;
  for (const auto& p : points) {
    if (!best || synthetic_cost(p) < synthetic_cost(*best)) best = &p;
  }
  EXPECT_EQ(*best, synthetic_optimum());
}

TEST(Strategy, GridVisitsEveryLegalPointOnceBaselineFirst) {
  const size_t n = synthetic_space().enumerate(nullptr, Isa::kX86_64).size();
  const SearchRun r = drive("grid", 100000, 1, 7);
  ASSERT_EQ(r.history.size(), n);
  EXPECT_EQ(r.history[0].index, 7u);
  std::set<size_t> seen;
  for (const auto& o : r.history) seen.insert(o.index);
  EXPECT_EQ(seen.size(), n);
  EXPECT_DOUBLE_EQ(best_of(r), r.optimum);
}

TEST(Strategy, RandomIsASeededPermutation) {
  const size_t n = synthetic_space().enumerate(nullptr, Isa::kX86_64).size();
  const SearchRun a = drive("random", 100000, 1), b = drive("random", 100000, 1),
                  c = drive("random", 100000, 2);
  ASSERT_EQ(a.history.size(), n);
  std::vector<size_t> ia, ib, ic;
  for (size_t i = 0; i < n; ++i) {
    ia.push_back(a.history[i].index);
    ib.push_back(b.history[i].index);
    ic.push_back(c.history[i].index);
  }
  EXPECT_EQ(ia, ib);
  EXPECT_NE(ia, ic);
  EXPECT_EQ(ia[0], 0u) << "baseline first";
  EXPECT_EQ(std::set<size_t>(ia.begin(), ia.end()).size(), n);
}

// The acceptance criterion of the model-guided strategies, on a space whose optimum is known:
// within 5% of the grid optimum using at most 25% of the grid's evaluations, for every seed.
TEST(Strategy, GuidedStrategiesReachTheOptimumNeighbourhoodInAQuarterOfTheGrid) {
  const size_t n = synthetic_space().enumerate(nullptr, Isa::kX86_64).size();
  for (const char* name : {"model", "evolution"}) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      const SearchRun r = drive(name, n / 4, seed);
      EXPECT_EQ(r.history.size(), n / 4);
      EXPECT_LE(best_of(r), 1.05 * r.optimum) << name << " seed " << seed;
    }
  }
}

TEST(Strategy, ModelBeatsRandomOnAverageAtAFixedSmallBudget) {
  const size_t n = synthetic_space().enumerate(nullptr, Isa::kX86_64).size();
  double model = 0, random = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    model += best_of(drive("model", n / 10, seed));
    random += best_of(drive("random", n / 10, seed));
  }
  EXPECT_LT(model, random);
}

TEST(Strategy, GuidedStrategiesSurviveFailuresAndExhaustTheSpace) {
  // Every third point fails (+inf): strategies must keep proposing and finish every point.
  const SearchSpace s = synthetic_space();
  auto points = s.enumerate(nullptr, Isa::kX86_64);
  points.resize(120);  // keeps the exhaustive GP run short
  for (const char* name : {"model", "evolution"}) {
    auto st = make_strategy(name);
    st->reset(s, points, -1, 3);
    std::vector<Observation> h;
    while (auto nx = st->next(h)) {
      h.push_back({*nx, *nx % 3 == 0 ? INFINITY : synthetic_cost(points[*nx])});
      ASSERT_LE(h.size(), points.size());
    }
    EXPECT_EQ(h.size(), points.size()) << name;
  }
}

// Tournament selection: of two elite members drawn, the better one is the parent. One knob of
// 100 ordinal values; the elite is a good point (index 10) and a poor one (index 90), the other
// measured points failed. The parent is the good point with probability 3/4 (crossover and
// mutation aside), so most proposals land next to 10, not next to 90.
TEST(Strategy, EvolutionBreedsMostlyFromTheBetterOfTwoElites) {
  SearchSpace s;
  s.family = "syn";
  s.op = "gemv";
  s.generator = "syn_line";
  ParamDomain d{"x", "x", {}, "0", {}, "position"};
  for (int i = 0; i < 100; ++i) d.values.push_back(std::to_string(i));
  s.params = {d};
  const auto points = s.enumerate(nullptr, Isa::kX86_64);
  ASSERT_EQ(points.size(), 100u);
  ASSERT_EQ(points[10].at("x"), "10");
  const double inf = INFINITY;
  const std::vector<Observation> history = {{10, 1.0}, {90, 2.0}, {0, inf},
                                            {1, inf},  {2, inf},  {3, inf}};
  int near_good = 0, near_poor = 0;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    auto st = make_strategy("evolution");
    st->reset(s, points, -1, seed);
    const auto nx = st->next(history);
    ASSERT_TRUE(nx.has_value());
    const long i = (long)*nx;
    if (std::abs(i - 10) <= 2) ++near_good;
    if (std::abs(i - 90) <= 2) ++near_poor;
  }
  EXPECT_GT(near_good, 2 * near_poor)
      << near_good << " next to the good point, " << near_poor << " next to the poor one";
}

}  // namespace
}  // namespace tritune
