#!/usr/bin/env bash
# The test command: set-up, configure, build, then every test (ctest: GoogleTest suites and pytest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
bash scripts/configure.sh
bdir="${TRITUNE_BUILD_DIR:-build}"
export PATH="$root/.venv/bin:$PATH"
ctest --test-dir "$bdir" --output-on-failure -j "$(nproc)" "$@"
