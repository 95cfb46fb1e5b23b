#!/usr/bin/env bash
# The test suite: installs what is needed, then runs every test. Integration tests start (and delete) their own
# Kafka brokers on free ports; the broker's jars are fetched from Maven Central once into ~/.cache/bizstream.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m pytest "$@"
