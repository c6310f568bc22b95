#!/bin/sh
# Runs a command against a throwaway PostgreSQL cluster: starts it
# (scripts/pg_cluster.sh), exports its URI as ALLOT_TEST_PG_URI, runs the
# command, and stops the cluster whatever the outcome.  The HTTP specs
# (tests/helpers/http_env.lua) then give each allotd a fresh database of it.
#   sh tests/helpers/with_pg.sh lua5.4 /usr/bin/busted --run=http ... files
# Run from the source root, as ctest does.
set -eu
dir="$(mktemp -d /tmp/allot-pg-test.XXXXXX)"
trap 'sh scripts/pg_cluster.sh stop "$dir"' EXIT INT TERM
ALLOT_TEST_PG_URI="$(sh scripts/pg_cluster.sh start "$dir")"
export ALLOT_TEST_PG_URI
echo "with_pg: PostgreSQL at $ALLOT_TEST_PG_URI"
"$@"
