#!/usr/bin/env bash
# Prepares every size of the default stream on an empty cache (the general set once, then each size) and
# prints the time each took. CI prepares only the small size (scripts/test.sh); run this before a release.
set -euo pipefail
cache="$(mktemp -d)"
export LIFELONG_CACHE="$cache"
for size in small medium large; do
    start=$(date +%s)
    lifelong data prepare --size "$size"
    echo "prepared $size in $(( $(date +%s) - start )) s (cache $cache)"
done
