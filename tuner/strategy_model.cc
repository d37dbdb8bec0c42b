// Model-guided search: a Gaussian-process cost model of log(score) over the schedule knobs,
// refit after every measurement; the next point maximizes expected improvement over the best so
// far. The kernel treats knobs as ordinal (neighbouring tile sizes behave alike: similarity
// exp(-|rank difference|) per knob) and models main effects plus pairwise interactions
// (k = 1 + sum_i s_i + sum_{i<j} s_i s_j, normalized), which is what schedule spaces show: a tile
// size is good or bad mostly together with one other knob (rows x vector width, tokens x rows).
// Starts from the baseline plus a few random points. Failed candidates are modelled as worse
// than anything seen, so their neighbourhood is avoided without being declared illegal.
#include <algorithm>
#include <cmath>
#include <random>

#include "tuner/strategy.h"

namespace tritune {
namespace {

class ModelStrategy : public Strategy {
 public:
  std::string name() const override { return "model"; }

  void reset(const SearchSpace& space, const std::vector<Params>& points, int64_t first,
             uint64_t seed) override {
    idx_ = domain_indices(space, points);
    d_ = space.params.size();
    sim_.assign(d_, {});
    sizes_.clear();
    for (size_t i = 0; i < d_; ++i) {
      const int m = (int)space.params[i].values.size();
      sim_[i].assign(m * m, 0.0);
      for (int a = 0; a < m; ++a) {
        for (int b = 0; b < m; ++b) sim_[i][a * m + b] = std::exp(-std::abs(a - b));
      }
      sizes_.push_back(m);
    }
    const double dd = (double)d_;
    norm_ = 1.0 + dd + dd * (dd - 1) / 2;
    first_ = first;
    rng_.seed(seed);
  }

  std::optional<size_t> next(const std::vector<Observation>& history) override {
    const size_t n_pts = idx_.size();
    if (history.size() >= n_pts) return std::nullopt;
    std::vector<bool> seen(n_pts, false);
    for (const auto& o : history) seen[o.index] = true;
    if (first_ >= 0 && !seen[(size_t)first_]) return (size_t)first_;
    const size_t n_init = std::min<size_t>(n_pts, std::max<size_t>(5, n_pts / 40));
    if (history.size() < n_init) return random_unseen(seen);

    // Targets: log score; failures one e-fold worse than the worst success.
    const size_t n = history.size();
    std::vector<double> y(n);
    double worst = -1e300, mean = 0;
    int finite = 0;
    for (const auto& o : history) {
      if (std::isfinite(o.score) && o.score > 0) {
        worst = std::max(worst, std::log(o.score));
        ++finite;
      }
    }
    if (finite == 0) return random_unseen(seen);
    for (size_t i = 0; i < n; ++i) {
      const double s = history[i].score;
      y[i] = (std::isfinite(s) && s > 0) ? std::log(s) : worst + 1.0;
      mean += y[i];
    }
    mean /= (double)n;
    double var = 0;
    for (double& v : y) {
      v -= mean;
      var += v * v;
    }
    var = std::max(var / (double)n, 1e-6);

    // K + noise I, Cholesky; alpha = K^-1 y.
    std::vector<double> L(n * n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j <= i; ++j) {
        L[i * n + j] = var * kernel(history[i].index, history[j].index);
      }
      L[i * n + i] += var * kNoise;
    }
    cholesky(L, n);
    std::vector<double> alpha = y;
    solve_lower(L, n, alpha);
    solve_upper(L, n, alpha);

    double best = 1e300;
    for (double v : y) best = std::min(best, v);
    double best_ei = -1;
    size_t best_i = n_pts;
    std::vector<double> kx(n);
    for (size_t c = 0; c < n_pts; ++c) {
      if (seen[c]) continue;
      for (size_t i = 0; i < n; ++i) kx[i] = var * kernel(c, history[i].index);
      double mu = 0;
      for (size_t i = 0; i < n; ++i) mu += kx[i] * alpha[i];
      std::vector<double> v = kx;
      solve_lower(L, n, v);
      double s2 = var * (1 + kNoise);
      for (double t : v) s2 -= t * t;
      const double sigma = std::sqrt(std::max(s2, 1e-12));
      const double z = (best - mu) / sigma;
      const double ei = (best - mu) * 0.5 * std::erfc(-z / std::sqrt(2.0)) +
                        sigma * std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
      if (ei > best_ei) {
        best_ei = ei;
        best_i = c;
      }
    }
    if (best_i == n_pts) return random_unseen(seen);
    return best_i;
  }

 private:
  static constexpr double kNoise = 0.01;  // measurement noise as a fraction of the variance

  double kernel(size_t a, size_t b) const {
    const std::vector<int>& p = idx_[a];
    const std::vector<int>& q = idx_[b];
    double s[32];
    double sum = 0, pairs = 0;
    for (size_t i = 0; i < d_ && i < 32; ++i) {
      s[i] = sim_[i][p[i] * sizes_[i] + q[i]];
      pairs += s[i] * sum;  // sum over j < i of s_i s_j
      sum += s[i];
    }
    return (1.0 + sum + pairs) / norm_;
  }

  size_t random_unseen(const std::vector<bool>& seen) {
    std::vector<size_t> unseen;
    for (size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i]) unseen.push_back(i);
    }
    return unseen[std::uniform_int_distribution<size_t>(0, unseen.size() - 1)(rng_)];
  }

  static void cholesky(std::vector<double>& a, size_t n) {
    for (size_t j = 0; j < n; ++j) {
      double d = a[j * n + j];
      for (size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
      d = std::sqrt(std::max(d, 1e-12));
      a[j * n + j] = d;
      for (size_t i = j + 1; i < n; ++i) {
        double v = a[i * n + j];
        for (size_t k = 0; k < j; ++k) v -= a[i * n + k] * a[j * n + k];
        a[i * n + j] = v / d;
      }
    }
  }
  static void solve_lower(const std::vector<double>& L, size_t n, std::vector<double>& b) {
    for (size_t i = 0; i < n; ++i) {
      double v = b[i];
      for (size_t k = 0; k < i; ++k) v -= L[i * n + k] * b[k];
      b[i] = v / L[i * n + i];
    }
  }
  static void solve_upper(const std::vector<double>& L, size_t n, std::vector<double>& b) {
    for (size_t i = n; i-- > 0;) {
      double v = b[i];
      for (size_t k = i + 1; k < n; ++k) v -= L[k * n + i] * b[k];
      b[i] = v / L[i * n + i];
    }
  }

  std::vector<std::vector<int>> idx_;
  std::vector<std::vector<double>> sim_;
  std::vector<int> sizes_;
  size_t d_ = 0;
  double norm_ = 1;
  int64_t first_ = -1;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Strategy> make_model_strategy() {
  return std::make_unique<ModelStrategy>();
}

}  // namespace tritune
