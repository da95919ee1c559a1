#!/usr/bin/env bash
# Set up (or reuse) .venv and the system data packages, lint, then run the test suite.
# This is README's test command and what CI (.ci/run) calls.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
t0=$SECONDS
bash tools/setup_env.sh
bash tools/install_system_deps.sh
echo "[run_tests] environment ready in $((SECONDS - t0)) s"
# Lint first (rules in ruff.toml): a lint error fails the run before the slower tests start.
.venv/bin/ruff check .
echo "[run_tests] lint passed"
.venv/bin/python -m pytest tests -q "$@"
echo "[run_tests] done in $((SECONDS - t0)) s"
