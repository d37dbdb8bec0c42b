// Where tritune keeps per-user state: $TRITUNE_CACHE_DIR, else $XDG_CACHE_HOME/tritune, else
// ~/.cache/tritune. Compiled JIT kernels live in kernels/<cpu key>/ below it.
#pragma once
#include <string>

namespace tritune {

std::string cache_root();          // created if missing
std::string kernel_cache_dir();    // cache_root()/kernels/<cpu+halide+source key>, created
std::string kernel_source_hash();  // hash of generators/*.cpp|*.h at build time
std::string halide_version_string();
std::string make_dirs(const std::string& path);  // mkdir -p; returns path; throws Error

}  // namespace tritune
