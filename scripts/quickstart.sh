#!/usr/bin/env bash
# The main job: set up .venv, then train SRCNN x2 for a few minutes and score it on held-out photographs.
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m src.release.quickstart "$@"
