#include "tuner/fingerprint.h"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "kernels/cache_dir.h"
#include "kernels/cpu_features.h"
#include "kernels/error.h"

namespace tritune {

namespace {
uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace

std::string Fingerprint::id() const {
  // Separators keep ("ab","c") and ("a","bc") apart.
  const uint64_t h = fnv1a(cpu + "\x1f" + halide_version + "\x1f" + kernel_hash);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

std::string Fingerprint::file_stem() const {
  // The brand is the second '|' field of cpu_fingerprint_text().
  std::string brand;
  const size_t a = cpu.find('|');
  if (a != std::string::npos) brand = cpu.substr(a + 1, cpu.find('|', a + 1) - a - 1);
  std::string slug;
  for (char c : brand) {
    if (std::isalnum((unsigned char)c)) {
      slug += (char)std::tolower((unsigned char)c);
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
    if (slug.size() >= 40) break;
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return (slug.empty() ? std::string("cpu") : slug) + "-" + id();
}

json::Value Fingerprint::to_json() const {
  json::Value j = json::Value::object();
  j.set("cpu", cpu);
  j.set("halide_version", halide_version);
  j.set("kernel_hash", kernel_hash);
  j.set("id", id());
  return j;
}

Fingerprint Fingerprint::from_json(const json::Value& j) {
  Fingerprint f;
  try {
    f.cpu = j.at("cpu").as_string();
    f.halide_version = j.at("halide_version").as_string();
    f.kernel_hash = j.at("kernel_hash").as_string();
  } catch (const Error& e) {
    throw Error(std::string("fingerprint: ") + e.what());
  }
  return f;
}

std::string Fingerprint::diff(const Fingerprint& o) const {
  std::string out;
  auto cmp = [&](const char* name, const std::string& a, const std::string& b) {
    if (a != b)
      out += std::string(out.empty() ? "" : "; ") + name + ": '" + a + "' here, '" + b + "' there";
  };
  cmp("cpu", cpu, o.cpu);
  cmp("halide_version", halide_version, o.halide_version);
  cmp("kernel_hash", kernel_hash, o.kernel_hash);
  return out;
}

Fingerprint current_fingerprint() {
  Fingerprint f;
  f.cpu = cpu_fingerprint_text();
  f.halide_version = halide_version_string();
  f.kernel_hash = kernel_source_hash();
  return f;
}

std::string default_db_dir() {
  return cache_root();
}

}  // namespace tritune
