#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, start the local Kafka broker and a worker, stream the
# sample /biz/ posts through, show the scores as they arrive, then shut everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/bizstream demo "$@"
