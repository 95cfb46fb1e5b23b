#!/usr/bin/env bash
# mypy --strict (settings in pyproject.toml) over the package and the built-in plugins, and ruff's lint (imports).
# The plugins/ folder is imported as bizstream_plugins (pyproject.toml maps it); mypy maps modules to folders by name,
# so it reads plugins/ through a link named bizstream_plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/typecheck
ln -sfn ../../plugins build/typecheck/bizstream_plugins
MYPYPATH=build/typecheck .venv/bin/mypy -p bizstream -p bizstream_plugins
.venv/bin/python -m ruff check bizstream plugins tests bench docs
