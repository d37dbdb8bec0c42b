#include "tuner/record.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"
#include "kernels/stats.h"
#include "tuner/shapes.h"

namespace tritune {

const char* objective_name(Objective o) {
  switch (o) {
    case Objective::kTime:
      return "time";
    case Objective::kEnergy:
      return "energy";
    case Objective::kEdp:
      return "edp";
  }
  return "?";
}

Objective parse_objective(const std::string& s) {
  if (s == "time") return Objective::kTime;
  if (s == "energy") return Objective::kEnergy;
  if (s == "edp") return Objective::kEdp;
  throw Error("unknown objective '" + s + "' (known: time, energy, edp)");
}

std::string TaskKey::str() const {
  return format + " " + op + " " + std::to_string(n) + "x" + std::to_string(k) + " t" +
         std::to_string(tokens) + " x" + std::to_string(threads) + " " + cache;
}

json::Value json_number(double v) {
  return std::isfinite(v) ? json::Value(v) : json::Value();
}

json::Value json_numbers(const std::vector<double>& v) {
  json::Value a = json::Value::array();
  for (double x : v) a.push_back(json_number(x));
  return a;
}

std::vector<double> numbers_of(const json::Value& array) {
  std::vector<double> out;
  for (const json::Value& x : array.as_array()) {
    out.push_back(x.is_null() ? std::numeric_limits<double>::infinity() : x.as_double());
  }
  return out;
}

double median(std::vector<double> v) {
  return median_or(std::move(v), std::numeric_limits<double>::infinity());
}

double paired_ratio(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) return std::numeric_limits<double>::infinity();
  if (a.size() != b.size()) return median(a) / median(b);
  std::vector<double> r;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(b[i] > 0) || !std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    r.push_back(a[i] / b[i]);
  }
  return median(r);
}

double objective_value(Objective o, const std::vector<double>& time_s,
                       const std::vector<double>& energy_j) {
  switch (o) {
    case Objective::kTime:
      return median(time_s);
    case Objective::kEnergy:
      return median(energy_j);
    case Objective::kEdp:
      return median(energy_j) * median(time_s);
  }
  return std::numeric_limits<double>::infinity();
}

double Record::score() const {
  if (!m.ok()) return std::numeric_limits<double>::infinity();
  return paired_ratio(m.time_s, m.baseline_time_s);
}

json::Value Record::to_json() const {
  json::Value j = json::Value::object();
  j.set("variant", variant);
  j.set("format", task.format);
  j.set("family", task.family);
  j.set("op", task.op);
  j.set("n", task.n);
  j.set("k", task.k);
  j.set("tokens", task.tokens);
  j.set("threads", task.threads);
  j.set("cache", task.cache);
  json::Value p = json::Value::object();
  for (const auto& kv : params) p.set(kv.first, kv.second);
  j.set("params", p);
  j.set("status", m.status);
  j.set("reason", m.reason);
  j.set("objective", objective);
  j.set("value", json_number(value));
  j.set("baseline_value", json_number(baseline_value));
  j.set("time_s", json_numbers(m.time_s));
  j.set("baseline", m.baseline_variant);
  j.set("baseline_time_s", json_numbers(m.baseline_time_s));
  j.set("energy_j", json_numbers(m.energy_j));
  j.set("baseline_energy_j", json_numbers(m.baseline_energy_j));
  j.set("energy_source", m.energy_source);
  j.set("compile_s", json_number(m.compile_s));
  j.set("strategy", strategy);
  j.set("unix_time", json_number(unix_time));
  return j;
}

Record Record::from_json(const json::Value& j) {
  Record r;
  auto num_or_inf = [&](const char* key) {
    const json::Value& v = j.at(key);
    return v.is_null() ? std::numeric_limits<double>::infinity() : v.as_double();
  };
  try {
    r.variant = j.at("variant").as_string();
    r.task.format = j.at("format").as_string();
    r.task.family = j.at("family").as_string();
    r.task.op = j.at("op").as_string();
    r.task.n = j.at("n").as_int64();
    r.task.k = j.at("k").as_int64();
    r.task.tokens = j.at("tokens").as_int64();
    r.task.threads = (int)j.at("threads").as_int64();
    r.task.cache = j.at("cache").as_string();
    for (const auto& kv : j.at("params").members()) r.params[kv.first] = kv.second.as_string();
    r.m.status = j.at("status").as_string();
    r.m.reason = j.at("reason").as_string();
    r.objective = j.at("objective").as_string();
    r.value = num_or_inf("value");
    r.baseline_value = num_or_inf("baseline_value");
    r.m.time_s = numbers_of(j.at("time_s"));
    r.m.baseline_variant = j.at("baseline").as_string();
    r.m.baseline_time_s = numbers_of(j.at("baseline_time_s"));
    r.m.energy_j = numbers_of(j.at("energy_j"));
    r.m.baseline_energy_j = numbers_of(j.at("baseline_energy_j"));
    r.m.energy_source = j.at("energy_source").as_string();
    r.m.compile_s = j.at("compile_s").as_double();
    r.strategy = j.at("strategy").as_string();
    r.unix_time = j.at("unix_time").as_double();
  } catch (const Error& e) {
    throw Error(std::string("tuning record: ") + e.what());
  }
  if (r.task.n <= 0 || r.task.k <= 0 || r.task.tokens <= 0 || r.task.threads <= 0) {
    throw Error("tuning record: non-positive n, k, tokens or threads");
  }
  // The bounds the tuner itself measures within (tuner/shapes.h, the kernels' thread limit).
  if (r.task.n > kMaxShapeDim || r.task.k > kMaxShapeDim || r.task.tokens > kMaxTaskTokens ||
      r.task.threads > kMaxTaskThreads) {
    throw Error("tuning record: n, k, tokens or threads beyond what the tuner measures");
  }
  // Written by a tuner run with no timing samples (--reps 0 was once accepted): resuming it
  // would count a candidate as measured and failed forever. Skipped, so it is measured again.
  if (r.m.status == "ok" && (r.m.time_s.empty() || r.m.baseline_time_s.empty())) {
    throw Error("tuning record: status ok without timing samples");
  }
  return r;
}

}  // namespace tritune
