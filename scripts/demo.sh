#!/usr/bin/env bash
# Set up (see setup.sh) and run the demo: python -m skmetric, with any options passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m skmetric "$@"
