#!/usr/bin/env bash
# The test suite: installs what is needed, then runs every test. Integration tests start (and delete) their own
# Kafka brokers on free ports; the broker's jars are fetched from Maven Central once into ~/.cache/bizstream.
# With no arguments (as CI runs it) it also type-checks first (scripts/typecheck.sh: mypy --strict, ruff).
# Extra arguments go to pytest alone, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
if [ $# -eq 0 ]; then
  scripts/typecheck.sh
fi
exec .venv/bin/python -m pytest "$@"
