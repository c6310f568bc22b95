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
#   INSTR_TENANTS=20 INSTR_USERS=1000       the mix mode: instead of the demo
#                                           portfolio, what bench_http.sh
#                                           --tenants 20 --users 1000 sets up
#                                           (one building, each tenant its
#                                           own allocation and lot, users
#                                           dealt over the tenants,
#                                           INSTR_ROOMS=100 rooms); quotes and
#                                           bookings dealt round-robin over
#                                           users and rooms; the warm-up is
#                                           at least one request per user.
#                                           INSTR_TENANTS=1 INSTR_USERS=1 is
#                                           the one-user shape on the same
#                                           portfolio, to compare with.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/deps.sh
BUILD="${ALLOT_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target allotd allot >/dev/null
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
TENANTS="${INSTR_TENANTS:-}"
USERS="${INSTR_USERS:-}"
MIX=0
if [ -n "$TENANTS$USERS" ]; then
    MIX=1
    TENANTS=${TENANTS:-1}
    USERS=${USERS:-$TENANTS}
    NROOMS="${INSTR_ROOMS:-100}"
    [ "$USERS" -ge "$TENANTS" ] || fail "INSTR_USERS must be at least INSTR_TENANTS"
    # Every user and every room at least once in the warm-up (quotes and
    # bookings), so the measured requests find what a steady state keeps.
    [ "$WARM" -ge "$USERS" ] || WARM=$USERS
    [ "$WARM" -ge "$NROOMS" ] || WARM=$NROOMS
fi

# 1. The demo portfolio, built natively (fast); then a large monthly credit
#    grant for tenant ten_1 in bld_1, so every measured booking is paid
#    with credits.
#    The mix mode instead: bench_http.sh's portfolio (instr_client.lua
#    setup), built over one keep-alive connection.
if [ "$MIX" = 1 ]; then
    KEY=$("$BUILD/allot" keys create --db "$DIR/instr.db" --create --role super_admin \
        --policies policies | tail -1)
    # shellcheck disable=SC2086
    "$BUILD/allotd" $ARGS > "$DIR/allotd.log" 2>&1 &
    PID=$!
    wait_up
    lua5.4 scripts/bench/instr_client.lua "$PORT" "$KEY" setup "$TENANTS" "$USERS" "$NROOMS" \
        > "$DIR/setup.txt" || fail "the mix's setup was refused"
    ROOMS=$(sed -n 's/^ROOMS=//p' "$DIR/setup.txt")
    USER_IDS=$(sed -n 's/^USER_IDS=//p' "$DIR/setup.txt")
else
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
    ROOMS="res_1,res_2,res_3,res_4,res_5"
    USER_IDS="usr_2"
fi
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

# 2. The same database under callgrind, instrumentation off until warm-up.
# shellcheck disable=SC2086
valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no \
    --callgrind-out-file="$DIR/cg.out" "$BUILD/allotd" $ARGS > "$DIR/allotd.log" 2>&1 &
PID=$!
wait_up
export ROOMS USER_IDS
client() { lua5.4 scripts/bench/instr_client.lua "$PORT" "$KEY" "$@" >/dev/null || fail "$1: a bad answer"; }
# The measured phases take the users on from where the warm-up left them
# (round-robin); their slots come after the warm-up's (numbered per room:
# the warm-up takes WARM / rooms of them, far fewer than 1000).
callgrind_control -i on "$PID" >/dev/null 2>&1
client quotes "$WARM" 0 0
client bookings "$WARM" 0 0
callgrind_control -z "$PID" >/dev/null 2>&1
client quotes "$N" 0 "$WARM"
callgrind_control -d quotes "$PID" >/dev/null 2>&1
callgrind_control -z "$PID" >/dev/null 2>&1
client bookings "$N" 1000 "$WARM"
callgrind_control -d bookings "$PID" >/dev/null 2>&1
CLIENTS="${INSTR_CLIENTS:-4}"
if [ "$CLIENTS" -gt 0 ]; then
    # N bookings again, split over CLIENTS connections on slots of their
    # own, each for another user of ten_1 (usr_2 to usr_8, all paying from
    # the tenant's one shared lot; in the mix mode each connection takes
    # the users round-robin from its own offset): the writer then finds
    # several jobs queued and commits them together (group commit), as
    # under load.
    # In the mix mode, first a warm-up from CLIENTS connections at once,
    # each dealing every user once, so that every policy state (one per
    # call that overlapped, in pooled holders) has met them all, as in a
    # long run.
    if [ "$MIX" = 1 ]; then
        PIDS=""
        i=0
        while [ "$i" -lt "$CLIENTS" ]; do
            lua5.4 scripts/bench/instr_client.lua "$PORT" "$KEY" bookings "$WARM" \
                $(( 3000 + N + i * (WARM + N) )) $(( i * 7 )) >/dev/null &
            PIDS="$PIDS $!"
            i=$(( i + 1 ))
        done
        for p in $PIDS; do wait "$p" || fail "warm-up from $CLIENTS connections: a bad answer"; done
    fi
    callgrind_control -z "$PID" >/dev/null 2>&1
    PIDS=""
    i=0
    while [ "$i" -lt "$CLIENTS" ]; do
        if [ "$MIX" = 1 ]; then
            # Slots still in January (from 1100, each connection's own):
            # the first booking of a month (a new counter row per user, a
            # new lot per tenant) would otherwise weigh on the mix alone.
            U="$USER_IDS" FIRST=$(( WARM + N + i * (N / CLIENTS) ))
            SLOT=$(( 1100 + i * ((N / CLIENTS + NROOMS - 1) / NROOMS) ))
        else
            U="usr_$(( 2 + i % 7 ))" FIRST=0 SLOT=$(( 1000 + N + i * N ))
        fi
        USER_IDS="$U" lua5.4 scripts/bench/instr_client.lua "$PORT" "$KEY" \
            bookings $(( N / CLIENTS )) "$SLOT" "$FIRST" >/dev/null &
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
#    Counts are each file's "summary:" (the instructions since the zero).
#    Its "totals:" line, the sum of the cost lines written, can be larger:
#    after `callgrind_control -z` some cost lines still carry part of the
#    warm-up (by 1-2 % of the phase with the demo's 20 warm-up requests,
#    by up to 30 % with the mix's thousands), so it is not used.
report() { # dump-number label
    total=0 writer=0 engine=0
    for f in "$DIR"/cg.out."$1"-*; do
        t=$(awk '/^summary:/ {print $2}' "$f")
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
if [ "$MIX" = 1 ]; then
    SHAPE="mix: $TENANTS tenants, $USERS users, $(echo "$ROOMS" | tr ',' '\n' | wc -l) rooms, round-robin"
else
    SHAPE="demo portfolio, one user"
fi
echo "instr: instructions per request, $N measured after $WARM warm-up (callgrind, RelWithDebInfo, $(git rev-parse --short HEAD); $SHAPE)"
report 1 quote
report 2 booking
if [ "$CLIENTS" -gt 0 ]; then
    N=$(( N / CLIENTS * CLIENTS ))
    report 3 "booking x$CLIENTS"
    commits=$(lua5.4 scripts/bench/instr_calls.lua batch_run "$DIR"/cg.out.3-*)
    awk -v n="$N" -v c="$commits" 'BEGIN { if (c > 0) printf "            %d bookings in %d commits (%.1f per commit)\n", n, c, n / c }'
fi
