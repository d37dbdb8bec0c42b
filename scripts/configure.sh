#!/usr/bin/env bash
# Configures and builds tritune into build/ (or $TRITUNE_BUILD_DIR) with the venv's CMake + Ninja.
# Usage: scripts/configure.sh [extra cmake args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bdir="${TRITUNE_BUILD_DIR:-build}"
export PATH="$root/.venv/bin:$PATH"
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
if [ ! -f "$bdir/build.ninja" ]; then
  cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$root/.venv/bin/python" -DTRITUNE_WERROR=$werror "$@"
fi
cmake --build "$bdir" -j "$(nproc)"
