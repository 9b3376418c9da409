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
python -m pytest -q "$@"
