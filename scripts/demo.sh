#!/usr/bin/env bash
# The main job on an embedded default: set up, build, show the CPU and the Halide target tritune
# chose for it, then benchmark the I2_S kernels against the f16 baseline on the BitNet b1.58
# 2B4T shapes and print the speedup table (with the roofline measured in the same run).
#   scripts/demo.sh            # the default run (decode and 128-token prefill, 1 and 2 threads)
#   scripts/demo.sh --full     # every token count of the benchmark (1, 8, 32, 128, 512)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
bash scripts/configure.sh >/dev/null
bdir="${TRITUNE_BUILD_DIR:-build}"
out="$root/reports/$(hostname)-kernels"
mkdir -p "$(dirname "$out")"
echo
echo "== tritune info =="
"$bdir/cli/tritune" info
echo
echo "== tritune bench kernels (I2_S vs f16, BitNet b1.58 2B4T shapes) =="
tokens="1,128"
[ "${1:-}" = "--full" ] && tokens="1,8,32,128,512"
"$bdir/cli/tritune" bench kernels --shapes 2b4t --tokens "$tokens" --threads 1,2 \
  --json "$out.json" --table "$out.md"
echo
echo "Results: $out.json (rows + provenance), $out.md (table)"
