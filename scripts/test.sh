#!/usr/bin/env bash
# Install everything the test suite needs (see install.sh) and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
exec .venv/bin/python -m pytest "$@"
