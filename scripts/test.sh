#!/usr/bin/env bash
# The test command: set-up, configure, build, then every test (ctest: GoogleTest suites and the
# generated-table check).
#   scripts/test.sh               the suite (what CI runs)
#   scripts/test.sh --sanitize    also build everything with ASan+UBSan into build-asan/ and run
#                                 the suite there (about 15 minutes on 2 cores, mostly the build);
#                                 any ASan or UBSan report fails its test
# Other arguments go to ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
sanitize=0
args=()
for a in "$@"; do
  if [ "$a" = "--sanitize" ]; then sanitize=1; else args+=("$a"); fi
done
bash scripts/setup.sh
bash scripts/configure.sh
bdir="${TRITUNE_BUILD_DIR:-build}"
export PATH="$root/.venv/bin:$PATH"
ctest --test-dir "$bdir" --output-on-failure -j "$(nproc)" "${args[@]}"
if [ "$sanitize" = 1 ]; then
  TRITUNE_BUILD_DIR=build-asan bash scripts/configure.sh -DTRITUNE_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
  # handle_segv=0: the tuner's isolation test crashes a child on purpose and checks the signal.
  ASAN_OPTIONS=detect_leaks=0:handle_segv=0 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)" "${args[@]}"
fi
