#!/usr/bin/env bash
# The GPU checks: the tests marked `gpu` (4-bit NF4 loading of LLaVA through bitsandbytes, QLoRA through peft), with
# the rest of tests/plugins/llava beside them so that the CPU paths also run where CUDA is present.
#
#   scripts/gpu-check.sh                  # a GPU machine that can install: the project's venv (scripts/install.sh)
#   scripts/gpu-check.sh --fetch DIR      # on a machine with network: the wheels an offline GPU image may lack
#   scripts/gpu-check.sh --offline DIR    # on a GPU machine with no network: its own python3 (with torch and
#                                         # transformers) plus DIR's wheels, installed into a scratch folder
#
# Offline, the image's torch and transformers are used as they are (their versions are printed), and only the
# packages below are added, at the versions pyproject.toml pins. Exits non-zero when CUDA is absent: a GPU check that
# skipped its GPU tests has checked nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDED=(bitsandbytes peft orjson)  # what a torch + transformers + pytest image lacked (an H200 image, 2026-11-27)
TESTS=(tests/plugins/llava/test_llava.py)
PYTHON=${PYTHON:-python3}

pinned() {  # name==version as pyproject.toml pins it
  grep -oE "\"$1==[^\"]+\"" pyproject.toml | tr -d '"'
}

run_tests() {  # $1: the python to run them with
  "$1" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("no CUDA here: the gpu tests would only skip; run this on the GPU machine")
import bitsandbytes, peft, transformers
print(f"{torch.cuda.get_device_name()} · torch {torch.__version__} (CUDA {torch.version.cuda}) · transformers "
      f"{transformers.__version__} · peft {peft.__version__} · bitsandbytes {bitsandbytes.__version__}")
EOF
  "$1" -m pytest -p no:cacheprovider -v -rfEs "${TESTS[@]}"
}

case "${1:-}" in
  "")
    scripts/install.sh
    run_tests .venv/bin/python
    ;;
  --fetch)
    dir=${2:?usage: scripts/gpu-check.sh --fetch DIR}
    mkdir -p "$dir"
    for name in "${ADDED[@]}"; do
      for py in 3.11 3.12 3.13; do  # the image's Python is not known here; orjson is the only compiled one
        "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
          --platform manylinux2014_x86_64 --platform manylinux_2_24_x86_64 -d "$dir" "$(pinned "$name")"
      done
    done
    ls "$dir"
    ;;
  --offline)
    dir=${2:?usage: scripts/gpu-check.sh --offline DIR}
    site=$(mktemp -d)
    trap 'rm -rf "$site"' EXIT
    # shellcheck disable=SC2046  # one argument per pinned package
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" --find-links "$dir" \
      $(for name in "${ADDED[@]}"; do pinned "$name"; done)
    ln -s "$PWD/plugins" "$site/bizstream_plugins"  # what the project's install maps plugins/ to
    PYTHONPATH="$site:$PWD" run_tests "$PYTHON"
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
