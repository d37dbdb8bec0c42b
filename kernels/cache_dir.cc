#include "kernels/cache_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "HalideRuntime.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"

namespace tritune {

std::string make_dirs(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
        throw Error("cannot create directory " + cur + ": " + std::strerror(errno));
      }
    }
    if (i < path.size()) cur += path[i];
  }
  return path;
}

std::string cache_root() {
  if (const char* d = std::getenv("TRITUNE_CACHE_DIR"); d && *d) return make_dirs(d);
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    return make_dirs(std::string(x) + "/tritune");
  }
  const char* home = std::getenv("HOME");
  return make_dirs(std::string(home && *home ? home : "/tmp") + "/.cache/tritune");
}

std::string kernel_source_hash() {
  return TRITUNE_KERNEL_SOURCE_HASH;
}

std::string halide_version_string() {
  return std::to_string(HALIDE_VERSION_MAJOR) + "." + std::to_string(HALIDE_VERSION_MINOR) + "." +
         std::to_string(HALIDE_VERSION_PATCH);
}

std::string kernel_cache_dir() {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c :
       cpu_fingerprint_text() + "|" + halide_version_string() + "|" + kernel_source_hash()) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char key[17];
  std::snprintf(key, sizeof key, "%016llx", (unsigned long long)h);
  return make_dirs(cache_root() + "/kernels/" + key);
}

}  // namespace tritune
