#!/usr/bin/env bash
# The test suite: set up .venv (and shellcheck when root can install it), then pytest.
set -eu
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1 || echo "note: could not install shellcheck"
fi
# no path given: pytest.ini's testpaths, the unit tier first, then the integration tier
# --durations: the slowest tests in every log, so the suite's time stays watched
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
