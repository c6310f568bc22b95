#!/bin/sh
# Runs the benchmarks and prints their figures (see scripts/README.md).
#   sh scripts/bench.sh            engine figures
#   sh scripts/bench.sh http       HTTP load (allotd + wrk)
#   sh scripts/bench.sh reports    the 1,000,000-entry report portfolio
#   sh scripts/bench.sh pg         HTTP load on SQLite, PostgreSQL and two
#                                  PostgreSQL nodes behind haproxy
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
ALLOT_BUILD_TYPE=Release sh scripts/build.sh >/dev/null
BUILD="${ALLOT_BUILD_DIR:-build}"
case "${1:-engine}" in
engine) "$BUILD/bench_engine" --bookings "${BENCH_BOOKINGS:-3000}" --threads 16 ;;
http) sh scripts/bench/bench_http.sh ;;
pg) sh scripts/deps.sh bench && sh scripts/bench/bench_pg.sh ;;
reports) "$BUILD/bench_reports" ;;
*) echo "usage: scripts/bench.sh [engine|http|reports|pg]" >&2; exit 2 ;;
esac
