// The identity a tuning result is valid for: the CPU (vendor, model, ISA flags, core count, cache
// sizes), the Halide version that compiled the kernels, and a hash of the generator sources.
// Tuning databases are one file per fingerprint and refuse records of another one.
#pragma once
#include <string>

#include "kernels/json.h"

namespace tritune {

struct Fingerprint {
  std::string cpu;             // cpu_fingerprint_text()
  std::string halide_version;  // e.g. "21.0.0"
  std::string kernel_hash;     // TRITUNE_KERNEL_SOURCE_HASH (generators/*.cpp, *.h)

  // 16 hex digits (FNV-1a 64 of the three fields): names the database file.
  std::string id() const;
  // Readable file stem: "<cpu brand slug>-<id>".
  std::string file_stem() const;
  json::Value to_json() const;
  static Fingerprint from_json(const json::Value& j);  // throws Error naming a missing field
  // Empty if equal, else one line per differing field ("kernel_hash: 'a' here, 'b' in file").
  std::string diff(const Fingerprint& other) const;
  bool operator==(const Fingerprint& o) const { return diff(o).empty(); }
};

// This process: cpu_info() of this machine, the linked Halide, the built generator sources
// (kernels/cache_dir.h: the same key the JIT kernel cache uses).
Fingerprint current_fingerprint();

// Where tuning databases live by default: kernels/cache_dir.h cache_root() ($TRITUNE_CACHE_DIR,
// else $XDG_CACHE_HOME/tritune, else ~/.cache/tritune).
std::string default_db_dir();

}  // namespace tritune
