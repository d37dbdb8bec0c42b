#include "kernels/memory_budget.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace tritune {

int64_t available_memory_bytes(const std::string& meminfo_path) {
  std::ifstream in(meminfo_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 13, "MemAvailable:") != 0) continue;
    std::istringstream ss(line.substr(13));
    long long kb = -1;
    std::string unit;
    if (!(ss >> kb >> unit) || kb < 0 || unit != "kB") return -1;
    if (kb > (int64_t(1) << 52)) return -1;  // beyond 4 EiB: not a real figure
    return (int64_t)kb * 1024;
  }
  return -1;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

void require_memory(double bytes, const std::string& what, const std::string& fix,
                    int64_t available) {
  if (available < 0 || !(bytes > (double)available)) return;
  throw Error(what + " would need " + human_bytes(bytes) + ", more than the " +
              human_bytes((double)available) + " available (MemAvailable); " + fix);
}

void require_memory(double bytes, const std::string& what, const std::string& fix) {
  require_memory(bytes, what, fix, available_memory_bytes());
}

double weight_set_bytes(Format f, int64_t n, int64_t k, int64_t copies) {
  const FormatTraits& t = format_traits(f);
  const double weights = (double)n * (double)k;
  const double source = weights * (t.ternary ? 1.0 : 4.0);
  return source + (double)(copies + 1) * weights * t.bits_per_weight / 8.0;
}

}  // namespace tritune
