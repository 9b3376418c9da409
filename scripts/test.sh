#!/usr/bin/env bash
# Installs everything the tests need, then runs ruff and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The report test renders report.html in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium not found and apt-get unavailable: browser tests will be skipped outside CI" >&2
    fi
fi
python -m ruff check lifelong tests bench
# The default stream (smallest size) on an empty cache, as a new user gets it: a source that has vanished
# from the registry fails CI the day it vanishes. The tests check the prepared data (LIFELONG_PREPARED_CACHE).
# The larger sizes read the same packages: bench/prepare_sizes.sh prepares them all on an empty cache.
LIFELONG_PREPARED_CACHE="$(mktemp -d)"
export LIFELONG_PREPARED_CACHE
LIFELONG_CACHE="$LIFELONG_PREPARED_CACHE" lifelong data prepare
python -m pytest -q "$@"
