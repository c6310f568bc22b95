#!/bin/sh
# Report export memory (issue 10 R2): N bookings (default 30,000), then 16
# parallel `GET /v1/reports/usage?format=csv` over HTTP while another client
# books, one at a time, by card.  Prints allotd's peak resident memory
# (VmHWM) before and after the exports, the exports' wall time, the
# bookings' latency during them (max and p99), and checks that every CSV
# holds exactly one line per booking of the database (plus its header) and
# was complete (curl saw the last chunk); otherwise prints FAILED, exits 1.
#
#   sh scripts/bench/bench_export.sh [path/to/allotd]
#
# The bookings are one real booking made over HTTP and copies of it
# inserted beside the server with sqlite3 (cancelled, so the ledger is
# untouched): building 30,000 over HTTP would time the booking path, not
# the export.  BENCH_BOOKINGS, BENCH_EXPORTS change the sizes.
set -eu
cd "$(dirname "$0")/../.."
BUILD="${ALLOT_BUILD_DIR:-build}"
ALLOTD="${1:-$BUILD/allotd}"
N="${BENCH_BOOKINGS:-30000}"
EXPORTS="${BENCH_EXPORTS:-16}"
DIR=$(mktemp -d)
PORT=$(( 20000 + $$ % 20000 ))
URL="http://127.0.0.1:$PORT"
KEY=$("$BUILD/allot" keys create --db "$DIR/bench.db" --create --role super_admin --policies policies | tail -1)
"$ALLOTD" --db "$DIR/bench.db" --listen "127.0.0.1:$PORT" --policies policies \
    --threads 256 --fake-clock --now 2027-01-01T00:00:00Z > "$DIR/allotd.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 200); do
    curl -s "$URL/v1/health" >/dev/null 2>&1 && break
    sleep 0.05
done
post() {
    curl -s -X POST "$URL$1" -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -d "$2"
}
id_of() { sed 's/.*"id":"\([a-z]*_[0-9]*\)".*/\1/'; }
B=$(post /v1/buildings '{"name":"Bench","timezone":"UTC","currency":"USD","payment":{"credits":true,"card":true,"invoice":true}}' | id_of)
T=$(post /v1/tenants "{\"name\":\"T\",\"building_ids\":[\"$B\"]}" | id_of)
U=$(post /v1/users "{\"tenant_id\":\"$T\",\"name\":\"U\",\"email\":\"u@x.io\"}" | id_of)
R=$(post /v1/resources "{\"building_id\":\"$B\",\"name\":\"R\",\"pricing\":{\"money\":{\"per_hour\":5000},\"credits\":{\"per_hour\":1,\"increment_minutes\":30}}}" | id_of)
book() { # $1: hour offset from 2027-01-04T00:00Z
    s=$(date -u -d "2027-01-04T00:00:00Z + $1 hour" +%Y-%m-%dT%H:%M:%SZ)
    e=$(date -u -d "2027-01-04T00:00:00Z + $(( $1 + 1 )) hour" +%Y-%m-%dT%H:%M:%SZ)
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$URL/v1/bookings" \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d "{\"resource_id\":\"$R\",\"user_id\":\"$U\",\"start\":\"$s\",\"end\":\"$e\",\"payment_method\":\"card\"}"
}
[ "$(book 0 | cut -d' ' -f1)" = 201 ] || { echo "FAILED: first booking"; exit 1; }
sqlite3 "$DIR/bench.db" <<EOF
.timeout 10000
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N - 1)
INSERT INTO booking (resource_id, building_id, tenant_id, user_id, start_at, end_at, status,
  payment_method, unit, credits, money, money_before_discount, currency, discount_pm,
  policy_versions, created_at, created_by, cancelled_at, cancelled_by)
SELECT resource_id, building_id, tenant_id, user_id, start_at, end_at, 'cancelled',
  payment_method, unit, credits, money, money_before_discount, currency, discount_pm,
  policy_versions, created_at, created_by, created_at, created_by
FROM booking JOIN n WHERE booking.id = (SELECT min(id) FROM booking);
EOF
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$PID/status"; }
# Warm up: one small report and a few bookings, so the baseline includes
# the server's steady state.
curl -s -o /dev/null -H "Authorization: Bearer $KEY" "$URL/v1/reports/usage?limit=10"
for h in 1 2 3 4 5; do book "$h" >/dev/null; done
BEFORE=$(hwm)
ROWS0=$(sqlite3 "$DIR/bench.db" "SELECT count(*) FROM booking")
START=$(date +%s.%N)
CURLS=""
for i in $(seq 1 "$EXPORTS"); do
    curl -s -o "$DIR/usage.$i.csv" -w '%{http_code}\n' -H "Authorization: Bearer $KEY" \
        "$URL/v1/reports/usage?format=csv" > "$DIR/code.$i" 2>/dev/null &
    CURLS="$CURLS $!"
done
# Bookings while the exports run (each on its own hour).
h=10
: > "$DIR/lat"
while [ "$(cat "$DIR"/code.* 2>/dev/null | wc -l)" -lt "$EXPORTS" ] && [ $h -lt 5000 ]; do
    book "$h" >> "$DIR/lat"
    h=$(( h + 1 ))
done
# shellcheck disable=SC2086
wait $CURLS
END=$(date +%s.%N)
AFTER=$(hwm)
DB_ROWS=$(sqlite3 "$DIR/bench.db" "SELECT count(*) FROM booking")
FAILED=0
for i in $(seq 1 "$EXPORTS"); do
    code=$(cat "$DIR/code.$i")
    lines=$(wc -l < "$DIR/usage.$i.csv")
    # The bookings made during the exports may or may not be in each
    # export's snapshot: between the counts before and after them.
    if [ "$code" != 200 ] || [ $(( lines - 1 )) -lt "$ROWS0" ] || [ $(( lines - 1 )) -gt "$DB_ROWS" ]; then
        echo "export $i: status $code, $(( lines - 1 )) rows (database: $ROWS0 before, $DB_ROWS after)"
        FAILED=1
    fi
done
BOOKED=$(wc -l < "$DIR/lat")
BAD=$(grep -vc '^201 ' "$DIR/lat" || true)
P99=$(cut -d' ' -f2 "$DIR/lat" | sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print a[i]}')
MAX=$(cut -d' ' -f2 "$DIR/lat" | sort -n | tail -1)
printf 'bookings in the database: %s before the exports, %s after; CSV rows: %s\n' "$ROWS0" "$DB_ROWS" "$(( $(wc -l < "$DIR/usage.1.csv") - 1 ))"
printf 'exports: %s parallel usage CSVs in %s s\n' "$EXPORTS" "$(awk "BEGIN {printf \"%.2f\", $END - $START}")"
printf 'allotd peak RSS (VmHWM): %s KiB before, %s KiB after\n' "$BEFORE" "$AFTER"
printf 'bookings during the exports: %s (%s not 201), p99 %s s, max %s s\n' "$BOOKED" "$BAD" "$P99" "$MAX"
if [ "$FAILED" != 0 ] || [ "$BAD" != 0 ]; then
    echo FAILED
    exit 1
fi
echo ok
