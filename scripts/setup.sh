#!/usr/bin/env bash
# Installs what tritune needs, idempotently: Debian packages (apt-get) and a
# project virtual environment (.venv) from the pinned requirements.txt.
# Fast when everything is already there (no network access in that case).
# Arguments: more Debian packages to install the same way (scripts/fuzz.sh: clang).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

debs=(build-essential git libgtest-dev libgmock-dev libbenchmark-dev likwid python3-venv "$@")
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing Python packages from requirements.txt"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
echo "[setup] ok: $(.venv/bin/cmake --version | head -1), halide $(.venv/bin/python -c 'import halide,importlib.metadata as m; print(m.version("halide"))')"
