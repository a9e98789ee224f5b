#!/usr/bin/env bash
# Set up (a no-op when nothing changed), lint, then run the tests in two stages: everything but the long
# parity runs first (quick feedback), then those (`-m slow`). Both stages always run; arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "test: ruff check"
.venv/bin/ruff check .

# Two workers by default (CI has 2 cores; much of a test is waiting on Ray, a server or a subprocess), one test
# file per worker so a file's servers start once, in collection order (the long files first: tests/conftest.py);
# SAM2_RAY_TEST_WORKERS=0 runs in one process.
workers=(-n "${SAM2_RAY_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder)
# Stage 1: one compute thread per process. Two workers already fill two cores, and torch's threads spinning
# against each other and the Ray replicas made the compute-heavy files a third slower (351 s against 234 s for
# the parity files). Stage 2 keeps torch's default: its long tests end alone, with a core to spare.
threads=(env "OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}")
[[ ${SAM2_RAY_TEST_WORKERS:-2} == 0 ]] && workers=(-p no:xdist)

# pytest's exit code 5 means the stage selected no test: fine for one stage, not for both.
codes=()
echo "test: pytest, stage 1 of 2 (all but the long parity runs)"
"${threads[@]}" .venv/bin/python -m pytest -q "${workers[@]}" -m "not slow" --durations=15 "$@" && codes+=(0) || codes+=($?)
echo "test: pytest, stage 2 of 2 (the long parity runs, -m slow)"
.venv/bin/python -m pytest -q "${workers[@]}" -m slow --durations=15 "$@" && codes+=(0) || codes+=($?)
for code in "${codes[@]}"; do
  [[ $code -eq 0 || $code -eq 5 ]] || exit "$code"
done
[[ ${codes[0]} -eq 0 || ${codes[1]} -eq 0 ]] || exit 5
