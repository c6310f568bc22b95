#!/bin/sh
# The run command: installs what is missing, builds, and starts allotd on an
# embedded SQLite file seeded with a demo portfolio.  Prints the URL and keys.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh
BUILD="${ALLOT_BUILD_DIR:-build}"
DB="${ALLOT_DEMO_DB:-$BUILD/demo.db}"
exec "$BUILD/allotd" --db "$DB" --demo --policies policies --web web \
    --listen "${ALLOT_LISTEN:-127.0.0.1:8080}" "$@"
