#!/bin/sh
# The test command: installs what is missing, builds, and runs every test
# (C unit tests, busted specs, HTTP and browser tests) through ctest.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh
BUILD="${ALLOT_BUILD_DIR:-build}"
cd "$BUILD"
ctest --output-on-failure -j2 "$@"
