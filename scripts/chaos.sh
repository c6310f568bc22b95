#!/bin/sh
# kill -9 chaos: cycles of allotd under a booking load, killed at random
# moments; in-flight requests are re-sent with their Idempotency-Keys after
# each restart; at the end every acknowledged booking must be present
# exactly once, nothing unacknowledged may exist, and `allot verify` must
# pass.  Needs a build (scripts/build.sh).
#   sh scripts/chaos.sh [--cycles N (1000)] [--workers N (4)] [--seed N]
set -eu
cd "$(dirname "$0")/.."
CYCLES=1000
WORKERS=4
SEED=$(date +%s)
while [ $# -gt 0 ]; do
    case "$1" in
    --cycles) CYCLES="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    *) echo "usage: sh scripts/chaos.sh [--cycles N] [--workers N] [--seed N]" >&2; exit 2 ;;
    esac
done
BUILD="${ALLOT_BUILD_DIR:-build}"
echo "chaos: seed $SEED" >&2
exec lua5.4 scripts/chaos/chaos.lua "$BUILD" "$PWD" "$CYCLES" "$WORKERS" "$SEED"
