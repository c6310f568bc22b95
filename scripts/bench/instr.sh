#!/bin/sh
# Instruction counts per request: allotd (RelWithDebInfo) under callgrind,
# on the demo portfolio (fixed seed, fake clock) plus one large credit
# allocation, driven over HTTP by instr_client.lua on one keep-alive
# connection.  Warm-up requests first (instrumented, then zeroed), then
# INSTR_REQUESTS measured quotes and as many credit bookings, each phase
# dumped on its own with one profile per thread.  Prints, per quote and
# per booking: all threads, the writer thread, the HTTP workers, and the
# part inside engine_exec (the engine, "after HTTP").  Instruction counts
# repeat to well under 1 %; wall-clock figures from this machine do not,
# and this script prints none.  Every answer is checked (instr_client.lua):
# a bad one fails the run.
#   sh scripts/bench/instr.sh               (INSTR_WARMUP=20 INSTR_REQUESTS=200)
#   INSTR_KEEP=1 ...                        keeps the callgrind files
#   INSTR_CLIENTS=4 (default)               the third phase: as many bookings
#                                           again from 4 connections at once,
#                                           (the server has 4 workers), so the
#                                           writer commits them in
#                                           batches (0: no third phase)
set -eu
cd "$(dirname "$0")/../.."
sh scripts/deps.sh
BUILD="${ALLOT_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target allotd >/dev/null
WARM="${INSTR_WARMUP:-20}"
N="${INSTR_REQUESTS:-200}"
DIR=$(mktemp -d)
PORT=$(( 20000 + $$ % 20000 ))
URL="http://127.0.0.1:$PORT"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    if [ "${INSTR_KEEP:-0}" = 1 ]; then echo "instr: files kept in $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
fail() { echo "instr: FAILED: $*" >&2; exit 1; }
wait_up() {
    for _ in $(seq 1 1200); do
        curl -s "$URL/v1/health" >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || fail "allotd exited: $(tail -3 "$DIR/allotd.log")"
        sleep 0.1
    done
    fail "allotd did not start"
}
ARGS="--db $DIR/instr.db --listen 127.0.0.1:$PORT --policies policies --threads 4 \
--fake-clock --now 2027-01-01T00:00:00Z"

# 1. The demo portfolio, built natively (fast); then a large monthly credit
#    grant for tenant ten_1 in bld_1, so every measured booking is paid
#    with credits.
# shellcheck disable=SC2086
"$BUILD/allotd" $ARGS --demo > "$DIR/allotd.log" 2>&1 &
PID=$!
wait_up
KEY=$(awk '/demo key super_admin/ {print $4}' "$DIR/allotd.log")
[ -n "$KEY" ] || fail "no demo key"
curl -s -X POST "$URL/v1/allocations" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d '{"tenant_id":"ten_1","building_ids":["bld_1"],"unit":"hour","lines":[{"scope":"all","amount":1000000000}],"schedule":{"start":"2027-01-01"}}' \
    | grep -q '"id":"alc_' || fail "the allocation was refused"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

# 2. The same database under callgrind, instrumentation off until warm-up.
# shellcheck disable=SC2086
valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no \
    --callgrind-out-file="$DIR/cg.out" "$BUILD/allotd" $ARGS > "$DIR/allotd.log" 2>&1 &
PID=$!
wait_up
export ROOMS="res_1,res_2,res_3,res_4,res_5" USER_ID="usr_2"
client() { lua5.4 scripts/bench/instr_client.lua "$PORT" "$KEY" "$@" >/dev/null || fail "$1: a bad answer"; }
callgrind_control -i on "$PID" >/dev/null 2>&1
client quotes "$WARM" 0
client bookings "$WARM" 0
callgrind_control -z "$PID" >/dev/null 2>&1
client quotes "$N" 0
callgrind_control -d quotes "$PID" >/dev/null 2>&1
callgrind_control -z "$PID" >/dev/null 2>&1
client bookings "$N" 1000
callgrind_control -d bookings "$PID" >/dev/null 2>&1
CLIENTS="${INSTR_CLIENTS:-4}"
if [ "$CLIENTS" -gt 0 ]; then
    # N bookings again, split over CLIENTS connections on slots of their
    # own, each for another user of ten_1 (usr_2 to usr_8, all paying from
    # the tenant's one shared lot): the writer then finds several jobs
    # queued and commits them together (group commit), as under load.
    callgrind_control -z "$PID" >/dev/null 2>&1
    PIDS=""
    i=0
    while [ "$i" -lt "$CLIENTS" ]; do
        USER_ID="usr_$(( 2 + i % 7 ))" lua5.4 scripts/bench/instr_client.lua "$PORT" "$KEY" \
            bookings $(( N / CLIENTS )) $(( 1000 + N + i * N )) >/dev/null &
        PIDS="$PIDS $!"
        i=$(( i + 1 ))
    done
    for p in $PIDS; do wait "$p" || fail "bookings from $CLIENTS connections: a bad answer"; done
    callgrind_control -d batched "$PID" >/dev/null 2>&1
fi
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

# 3. Per dump (one file per thread): all threads, the writer's share (the
#    thread whose profile holds writer_main), the engine's part (engine_exec
#    inclusive on the workers plus the writer thread: "after HTTP"), and the
#    calls to malloc and the entries into a policy state (lua_pcallk).
report() { # dump-number label
    total=0 writer=0 engine=0
    for f in "$DIR"/cg.out."$1"-*; do
        t=$(awk '/^totals:/ {print $2}' "$f")
        total=$(( total + ${t:-0} ))
        if grep -q 'writer_main' "$f"; then writer=$(( writer + ${t:-0} )); fi
        e=$(callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
            awk '/[:]engine_exec(_text)? /{gsub(",", "", $1); print $1; exit}')
        engine=$(( engine + ${e:-0} ))
    done
    mallocs=$(lua5.4 scripts/bench/instr_calls.lua malloc "$DIR"/cg.out."$1"-*)
    calls=$(lua5.4 scripts/bench/instr_calls.lua lua_pcallk "$DIR"/cg.out."$1"-*)
    printf '%-11s total %9d  workers %9d  writer %9d  engine %9d  mallocs %5d  policy entries %s\n' \
        "$2" $(( total / N )) $(( (total - writer) / N )) $(( writer / N )) \
        $(( (engine + writer) / N )) $(( mallocs / N )) "$(awk -v c="$calls" -v n="$N" 'BEGIN { printf "%.1f", c / n }')"
}
echo "instr: instructions per request, $N measured after $WARM warm-up (callgrind, RelWithDebInfo, $(git rev-parse --short HEAD))"
report 1 quote
report 2 booking
if [ "$CLIENTS" -gt 0 ]; then
    N=$(( N / CLIENTS * CLIENTS ))
    report 3 "booking x$CLIENTS"
    commits=$(lua5.4 scripts/bench/instr_calls.lua batch_run "$DIR"/cg.out.3-*)
    awk -v n="$N" -v c="$commits" 'BEGIN { if (c > 0) printf "            %d bookings in %d commits (%.1f per commit)\n", n, c, n / c }'
fi
