#!/bin/sh
# history_cost.sh - instructions per credit booking after a short and after
# a long history of the same user in the same month (issue 12: the cost must
# not grow with history), in total and in the writer thread.  callgrind
# counts instructions: repeatable on a busy machine, unlike wall time.
#
#   sh scripts/bench/history_cost.sh [BUILD_DIR] [HISTORIES]
#
# BUILD_DIR defaults to build/ (it needs the history_cost target);
# HISTORIES to "10 5000 100000" (72 rooms hold up to 101,376).  For each
# history H it makes a database with H bookings of one user in January
# through the engine (outside valgrind; 100,000 take ~15 s on tmpfs) and
# checks it with `allot verify`, then runs `history_cost run` twice under
# callgrind, with 0 and with M measured bookings after a quote in each room
# and 2 warm-up bookings, collecting only inside engine_exec (the caller)
# and writer_main (the writer thread); the difference / M is one booking's
# cost.  The runs book the same slots whatever H.  The whole run takes
# about a minute.
#
# HISTORY_MEASURED=M (100): enough bookings that the costs which come in
# lumps (a WAL checkpoint every ~1,000 pages, a Lua collection cycle) are
# averaged in rather than caught or missed by a short window.
# HISTORY_ROOMS=R (72): the rooms of the history.
# The databases live in a directory on /dev/shm when there is one (the
# prep's fsyncs cost nothing there; instruction counts are the same), else
# under $TMPDIR; HISTORY_TMP=DIR chooses.  HISTORY_KEEP=DIR keeps the
# callgrind files there (cg.hH-M-NN: H the history, M the measured
# bookings, NN the thread: 01 the caller, 02 the writer) for
# callgrind_annotate.
set -eu
BUILD=${1:-build}
HISTORIES=${2:-"10 5000 100000"}
ROOMS=${HISTORY_ROOMS:-72}
M=${HISTORY_MEASURED:-100}
BIN="$BUILD/history_cost"
[ -x "$BIN" ] || { echo "history_cost.sh: no $BIN (cmake --build $BUILD --target history_cost)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "history_cost.sh: valgrind is not installed" >&2; exit 2; }
if [ -n "${HISTORY_TMP:-}" ]; then
    TMP=$(mktemp -d "$HISTORY_TMP/history_cost.XXXXXX")
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
    TMP=$(mktemp -d /dev/shm/history_cost.XXXXXX)
else
    TMP=$(mktemp -d)
fi
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
    if [ -n "${HISTORY_KEEP:-}" ]; then
        mkdir -p "$HISTORY_KEEP"
        cp "$TMP"/cg."$3"-* "$HISTORY_KEEP"/
    fi
    rm -f "$TMP/$3.db" "$TMP/$3.db-wal" "$TMP/$3.db-shm" "$TMP/$3.db.count"
    echo "$total $writer"
}

printf '%-10s %14s %14s\n' "history" "per booking" "writer thread"
for h in $HISTORIES; do
    db="$TMP/h$h.db"
    "$BIN" prep "$db" "$h" "$ROOMS" >/dev/null
    # The history must be what real bookings leave: every invariant holds.
    if [ -x "$BUILD/allot" ]; then
        "$BUILD/allot" verify --db "$db" >"$TMP/verify.h$h" 2>&1 ||
            { cat "$TMP/verify.h$h" >&2; echo "history_cost.sh: verify failed after $h bookings" >&2; exit 1; }
    fi
    set -- $(measure "$db" 0 "h$h-0")
    t0=$1 w0=$2
    set -- $(measure "$db" "$M" "h$h-$M")
    t1=$1 w1=$2
    printf '%-10s %14d %14d\n' "$h" $(((t1 - t0) / M)) $(((w1 - w0) / M))
    rm -f "$db" "$db-wal" "$db-shm" "$db.count"
done
