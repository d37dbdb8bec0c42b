#include "kernels/env.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>

namespace tritune {
namespace {

void warn_once(const char* name, const char* value, const std::string& accepted,
               const std::string& fallback) {
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mu);
  if (!warned.insert(name).second) return;
  std::fprintf(stderr, "warning: %s=%s is not %s; using %s\n", name, value, accepted.c_str(),
               fallback.c_str());
}

}  // namespace

int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* e = std::getenv(name);
  if (e == nullptr || *e == 0) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(e, &end, 10);
  if (errno == 0 && end != nullptr && *end == 0 && v >= lo && v <= hi) return v;
  warn_once(name, e,
            "an integer in " + std::to_string(lo) + ".." + std::to_string(hi),
            std::to_string(fallback));
  return fallback;
}

std::string env_choice(const char* name, std::initializer_list<const char*> choices,
                       const std::string& fallback) {
  const char* e = std::getenv(name);
  if (e == nullptr || *e == 0) return fallback;
  std::string list;
  for (const char* c : choices) {
    if (std::string(e) == c) return e;
    list += (list.empty() ? "" : ", ") + std::string(c);
  }
  warn_once(name, e, "one of " + list, fallback);
  return fallback;
}

}  // namespace tritune
