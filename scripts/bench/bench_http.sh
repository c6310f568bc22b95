#!/bin/sh
# HTTP load benchmark: allotd (durable, synchronous=FULL, group commit) on
# loopback, wrk as the client.  /v1/health, then quotes and credit bookings
# at 1, 16 and 64 connections; prints requests/s, p50/p99 and the ratio to
# /v1/health of the same run.  Every answer is checked (status and body),
# the database must hold every acknowledged booking, and `allot verify` must
# pass; otherwise the run prints FAILED and exits 1.
set -eu
cd "$(dirname "$0")/../.."
BUILD="${ALLOT_BUILD_DIR:-build}"
DUR="${BENCH_SECONDS:-5}"
DIR=$(mktemp -d)
PORT=$(( 20000 + $$ % 20000 ))
URL="http://127.0.0.1:$PORT"
KEY=$("$BUILD/allot" keys create --db "$DIR/bench.db" --create --role super_admin --policies policies | tail -1)
"$BUILD/allotd" --db "$DIR/bench.db" --listen "127.0.0.1:$PORT" --policies policies \
    --threads "${BENCH_THREADS:-96}" --fake-clock --now 2027-01-01T00:00:00Z > "$DIR/allotd.log" 2>&1 &
PID=$!
echo "allotd pid $PID, dir $DIR" >&2
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do
    curl -s "$URL/v1/health" >/dev/null 2>&1 && break
    sleep 0.05
done
post() {
    curl -s -X POST "$URL$1" -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -d "$2"
}
id_of() { sed 's/.*"id":"\([a-z]*_[0-9]*\)".*/\1/'; }
B=$(post /v1/buildings '{"name":"Bench","timezone":"UTC","currency":"USD"}' | id_of)
T=$(post /v1/tenants "{\"name\":\"T\",\"building_ids\":[\"$B\"]}" | id_of)
U=$(post /v1/users "{\"tenant_id\":\"$T\",\"name\":\"U\",\"email\":\"u@x.io\"}" | id_of)
ROOMS=""
for i in $(seq 1 100); do
    R=$(post /v1/resources "{\"building_id\":\"$B\",\"name\":\"R$i\",\"pricing\":{\"money\":{\"per_hour\":5000},\"credits\":{\"per_hour\":1,\"increment_minutes\":30}}}" | id_of)
    ROOMS="$ROOMS${ROOMS:+,}$R"
done
post /v1/allocations "{\"tenant_id\":\"$T\",\"building_ids\":[\"$B\"],\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":1000000000}],\"schedule\":{\"start\":\"2027-01-01\"}}" >/dev/null
ROOM=${ROOMS%%,*}
export KEY ROOMS ROOM USER_ID="$U"
# One request of each by hand first: a benchmark of errors measures nothing.
post /v1/quotes "{\"resource_id\":\"$ROOM\",\"user_id\":\"$U\",\"start\":\"2027-03-01T09:00:00Z\",\"end\":\"2027-03-01T10:30:00Z\"}" | grep -q '"payment_methods"' || {
    echo "bench: a quote failed:" >&2
    post /v1/quotes "{\"resource_id\":\"$ROOM\",\"user_id\":\"$U\",\"start\":\"2027-03-01T09:00:00Z\",\"end\":\"2027-03-01T10:30:00Z\"}" >&2
    exit 1
}

FAILED=0
BOOKED=0
BOOK_CONNS=0
fail() { echo "bench: FAILED: $*" >&2; FAILED=1; }
# One load: prints its line, checks every answer, and echoes the count of
# good answers into $GOOD.
load() { # name connections script [env...]
    name=$1 c=$2 script=$3
    t=$(( c < 2 ? 1 : 2 ))
    out=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency -s "$script" "$URL" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    GOOD=$(echo "$out" | awk '/^checked/ {print $3}')
    bad=$(echo "$out" | awk '/^checked/ {print $5}')
    sock=$(echo "$out" | awk '/^checked/ {print $7}')
    printf '%-16s %3s conn  %10s req/s  p50 %8s  p99 %8s  checked ok %s, bad %s, socket errors %s\n' \
        "$name" "$c" "$rps" "$p50" "$p99" "${GOOD:-?}" "${bad:-?}" "${sock:-?}"
    if [ -z "$GOOD" ] || [ "$GOOD" -eq 0 ] || [ "${bad:-1}" -ne 0 ] || [ "${sock:-1}" -ne 0 ]; then
        fail "$name at $c connections: not every answer was right"
        echo "$out" | grep '^first_bad' >&2 || true
    fi
    LAST_RPS=${rps:-0}
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "?" }'; }

load health 64 scripts/bench/health.lua
HEALTH=$LAST_RPS
day=0
for c in 1 16 64; do
    load quotes "$c" scripts/bench/quote.lua
    printf '%46s quotes/health %s\n' "" "$(ratio "$LAST_RPS" "$HEALTH")"
    export BASE_DAY=$day
    load "credit bookings" "$c" scripts/bench/booking.lua
    printf '%46s bookings/health %s\n' "" "$(ratio "$LAST_RPS" "$HEALTH")"
    BOOKED=$(( BOOKED + ${GOOD:-0} ))
    BOOK_CONNS=$(( BOOK_CONNS + c ))
    day=$(( day + 1000 ))
done
load health 64 scripts/bench/health.lua
echo "health before and after: $HEALTH and $LAST_RPS req/s"
# The database must hold every booking acknowledged: at least the 201s
# counted, and at most those plus the requests still in flight when wrk
# stopped (one per connection).
IN_DB=$(sqlite3 "$DIR/bench.db" "SELECT count(*) FROM booking WHERE status = 'confirmed'")
echo "bookings acknowledged $BOOKED, in the database $IN_DB"
if [ "$IN_DB" -lt "$BOOKED" ] || [ "$IN_DB" -gt $(( BOOKED + BOOK_CONNS )) ]; then
    fail "the database holds $IN_DB bookings for $BOOKED acknowledged"
fi
kill "$PID" 2>/dev/null
wait "$PID" 2>/dev/null || true
if ! "$BUILD/allot" verify --db "$DIR/bench.db" --policies policies; then
    fail "allot verify found problems"
fi
if [ "$FAILED" -ne 0 ]; then
    echo "bench: FAILED (the figures above are not valid)"
    exit 1
fi
echo "bench: every answer checked, database and verify agree"
