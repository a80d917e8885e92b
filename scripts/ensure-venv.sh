#!/usr/bin/env bash
# Create .venv (if missing) and install mesh-gitops into it, editable.
# Usage: scripts/ensure-venv.sh [extras]   e.g. scripts/ensure-venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
spec="."
if [ -n "${1:-}" ]; then spec=".[$1]"; fi
# Re-install only when pyproject.toml changed since the last install.
stamp=".venv/.installed-${1:-runtime}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
  touch "$stamp"
fi
