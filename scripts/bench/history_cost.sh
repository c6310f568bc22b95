#!/bin/sh
# history_cost.sh - instructions per credit booking after a short and after
# a long history of the same user in the same month (issue 12: the cost must
# not grow with history), in total and in the writer thread.  callgrind
# counts instructions: repeatable on a busy machine, unlike wall time.
#
#   sh scripts/bench/history_cost.sh [BUILD_DIR] [HISTORIES]
#
# BUILD_DIR defaults to build/ (it needs the history_cost target);
# HISTORIES to "10 5000".  For each history H it makes a database with H
# bookings (outside valgrind), then runs `history_cost run` twice under
# callgrind, with 0 and with 10 measured bookings after 2 warm-up ones,
# collecting only inside engine_exec (the caller) and writer_main (the
# writer thread); the difference / 10 is one booking's cost.
set -eu
BUILD=${1:-build}
HISTORIES=${2:-"10 5000"}
BIN="$BUILD/history_cost"
[ -x "$BIN" ] || { echo "history_cost.sh: no $BIN (cmake --build $BUILD --target history_cost)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "history_cost.sh: valgrind is not installed" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

# Sums callgrind's totals of the out files of one run: "total writer".
measure() { # db m tag
    cp "$1" "$TMP/$3.db"
    cp "$1.count" "$TMP/$3.db.count"
    valgrind --tool=callgrind --collect-atstart=no --separate-threads=yes \
        --toggle-collect=engine_exec --toggle-collect=writer_main \
        --callgrind-out-file="$TMP/cg.$3" "$BIN" run "$TMP/$3.db" "$2" >/dev/null 2>"$TMP/vg.$3" ||
        { cat "$TMP/vg.$3" >&2; exit 1; }
    total=0
    writer=0
    for f in "$TMP"/cg."$3"-*; do
        n=$(sed -n 's/^totals: //p' "$f")
        total=$((total + n))
        # The writer thread names writer_main as fn= or, when callgrind
        # first meets it as a callee of start_thread, as cfn=.
        if grep -q '^c\{0,1\}fn=.*writer_main' "$f"; then
            writer=$((writer + n))
        fi
    done
    echo "$total $writer"
}

printf '%-10s %14s %14s\n' "history" "per booking" "writer thread"
for h in $HISTORIES; do
    db="$TMP/h$h.db"
    "$BIN" prep "$db" "$h" >/dev/null
    set -- $(measure "$db" 0 "h$h-0")
    t0=$1 w0=$2
    set -- $(measure "$db" 10 "h$h-10")
    t1=$1 w1=$2
    printf '%-10s %14d %14d\n' "$h" $(((t1 - t0) / 10)) $(((w1 - w0) / 10))
done
