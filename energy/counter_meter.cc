#include "energy/counter_meter.h"

#include <algorithm>
#include <chrono>

#include "kernels/error.h"

namespace tritune {

double monotonic_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

uint64_t counter_delta(uint64_t before, uint64_t after, uint64_t wrap) {
  if (wrap == 0) return after - before;  // 64-bit modular arithmetic
  before %= wrap;
  after %= wrap;
  return after >= before ? after - before : wrap - before + after;
}

CounterMeter::CounterMeter(std::unique_ptr<CounterSource> src, CounterMeterOptions o)
    : src_(std::move(src)) {
  if (!src_) throw Error("CounterMeter: no counter source");
  source_name_ = src_->source();
  doms_ = src_->domains();
  if (doms_.empty()) throw Error("CounterMeter: source " + source_name_ + " has no domains");
  resolution_ = src_->resolution_joules();
  interval_ = src_->update_interval_seconds();
  acc_j_.assign(doms_.size(), 0.0);
  if (o.sample_period_s > 0) {
    period_ = o.sample_period_s;
  } else if (o.sample_period_s < 0) {
    // The shortest time any counter needs to wrap at the assumed power, over 4: even at that
    // power the sampler reads each counter several times per wrap.
    double shortest = 1e30;
    for (const auto& d : doms_) {
      if (d.wrap == 0) continue;
      shortest = std::min(shortest, (double)d.wrap * d.joules_per_tick / o.assumed_max_watts);
    }
    period_ = shortest >= 1e29 ? 1.0 : std::clamp(shortest / 4.0, 0.01, 1.0);
  }
}

CounterMeter::~CounterMeter() {
  stop_sampler();
}

std::vector<EnergyDomain> CounterMeter::domains() const {
  std::vector<EnergyDomain> r;
  for (const auto& d : doms_) {
    if (std::find(r.begin(), r.end(), d.domain) == r.end()) r.push_back(d.domain);
  }
  return r;
}

void CounterMeter::sample_locked() {
  std::vector<uint64_t> now;
  src_->read(&now);
  if (now.size() != doms_.size()) {
    throw Error("energy source " + source_name_ + " returned " + std::to_string(now.size()) +
                " values for " + std::to_string(doms_.size()) + " domains");
  }
  for (size_t i = 0; i < now.size(); ++i) {
    const uint64_t w = doms_[i].wrap;
    if (w != 0 && now[i] % w < last_[i] % w) ++wraps_;
    acc_j_[i] += (double)counter_delta(last_[i], now[i], w) * doms_[i].joules_per_tick;
    last_[i] = now[i];
  }
}

void CounterMeter::sample() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!running_) return;
  sample_locked();
}

void CounterMeter::sampler_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!quit_) {
    cv_.wait_for(lk, std::chrono::duration<double>(period_), [&] { return quit_; });
    if (quit_ || !running_) break;
    try {
      sample_locked();
    } catch (const Error&) {
      // A transient read failure is retried at the next period; stop() reports a lasting one.
    }
  }
}

void CounterMeter::stop_sampler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void CounterMeter::start() {
  stop_sampler();
  std::lock_guard<std::mutex> lk(mu_);
  src_->read(&last_);
  if (last_.size() != doms_.size()) {
    throw Error("energy source " + source_name_ + " returned " + std::to_string(last_.size()) +
                " values for " + std::to_string(doms_.size()) + " domains");
  }
  std::fill(acc_j_.begin(), acc_j_.end(), 0.0);
  wraps_ = 0;
  t_start_ = monotonic_seconds();
  t_stop_ = 0;
  running_ = true;
  quit_ = false;
  if (period_ > 0) sampler_ = std::thread([this] { sampler_loop(); });
}

void CounterMeter::stop() {
  stop_sampler();
  std::lock_guard<std::mutex> lk(mu_);
  if (!running_) return;
  sample_locked();
  t_stop_ = monotonic_seconds();
  running_ = false;
}

int64_t CounterMeter::wraps_seen() const {
  std::lock_guard<std::mutex> lk(mu_);
  return wraps_;
}

EnergyReading CounterMeter::results() const {
  std::lock_guard<std::mutex> lk(mu_);
  EnergyReading r;
  r.source = source_name_;
  r.estimated = false;
  r.resolution_j = resolution_;
  r.seconds = running_ ? monotonic_seconds() - t_start_ : t_stop_ - t_start_;
  if (t_start_ == 0) r.seconds = 0;
  for (size_t i = 0; i < doms_.size(); ++i) {
    r.domains.push_back({doms_[i].domain, doms_[i].label, acc_j_[i]});
  }
  return r;
}

}  // namespace tritune
