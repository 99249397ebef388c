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
# -n 2 --dist loadfile: two workers, each taking whole files (a file's module fixtures are built once); most of
# the suite's time is single-threaded MindSpore start-up in subprocesses, so two overlap well on two cores
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 -n 2 --dist loadfile "$@"
