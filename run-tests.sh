#!/usr/bin/env bash
# The test command: import contract, lint, types, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh test
.venv/bin/lint-imports
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy gitops controller
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
