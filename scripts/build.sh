#!/bin/sh
# Configures and builds Allot into ./build (or $ALLOT_BUILD_DIR).
set -eu
cd "$(dirname "$0")/.."
BUILD="${ALLOT_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE="${ALLOT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
# The web page's vendor files and the browser tests' npm packages.
sh scripts/web.sh
