#include "cli/args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "kernels/error.h"

namespace tritune::cli {

Args::Args(std::string command, std::string description)
    : command_(std::move(command)), description_(std::move(description)) {}

Args& Args::option(const std::string& name, const std::string& metavar, const std::string& help,
                   const std::string& default_value) {
  order_.push_back(name);
  opts_[name] = Opt{metavar, help, default_value, false};
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  order_.push_back(name);
  opts_[name] = Opt{"", help, "", true};
  return *this;
}

std::string Args::help() const {
  std::ostringstream os;
  os << "usage: tritune " << command_ << (order_.empty() ? "" : " [options]") << "\n\n"
     << description_ << "\n";
  if (!order_.empty()) os << "\noptions:\n";
  for (const auto& name : order_) {
    const Opt& o = opts_.at(name);
    std::string lhs = "  " + name + (o.is_flag ? "" : " " + o.metavar);
    if (lhs.size() < 28)
      lhs.resize(28, ' ');
    else
      lhs += "\n" + std::string(28, ' ');
    os << lhs << o.help;
    if (!o.def.empty()) os << " (default: " << o.def << ")";
    os << "\n";
  }
  os << "  -h, --help" << std::string(16, ' ') << "show this help\n";
  return os.str();
}

bool Args::parse(const std::vector<std::string>& args) {
  std::string last_flag;  // the previous argument, when it was a flag (takes no value)
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::string value;
      bool has_value = false;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
      auto it = opts_.find(a);
      if (it == opts_.end()) {
        throw Error("unknown option '" + a + "' (see --help)");
      }
      if (it->second.is_flag) {
        if (has_value) throw Error(a + " takes no value");
        values_[a] = "1";
        last_flag = a;
        continue;
      }
      if (!has_value) {
        if (i + 1 >= args.size()) {
          throw Error(a + " needs a value (" + it->second.metavar + ")");
        }
        value = args[++i];
      }
      values_[a] = value;
      last_flag.clear();
    } else {
      // Every value goes with an option: a stray word is a mistake (a value given to a flag, or
      // a file without its option), and ignoring it would run with something else than asked.
      std::string hint = "(see --help)";
      if (last_flag == "--json") {
        hint =
            "(--json takes no value here: it prints the JSON on stdout; redirect it: > " + a + ")";
      } else if (!last_flag.empty()) {
        hint = "(" + last_flag + " takes no value)";
      } else if (opts_.count("-m") != 0) {
        hint = "(a model file goes after -m: -m " + a + ")";
      }
      throw Error("unexpected argument '" + a + "' " + hint);
    }
  }
  return true;
}

bool Args::has(const std::string& name) const {
  return values_.count(name) != 0;
}

std::string Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  auto o = opts_.find(name);
  return o == opts_.end() ? "" : o->second.def;
}

int64_t Args::get_int(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || end == nullptr || *end != 0) {
    throw Error(name + " expects an integer, got '" + v + "'");
  }
  if (errno == ERANGE) throw Error(name + " " + v + " is out of range");
  return x;
}

double Args::get_double(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end == nullptr || *end != 0 || !std::isfinite(x)) {
    throw Error(name + " expects a finite number, got '" + v + "'");
  }
  return x;
}

std::vector<std::string> Args::get_list(const std::string& name) const {
  std::vector<std::string> out;
  std::stringstream ss(get(name));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) throw Error(name + " '" + get(name) + "': an empty item in the list");
    out.push_back(item);
  }
  if (out.empty() || get(name).back() == ',') {
    throw Error(name + " '" + get(name) + "': give one or more comma-separated items");
  }
  return out;
}

std::vector<int64_t> Args::get_int_list(const std::string& name) const {
  std::vector<int64_t> out;
  for (const auto& s : get_list(name)) {
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(s.c_str(), &end, 10);
    if (end == nullptr || *end != 0) {
      throw Error(name + " expects integers, got '" + s + "'");
    }
    if (errno == ERANGE) throw Error(name + " " + s + " is out of range");
    out.push_back(x);
  }
  return out;
}

}  // namespace tritune::cli
