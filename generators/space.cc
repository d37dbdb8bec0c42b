#include "generators/space.h"

#include <cstdlib>
#include <sstream>

#include "kernels/cpu_features.h"
#include "kernels/error.h"

namespace tritune {

Params SearchSpace::defaults() const {
  Params p;
  for (const auto& d : params) p[d.name] = d.default_value;
  return p;
}

Params SearchSpace::defaults_for(Isa isa) const {
  Params p;
  for (const auto& d : params) {
    auto it = d.isa_defaults.find(isa_name(isa));
    p[d.name] = it == d.isa_defaults.end() ? d.default_value : it->second;
  }
  return p;
}

int64_t SearchSpace::param_int(const Params& p, const std::string& name) const {
  auto it = p.find(name);
  if (it == p.end()) throw Error(generator + ": parameter '" + name + "' missing");
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (end == nullptr || *end != 0) {
    throw Error(generator + ": parameter " + name + "='" + it->second + "' is not an integer");
  }
  return v;
}

std::string SearchSpace::check(const Params& p, const Shape* shape, Isa isa) const {
  for (const auto& d : params) {
    auto it = p.find(d.name);
    if (it == p.end()) return "parameter " + d.name + " missing";
    bool ok = false;
    for (const auto& v : d.values) ok = ok || v == it->second;
    if (!ok) return "parameter " + d.name + "=" + it->second + " outside its domain";
  }
  for (const auto& c : constraints) {
    std::string why = c.check(p, shape, isa);
    if (!why.empty()) return c.text + ": " + why;
  }
  return "";
}

uint64_t SearchSpace::size() const {
  uint64_t n = 1;
  for (const auto& d : params) n *= d.values.size();
  return n;
}

std::vector<Params> SearchSpace::enumerate(const Shape* shape, Isa isa) const {
  std::vector<Params> out;
  std::vector<size_t> idx(params.size(), 0);
  while (true) {
    Params p;
    for (size_t i = 0; i < params.size(); ++i) p[params[i].name] = params[i].values[idx[i]];
    if (check(p, shape, isa).empty()) out.push_back(p);
    size_t i = 0;
    for (; i < params.size(); ++i) {
      if (++idx[i] < params[i].values.size()) break;
      idx[i] = 0;
    }
    if (i == params.size()) break;
  }
  return out;
}

const std::vector<SearchSpace>& all_spaces() {
  static const std::vector<SearchSpace> spaces = [] {
    std::vector<SearchSpace> s;
    for (auto& x : i2s_spaces()) s.push_back(std::move(x));
    for (auto& x : fp_spaces()) s.push_back(std::move(x));
    return s;
  }();
  return spaces;
}

const SearchSpace& find_space(const std::string& family, const std::string& op) {
  std::string known;
  for (const auto& s : all_spaces()) {
    if (s.family == family && s.op == op) return s;
    known += (known.empty() ? "" : ", ") + s.family + "_" + s.op;
  }
  throw Error("no search space for '" + family + "_" + op + "' (known: " + known + ")");
}

std::string variant_name(const SearchSpace& s, const Params& p, Isa isa) {
  std::ostringstream os;
  os << s.family << "_" << s.op;
  for (const auto& d : s.params) {
    auto it = p.find(d.name);
    os << "_" << d.key << (it == p.end() ? d.default_value : it->second);
  }
  os << "__" << isa_name(isa);
  return os.str();
}

VariantName parse_variant_name(const std::string& name) {
  const size_t sep = name.find("__");
  if (sep == std::string::npos) {
    throw Error("variant name '" + name + "' has no '__<isa>' suffix");
  }
  VariantName v;
  v.isa = parse_isa(name.substr(sep + 2));
  std::vector<std::string> tok;
  std::stringstream ss(name.substr(0, sep));
  std::string t;
  while (std::getline(ss, t, '_')) tok.push_back(t);
  if (tok.size() < 2) throw Error("variant name '" + name + "' lacks <family>_<op>");
  v.family = tok[0];
  v.op = tok[1];
  const SearchSpace& s = find_space(v.family, v.op);
  if (tok.size() - 2 != s.params.size()) {
    throw Error("variant name '" + name + "' has " + std::to_string(tok.size() - 2) +
                " schedule fields, " + s.generator + " declares " +
                std::to_string(s.params.size()));
  }
  for (size_t i = 0; i < s.params.size(); ++i) {
    const ParamDomain& d = s.params[i];
    const std::string& f = tok[i + 2];
    if (f.compare(0, d.key.size(), d.key) != 0) {
      throw Error("variant name '" + name + "': field '" + f + "' should start with '" + d.key +
                  "' (" + d.name + ")");
    }
    v.params[d.name] = f.substr(d.key.size());
  }
  const std::string why = s.check(v.params, nullptr, v.isa);
  if (!why.empty()) throw Error("variant name '" + name + "' is not a legal point: " + why);
  return v;
}

}  // namespace tritune
