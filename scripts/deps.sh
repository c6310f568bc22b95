#!/bin/sh
# Installs what Allot needs to build, run and test on Debian 12, as root
# (clang and its sanitizer and libFuzzer runtimes for the sanitizer build;
# PostgreSQL 15 and libpq for the PostgreSQL driver and its throwaway test
# cluster, scripts/pg_cluster.sh).
#   sh scripts/deps.sh          what building, running and testing need
#   sh scripts/deps.sh bench    also what only benchmarks use: haproxy, the
#                               load balancer of bench_http.sh --nodes N
#                               (the test command never installs it)
# Safe to run again: it only installs what is missing.
set -eu
PKGS="build-essential cmake pkg-config git ca-certificates
liblua5.4-dev lua5.4 libsqlite3-dev sqlite3 libcivetweb-dev libjansson-dev libicu-dev tzdata libreadline-dev
lua-busted lua-socket lua-cjson tmux wrk curl valgrind
postgresql libpq-dev
clang libclang-rt-14-dev
chromium nodejs npm"
case "${1:-}" in
"") ;;
bench) PKGS="$PKGS haproxy" ;;
*) echo "usage: deps.sh [bench]" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
    # A Node.js build from elsewhere (e.g. NodeSource) brings its own npm,
    # which Debian's npm package would conflict with.
    [ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "deps: installing$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
