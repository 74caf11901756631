#!/usr/bin/env bash
# Create .venv (once) and install skmetric with every extra the demo and tests use.
# torch==2.13.0 goes first: it is a CPU build served from local disk, and it keeps pip from
# pulling a multi-GB CUDA build when skorch or pytorch-metric-learning ask for torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install torch==2.13.0
pip_install -e ".[deep,dev]"
