#!/bin/sh
# HTTP load benchmark: allotd (durable, synchronous=FULL, group commit) on
# loopback, wrk as the client.  Quotes and credit bookings at 1, 16 and 64
# connections; prints requests/s and p50/p99 latency for each.
set -eu
cd "$(dirname "$0")/../.."
BUILD="${ALLOT_BUILD_DIR:-build}"
DUR="${BENCH_SECONDS:-10}"
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

report() { # name connections output
    rps=$(echo "$3" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$3" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$3" | awk '$1 == "99%" {print $2}')
    bad=$(echo "$3" | awk '/^non_/ {print $2}')
    printf '%-22s %3s conn  %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n' "$1" "$2" "$rps" "$p50" "$p99" "$bad"
}
day=0
for c in 1 16 64; do
    t=$(( c < 2 ? 1 : 2 ))
    out=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency -s scripts/bench/quote.lua "$URL")
    report "quotes" "$c" "$out"
    out=$(BASE_DAY=$day wrk -t"$t" -c"$c" -d"${DUR}s" --latency -s scripts/bench/booking.lua "$URL")
    report "credit bookings" "$c" "$out"
    day=$(( day + 1000 ))
done
"$BUILD/allot" verify --db "$DIR/bench.db" --policies policies | tail -1
