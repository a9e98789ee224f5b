#!/usr/bin/env bash
# Set up (a no-op when nothing changed), lint, then run the tests; arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "test: ruff check"
.venv/bin/ruff check .
echo "test: pytest"
.venv/bin/python -m pytest -q "$@"
