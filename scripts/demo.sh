#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, then the whole product on a Kafka of its own — every agent
# and the dashboard, the sample /biz/ posts scored, the sample labels through the labels topic, the trainer's
# decisions as they come, and a summary (accuracy before and after on held-back labels, the promoted version, the
# top tickers). --keep-dashboard leaves it all up at the end, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/bizstream demo --loop "$@"
