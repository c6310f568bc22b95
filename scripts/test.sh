#!/bin/sh
# The test command: installs what is missing, builds, and runs every test
# (C unit tests, busted specs, HTTP and browser tests) through ctest.
# Then it builds the same tree again with clang, ASan and UBSan on every
# target, plus the libFuzzer harnesses, in "$BUILD-san", and runs that
# build's ctest: the C tests, the busted unit and HTTP specs against the
# instrumented module, allotd and CLI, and each fuzzer for
# ALLOT_FUZZ_SECONDS (default 25).  ALLOT_SAN=0 skips the second build.
# Extra arguments go to both ctest runs (e.g. -R busted_http).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh
BUILD="${ALLOT_BUILD_DIR:-build}"
(cd "$BUILD" && ctest --output-on-failure -j2 "$@")
if [ "${ALLOT_SAN:-1}" != 0 ]; then
    SAN="$BUILD-san"
    CC=clang cmake -S . -B "$SAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALLOT_SANITIZE=ON \
        -DALLOT_FUZZ=ON -DALLOT_FUZZ_SECONDS="${ALLOT_FUZZ_SECONDS:-25}" >/dev/null
    cmake --build "$SAN" -j"$(nproc)"
    (cd "$SAN" && ctest --output-on-failure -j2 "$@")
fi
