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
# HISTORY_DETAIL=1 adds, per booking in the writer thread: SQLite page
# fetches (calls of sqlite3PagerGet), key comparisons that go past the
# first column (sqlite3VdbeRecordCompareWithSkip), WAL frames (walbuf's
# writes / 2: header and page), reads from the files (pread: WAL and
# database), and the depth of the booking and entry b-trees in the
# prepared database (sqlite3's dbstat; needs the sqlite3 shell).
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

# Calls of each named function in one callgrind file, in order.
calls() { # file name...
    f=$1
    shift
    awk -v names="$*" '
        BEGIN { n = split(names, w, " "); for (i = 1; i <= n; i++) want[w[i]] = i }
        function named(s,    id, rest) {
            if (match(s, /^\([0-9]+\)/)) {
                id = substr(s, RSTART, RLENGTH); rest = substr(s, RLENGTH + 2)
                if (rest != "") nm[id] = rest
                return nm[id]
            }
            return s
        }
        /^fn=/ { named(substr($0, 4)); next }
        /^cfn=/ { cur = named(substr($0, 5)); next }
        /^calls=/ { if (cur in want) { split(substr($0, 7), a, " "); c[want[cur]] += a[1] } cur = ""; next }
        END { for (i = 1; i <= n; i++) printf "%d ", c[i]; print "" }' "$f"
}
DETAIL_FNS="sqlite3PagerGet sqlite3VdbeRecordCompareWithSkip wb_write pread"

# Sums callgrind's totals of the out files of one run: "total writer", and
# with HISTORY_DETAIL the writer's calls of DETAIL_FNS.
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
            wfile=$f
        fi
    done
    detail=
    if [ -n "${HISTORY_DETAIL:-}" ]; then
        detail=$(calls "$wfile" $DETAIL_FNS)
    fi
    if [ -n "${HISTORY_KEEP:-}" ]; then
        mkdir -p "$HISTORY_KEEP"
        cp "$TMP"/cg."$3"-* "$HISTORY_KEEP"/
    fi
    rm -f "$TMP/$3.db" "$TMP/$3.db-wal" "$TMP/$3.db-shm" "$TMP/$3.db.count"
    echo "$total $writer $detail"
}

# What one booking's writer calls in the difference of two runs, per booking.
per() { # before after
    awk -v m="$M" -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "%14.1f %14.1f %10.2f %8.2f", (y[1] - x[1]) / m, (y[2] - x[2]) / m,
            (y[3] - x[3]) / m / 2, (y[4] - x[4]) / m }'
}

# Depth of the booking and entry b-trees of a database (1: the root is a leaf).
depths() { # db
    command -v sqlite3 >/dev/null || { echo "(no sqlite3 shell)"; return; }
    sqlite3 "$1" "SELECT group_concat(name || ' ' || d, ', ') FROM (SELECT name,
        max(length(path) - length(replace(path, '/', ''))) AS d FROM dbstat
        WHERE name IN ('booking', 'booking_slot', 'booking_tenant', 'booking_building',
        'booking_created', 'entry', 'entry_lot', 'entry_booking', 'usage_month', 'lot')
        GROUP BY name ORDER BY name)"
}
details=

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
    shift 2
    d0="$*"
    set -- $(measure "$db" "$M" "h$h-$M")
    t1=$1 w1=$2
    shift 2
    printf '%-10s %14d %14d\n' "$h" $(((t1 - t0) / M)) $(((w1 - w0) / M))
    if [ -n "${HISTORY_DETAIL:-}" ]; then
        details="$details$(printf '%-10s %s' "$h" "$(per "$d0" "$*")")  $(depths "$db")
"
    fi
    rm -f "$db" "$db-wal" "$db-shm" "$db.count"
done
if [ -n "${HISTORY_DETAIL:-}" ]; then
    printf '\nper booking in the writer thread; depth of each b-tree of the history\n'
    printf '%-10s %14s %14s %10s %8s  %s\n' "history" "page fetches" "key compares" \
        "WAL frames" "preads" "depth"
    printf '%s' "$details"
fi
