#!/usr/bin/env bash
# Create .venv (if missing) and install the runtime and test requirements into it.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# --no-compile: no byte-compiling of every module of MindSpore and the rest at install time; Python compiles
# what is imported, on first use
.venv/bin/python -m pip install -q --disable-pip-version-check --no-compile -r requirements.txt -r requirements-dev.txt
