#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of untrusted files (GGUF, safetensors + config.json,
# tokenizer.json, tuning databases) and of the tokenizer's round trip on any text, with
# libFuzzer under ASan + UBSan: tests/fuzz/fuzz_loaders.cc.
#
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]     (default 300 seconds)
#
# Builds build-fuzz/ with clang (installs clang and its runtime with apt-get when missing),
# writes seed files with `tritune make-model` (tiny I2_S, TQ2_0, TQ1_0, F16 GGUF; a safetensors
# checkpoint; its tokenizer as tokenizer.json; a small tuning database), and runs the fuzzer on
# one core. The corpus grows in build-fuzz/corpus/ across runs. A crash leaves its input in
# build-fuzz/crashes/: to keep it fixed, copy it into tests/fuzz/regressions/ (the test suite
# replays every file there through the same targets: test_model's FuzzRegressions).
# A later -max_len=N overrides the default 2 MiB (smaller inputs run many times faster).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
seconds="${1:-300}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "scripts/fuzz.sh: SECONDS must be a whole number, not '$seconds' (see --help)" >&2
  exit 2
fi
shift || true

bash scripts/setup.sh clang libclang-rt-dev

export PATH="$root/.venv/bin:$PATH"
bdir=build-fuzz
if [ ! -f "$bdir/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPython_EXECUTABLE="$root/.venv/bin/python" -DTRITUNE_FUZZ=ON
fi
cmake --build "$bdir" -j "$(nproc)" --target fuzz_loaders tritune

# Seeds: the first byte of each picks the target (see tests/fuzz/fuzz_targets.h).
seeds="$bdir/seeds"
if [ ! -f "$seeds/.done" ]; then
  rm -rf "$seeds"
  mkdir -p "$seeds/raw" "$bdir/corpus"
  export ASAN_OPTIONS=detect_leaks=0
  for f in i2_s tq2_0 tq1_0 f16; do
    "$bdir/cli/tritune" make-model --shape tiny --format "$f" --layers 1 -o "$seeds/raw/$f.gguf"
    { printf '\x00'; cat "$seeds/raw/$f.gguf"; } > "$seeds/gguf_$f"
  done
  "$bdir/cli/tritune" make-model --shape tiny --format safetensors --layers 1 -o "$seeds/hf"
  { printf '\x01'; cat "$seeds/hf/model.safetensors"; } > "$seeds/safetensors"
  { printf '\x02'; cat "$seeds/hf/config.json"; } > "$seeds/config"
  if [ -f "$seeds/hf/tokenizer.json" ]; then
    { printf '\x03'; cat "$seeds/hf/tokenizer.json"; } > "$seeds/tokenizer"
  fi
  # A tuning database: header and two records (tuner/database.h).
  {
    printf '\x04'
    cat <<'JSONL'
{"tritune_tuning_db": 1, "fingerprint": {"cpu": "FuzzVendor|Fuzz CPU|f1m1", "halide_version": "21.0.0", "kernel_hash": "0123456789abcdef", "id": "4133cb827bf13467"}, "created": 1796411758.0}
{"variant": "i2s_gemv_r1__avx2", "format": "i2_s", "family": "i2s", "op": "gemv", "n": 256, "k": 512, "tokens": 1, "threads": 1, "cache": "cold", "params": {"rows": "1"}, "status": "ok", "reason": "", "objective": "time", "value": 1e-05, "baseline_value": 2e-05, "time_s": [1e-05, 1.1e-05], "baseline": "", "baseline_time_s": [2e-05, 2e-05], "energy_j": [], "baseline_energy_j": [], "energy_source": "", "compile_s": 0.0, "strategy": "grid", "unix_time": 0.0}
{"variant": "i2s_gemm_r2__avx512", "format": "i2_s", "family": "i2s", "op": "gemm", "n": 2560, "k": 6912, "tokens": 128, "threads": 2, "cache": "warm", "params": {"rows": "2", "tokens": "8"}, "status": "failed", "reason": "timeout", "objective": "energy", "value": 3.5e-3, "baseline_value": 7e-3, "time_s": [1e-3], "baseline": "f16_gemm", "baseline_time_s": [2e-3], "energy_j": [0.1], "baseline_energy_j": [0.2], "energy_source": "model", "compile_s": 1.5, "strategy": "model", "unix_time": 1700000000.0}
JSONL
  } > "$seeds/tuning_db"
  touch "$seeds/.done"
fi

# Target 5: text for the tokenizer's round trip (added after the others: seeded even when the
# rest of the seeds are already there).
if [ ! -f "$seeds/text" ]; then
  {
    printf '\x05'
    printf "Hello, world! It's 2026: 12345 caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n\t  "
    printf "<|begin_of_text|>x<|eot_id|> we'LL \xff\xfe\xc3 end"
  } > "$seeds/text"
fi

mkdir -p "$bdir/crashes" "$bdir/corpus"
echo "[fuzz] running for ${seconds}s; corpus $bdir/corpus, crashes in $bdir/crashes"
ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
  TRITUNE_FUZZ_SEED_HF="$seeds/hf" \
  "$bdir/tests/fuzz_loaders" "$bdir/corpus" "$seeds" -max_total_time="$seconds" \
  -max_len=2097152 -rss_limit_mb=4096 -malloc_limit_mb=1024 -timeout=30 \
  -artifact_prefix="$bdir/crashes/" -print_final_stats=1 "$@"
