#!/bin/sh
# Runs busted HTTP spec files against allotd on PostgreSQL: starts a
# throwaway cluster (scripts/pg_cluster.sh), points the specs at it through
# ALLOT_TEST_PG_URI (tests/helpers/http_env.lua gives each server a fresh
# database of it), and stops the cluster whatever the outcome.
#   sh tests/helpers/pg_specs.sh tests/spec/http/bookings_spec.lua ...
# Run from the source root with ALLOT_BUILD_DIR etc. set, as ctest does.
set -eu
dir="$(mktemp -d /tmp/allot-pg-specs.XXXXXX)"
trap 'sh scripts/pg_cluster.sh stop "$dir"' EXIT INT TERM
ALLOT_TEST_PG_URI="$(sh scripts/pg_cluster.sh start "$dir")"
export ALLOT_TEST_PG_URI
echo "pg_specs: PostgreSQL at $ALLOT_TEST_PG_URI"
lua5.4 "$(command -v busted)" --run=http --cpath="${ALLOT_BUILD_DIR:-build}/?.so" "$@"
