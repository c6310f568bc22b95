#!/bin/sh
# Instructions per report (callgrind, only what runs inside engine_exec) on a
# kept bench_reports portfolio: each report once, on a fresh copy of FILE
# (migrated first by an untimed dashboard), so builds and schema versions
# compare on the same data.  Repeatable to a few thousand instructions.
#   sh scripts/bench/reports_instr.sh FILE [BUILD_DIR]
set -eu
cd "$(dirname "$0")/../.."
FILE="$1"
BUILD="${2:-${ALLOT_BUILD_DIR:-build}}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cp "$FILE" "$TMP/r.db"
run() {
  lua5.4 scripts/bench/reports_instr.lua "$BUILD" "$TMP/r.db" "$PWD/policies" "$1" "$2" || exit 1
}
run reports.dashboard '{"unit":"hour"}' # migrates the copy, untimed
one() {
  n=$(valgrind --tool=callgrind --toggle-collect=engine_exec \
        --callgrind-out-file="$TMP/cg" lua5.4 scripts/bench/reports_instr.lua "$BUILD" \
        "$TMP/r.db" "$PWD/policies" "$1" "$2" 2>&1 | sed -n 's/.*refs: *//p')
  [ -n "$n" ] || { echo "reports_instr: FAILED: $1 $2" >&2; exit 1; }
  printf '%14s  %s %s\n' "$n" "$1" "$2"
}
one reports.datahub '{"unit":"hour","from":"2026-01","to":"2026-12"}'
one reports.datahub '{"unit":"coin","from":"2026-01","to":"2026-12"}'
one reports.datahub '{"unit":"hour","from":"2026-01","to":"2026-12","format":"csv"}'
one reports.datahub '{"unit":"hour","from":"2026-01","to":"2026-12","tenant_id":"ten_7"}'
one reports.datahub '{"unit":"hour","from":"2026-01","to":"2026-12","group_by":"user"}'
one reports.dashboard '{"unit":"hour"}'
one reports.dashboard '{"unit":"hour","building_id":"bld_2"}'
one reports.dashboard '{"unit":"hour","tenant_id":"ten_7"}'
one reports.credits '{}'
one reports.usage '{"from":"2026-03-01T00:00:00Z","to":"2026-04-01T00:00:00Z"}'
