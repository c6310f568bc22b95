#!/bin/sh
# HTTP load benchmark: allotd (durable, group commit) on loopback, wrk as
# the client.  /v1/health, then quotes and credit bookings at 1, 16 and 64
# connections (BENCH_CONNS); prints requests/s, p50/p99 and the ratio to
# /v1/health of the same run.  Every answer is checked (status and body),
# the database must hold every acknowledged booking, and `allot verify` must
# pass; otherwise the run prints FAILED and exits 1.
#
#   bench_http.sh [--pg] [--nodes N] [--lb] [--batch-max N] [--tenants N] [--users N]
#                 [--readers N] [--compute-slots N] [--checkpoint-frames N]
#                 [--long-read S]
#
#   (none)         one allotd on a SQLite file (synchronous=FULL)
#   --pg           on a throwaway PostgreSQL cluster with fsync, full page
#                  writes and synchronous commit on (pg_cluster.sh --durable)
#   --nodes N      N allotd on that one database behind haproxy (needs --pg;
#                  scripts/haproxy.cfg, installed by `deps.sh bench`)
#   --lb           haproxy in front even of one node (its own cost)
#   --batch-max N  passed to allotd: writes per group-commit transaction
#                  (1 = one transaction per booking)
#   --tenants N    bookings spread over N tenants (each its own allocation,
#                  so its own lot row); default 1: every booking takes
#                  credits from one lot
#   --users N      N users in all, dealt round-robin over the tenants,
#                  the bookings taking them in turn (default: one user per
#                  tenant).  The issue's mix is --tenants 20 --users 1000;
#                  without options one user books everything (thousands in
#                  a month)
#   --readers N    passed to allotd: pooled read connections per node
#   --compute-slots N  passed to allotd: requests computing at once
#                  (0 = no limit; allotd's default is 4 per CPU)
#   --checkpoint-frames N  passed to allotd: WAL frames that start a
#                  checkpoint off the writer (0 = inside the commits)
#   --long-read S  SQLite: during each bookings load, from 1 s in, another
#                  process holds one read snapshot for S seconds, as a long
#                  report does (engine/README.md, "Checkpoints off the
#                  writer")
#
# BENCH_SUMMARY=FILE appends one line of figures to FILE (bench_pg.sh
# makes its table from them); BENCH_KEEP=1 keeps the logs.
set -eu
cd "$(dirname "$0")/../.."
BUILD="${ALLOT_BUILD_DIR:-build}"
DUR="${BENCH_SECONDS:-5}"
CONNS="${BENCH_CONNS:-1 16 64}"
THREADS="${BENCH_THREADS:-96}"
PG=0 NODES=1 LB=0 BATCH="" TENANTS=1 USERS="" READERS="" SLOTS="" CKPT="" LONG_READ=""
while [ $# -gt 0 ]; do
    case "$1" in
    --pg) PG=1 ;;
    --nodes) NODES=$2; shift ;;
    --lb) LB=1 ;;
    --batch-max) BATCH=$2; shift ;;
    --tenants) TENANTS=$2; shift ;;
    --users) USERS=$2; shift ;;
    --readers) READERS=$2; shift ;;
    --compute-slots) SLOTS=$2; shift ;;
    --checkpoint-frames) CKPT=$2; shift ;;
    --long-read) LONG_READ=$2; shift ;;
    *) echo "usage: bench_http.sh [--pg] [--nodes N] [--lb] [--batch-max N] [--tenants N] [--users N] [--readers N] [--compute-slots N] [--checkpoint-frames N] [--long-read S]" >&2; exit 2 ;;
    esac
    shift
done
if [ "$NODES" -gt 1 ] && [ "$PG" -eq 0 ]; then
    echo "bench: --nodes needs --pg (a SQLite file has one allotd)" >&2
    exit 2
fi
[ "$NODES" -gt 1 ] && LB=1
if [ "$LB" -eq 1 ] && ! command -v haproxy >/dev/null 2>&1; then
    sh scripts/deps.sh bench
fi
if [ "$PG" -eq 1 ]; then LABEL=PostgreSQL; else LABEL=SQLite; fi
if [ "$NODES" -gt 1 ]; then LABEL="$LABEL, $NODES nodes"; else LABEL="$LABEL, 1 node"; fi
[ "$LB" -eq 1 ] && LABEL="$LABEL, haproxy"
[ -n "$BATCH" ] && LABEL="$LABEL, batch $BATCH"
USERS=${USERS:-$TENANTS}
if [ "$USERS" -lt "$TENANTS" ]; then
    echo "bench: --users must be at least --tenants (every tenant has a user)" >&2
    exit 2
fi
[ "$TENANTS" -gt 1 ] && LABEL="$LABEL, $TENANTS tenants"
[ "$USERS" -gt "$TENANTS" ] && LABEL="$LABEL, $USERS users"
[ -n "$READERS" ] && LABEL="$LABEL, $READERS readers"
echo "bench: $LABEL; load average $(cut -d' ' -f1-3 /proc/loadavg)"

DIR=$(mktemp -d)
PGDIR=""
PIDS=""
HAPID=""
cleanup() {
    for p in $PIDS $HAPID; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS $HAPID; do wait "$p" 2>/dev/null || true; done
    if [ -n "${BENCH_KEEP:-}" ]; then
        # The logs (allotd's, haproxy's, PostgreSQL's server.log) stay.
        [ -n "$PGDIR" ] && cp "$PGDIR/server.log" "$DIR/postgresql.log"
        echo "bench: kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
    [ -n "$PGDIR" ] && sh scripts/pg_cluster.sh stop "$PGDIR"
    return 0
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Ports the kernel says are free now (PORT for the clients, PORT+i for the
# nodes behind haproxy must be free too, checked below by each node's own
# "listening" line: a benchmark must never measure another server).
free_port() {
    lua5.4 -e 'local s = require("socket").bind("127.0.0.1", 0)
               local _, p = s:getsockname() s:close() print(p)'
}
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
if [ "$PG" -eq 1 ]; then
    # Its own directory: pg_cluster.sh hands it to the cluster's user.
    PGDIR=$(mktemp -d /tmp/allot-bench-pg.XXXXXX)
    DB=$(sh scripts/pg_cluster.sh start --durable "$PGDIR")
    count_booked() { psql -X -q -tA "$DB" -c "SELECT count(*) FROM booking WHERE status = 'confirmed'"; }
else
    DB="$DIR/bench.db"
    count_booked() { sqlite3 "$DB" "SELECT count(*) FROM booking WHERE status = 'confirmed'"; }
fi
KEY=$("$BUILD/allot" keys create --db "$DB" --create --role super_admin --policies policies | tail -1)

# The nodes: on PORT itself when alone, else on PORT+1.. behind haproxy.
i=1
while [ "$i" -le "$NODES" ]; do
    np=$PORT
    [ "$LB" -eq 1 ] && np=$(( PORT + i ))
    "$BUILD/allotd" --db "$DB" --listen "127.0.0.1:$np" --policies policies \
        --threads "$THREADS" ${BATCH:+--batch-max "$BATCH"} ${READERS:+--readers "$READERS"} \
        ${SLOTS:+--compute-slots "$SLOTS"} ${CKPT:+--checkpoint-frames "$CKPT"} --fake-clock --now 2027-01-01T00:00:00Z > "$DIR/allotd.$i.log" 2>&1 &
    PIDS="$PIDS $!"
    # Up to 60 s: 96 workers and the first connections on a loaded machine.
    for _ in $(seq 1 600); do
        grep -q "listening on http://127.0.0.1:$np" "$DIR/allotd.$i.log" && break
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "listening on http://127.0.0.1:$np" "$DIR/allotd.$i.log" &&
        curl -sf "http://127.0.0.1:$np/v1/health" >/dev/null || {
        echo "bench: FAILED: allotd $i did not start:" >&2
        cat "$DIR/allotd.$i.log" >&2
        exit 1
    }
    i=$(( i + 1 ))
done
if [ "$LB" -eq 1 ]; then
    # The committed config with this run's ports, socket and N server lines.
    awk -v port="$PORT" -v nodes="$NODES" -v sock="$DIR/haproxy.sock" \
        -v maxconn=$(( THREADS - 16 )) '
        # Abnormal exchanges only (errors, retries) go to haproxy.log.
        /^global/ { print; print "    log stderr format raw local0"; next }
        /^defaults/ { print; print "    log global\n    option httplog\n    option dontlog-normal"; next }
        /bind 127.0.0.1:8080/ { sub(/8080/, port) }
        /stats socket/ { sub(/\/run\/allot-haproxy.sock/, sock) }
        /default-server/ { sub(/maxconn [0-9]+/, "maxconn " maxconn) }
        /^ *server node[0-9]/ {
            if (done++) next
            for (i = 1; i <= nodes; i++)
                printf "    server node%d 127.0.0.1:%d\n", i, port + i
            next
        }
        { print }' scripts/haproxy.cfg > "$DIR/haproxy.cfg"
    haproxy -f "$DIR/haproxy.cfg" -db > "$DIR/haproxy.log" 2>&1 &
    HAPID=$!
    # Nodes haproxy's health checks see up, through its runtime API.
    cat > "$DIR/up.lua" <<'EOF'
local s = require("socket.unix")()
assert(s:connect(arg[1]))
s:send("show stat\n")
local n = 0
for l in function() return s:receive("*l") end do
  if l:find("^allotd,node") and l:find(",UP,", 1, true) then n = n + 1 end
end
print(n)
EOF
    up=0
    for _ in $(seq 1 100); do
        up=$(lua5.4 "$DIR/up.lua" "$DIR/haproxy.sock" 2>/dev/null || echo 0)
        [ "$up" = "$NODES" ] && break
        sleep 0.1
    done
    if [ "$up" != "$NODES" ]; then
        echo "bench: FAILED: haproxy sees $up of $NODES nodes up" >&2
        cat "$DIR/haproxy.log" >&2
        exit 1
    fi
fi
echo "allotd pids$PIDS${HAPID:+, haproxy pid $HAPID}, dir $DIR" >&2

post() {
    curl -s -X POST "$URL$1" -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -d "$2"
}
id_of() { sed 's/.*"id":"\([a-z]*_[0-9]*\)".*/\1/'; }
B=$(post /v1/buildings '{"name":"Bench","timezone":"UTC","currency":"USD"}' | id_of)
TIDS=""
for t in $(seq 1 "$TENANTS"); do
    T=$(post /v1/tenants "{\"name\":\"T$t\",\"building_ids\":[\"$B\"]}" | id_of)
    post /v1/allocations "{\"tenant_id\":\"$T\",\"building_ids\":[\"$B\"],\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":1000000000}],\"schedule\":{\"start\":\"2027-01-01\"}}" >/dev/null
    TIDS="$TIDS $T"
done
# Users dealt round-robin over the tenants; each id checked, so a refused
# creation stops the run here rather than as bad bookings later.
UIDS=""
u=1
while [ "$u" -le "$USERS" ]; do
    T=$(echo $TIDS | cut -d' ' -f$(( (u - 1) % TENANTS + 1 )))
    U=$(post /v1/users "{\"tenant_id\":\"$T\",\"name\":\"U$u\",\"email\":\"u$u@x.io\"}" | id_of)
    case "$U" in usr_*) ;; *) echo "bench: FAILED: creating user $u: $U" >&2; exit 1 ;; esac
    UIDS="$UIDS${UIDS:+,}$U"
    u=$(( u + 1 ))
done
U=${UIDS%%,*}
ROOMS=""
for i in $(seq 1 100); do
    R=$(post /v1/resources "{\"building_id\":\"$B\",\"name\":\"R$i\",\"pricing\":{\"money\":{\"per_hour\":5000},\"credits\":{\"per_hour\":1,\"increment_minutes\":30}}}" | id_of)
    ROOMS="$ROOMS${ROOMS:+,}$R"
done
ROOM=${ROOMS%%,*}
export KEY ROOMS ROOM USER_ID="$U" USER_IDS="$UIDS"
# One request of each by hand first: a benchmark of errors measures nothing.
post /v1/quotes "{\"resource_id\":\"$ROOM\",\"user_id\":\"$U\",\"start\":\"2027-03-01T09:00:00Z\",\"end\":\"2027-03-01T10:30:00Z\"}" | grep -q '"payment_methods"' || {
    echo "bench: a quote failed:" >&2
    post /v1/quotes "{\"resource_id\":\"$ROOM\",\"user_id\":\"$U\",\"start\":\"2027-03-01T09:00:00Z\",\"end\":\"2027-03-01T10:30:00Z\"}" >&2
    exit 1
}

FAILED=0
BAD=0
BOOKED=0
BOOK_CONNS=0
SUMMARY=""
WHY=""
fail() { echo "bench: FAILED: $*" >&2; FAILED=1; WHY="$WHY${WHY:+; }$*"; }
# One load: prints its line, checks every answer, and echoes the count of
# good answers into $GOOD.
# CPU time in clock ticks: the allotd processes' (user + system), and the
# whole machine's busy time (every CPU, wrk and the kernel included).
allotd_ticks() {
    for p in $PIDS; do cat "/proc/$p/stat" 2>/dev/null; done |
        awk '{ sub(/^.*\) /, ""); n += $12 + $13 } END { print n + 0 }'
}
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# Microseconds of CPU per request from a tick count and a request count.
per_request_us() {
    awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.0f", t / hz / n * 1e6; else print "?" }'
}
load() { # name connections script [env...]
    name=$1 c=$2 script=$3
    t=$(( c < 2 ? 1 : 2 ))
    a0=$(allotd_ticks) m0=$(busy_ticks)
    # wrk runs in a shell of its own, which then reads its children's CPU
    # time (wrk's, once waited for) from its own /proc entry.
    out=$(sh -c 'wrk "$@" 2>&1; sed "s/^.*) //" /proc/$$/stat | awk "{ print \$14 + \$15 }" > "$0"' \
        "$DIR/wrk.ticks" -t"$t" -c"$c" -d"${DUR}s" --timeout 10s --latency -s "$script" "$URL")
    w1=$(cat "$DIR/wrk.ticks" 2>/dev/null || echo 0)
    a1=$(allotd_ticks) m1=$(busy_ticks)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    GOOD=$(echo "$out" | awk '/^checked/ {print $3}')
    bad=$(echo "$out" | awk '/^checked/ {print $5}')
    sock=$(echo "$out" | awk '/^checked/ {print $7}')
    printf '%-16s %3s conn  %10s req/s  p50 %8s  p99 %8s  checked ok %s, bad %s, socket errors %s\n' \
        "$name" "$c" "$rps" "$p50" "$p99" "${GOOD:-?}" "${bad:-?}" "${sock:-?}"
    # CPU per answered request, less noisy than requests/s on a shared
    # machine: allotd's own, and the machine's (allotd, wrk, the kernel).
    printf '%46s CPU per request: allotd %s us, wrk %s us, machine %s us\n' "" \
        "$(per_request_us $(( a1 - a0 )) "${GOOD:-0}")" "$(per_request_us "$w1" "${GOOD:-0}")" \
        "$(per_request_us $(( m1 - m0 )) "${GOOD:-0}")"
    BAD=$(( BAD + ${bad:-0} + ${sock:-0} ))
    if [ -z "$GOOD" ] || [ "$GOOD" -eq 0 ] || [ "${bad:-1}" -ne 0 ] || [ "${sock:-1}" -ne 0 ]; then
        fail "$name at $c connections: not every answer was right"
        echo "$out" | grep '^first_bad' >&2 || true
    elif [ "$GOOD" -lt "$c" ]; then
        # wrk's figures count answered requests only: when fewer answers
        # came than there are connections, most requests were still
        # waiting at the end, and the rate and percentiles describe the
        # few that got through.
        fail "$name at $c connections: stalled ($GOOD answers in ${DUR} s)"
    fi
    LAST_RPS=${rps:-0}
    LAST_P99=${p99:-?}
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "?" }'; }

load health 64 scripts/bench/health.lua
HEALTH=$LAST_RPS
day=0
for c in $CONNS; do
    load quotes "$c" scripts/bench/quote.lua
    QUOTES=$LAST_RPS
    printf '%46s quotes/health %s\n' "" "$(ratio "$LAST_RPS" "$HEALTH")"
    SUMMARY="$SUMMARY	quotes $c $LAST_RPS $LAST_P99 $(ratio "$LAST_RPS" "$HEALTH")"
    export BASE_DAY=$day
    HOLDER=""
    if [ -n "$LONG_READ" ] && [ "$PG" -eq 0 ]; then
        (sleep 1; { echo "BEGIN; SELECT count(*) FROM booking;"; sleep "$LONG_READ"; echo "COMMIT;"; } |
            sqlite3 -readonly "$DB" >/dev/null) &
        HOLDER=$!
    fi
    load "credit bookings" "$c" scripts/bench/booking.lua
    if [ -n "$HOLDER" ]; then
        wait "$HOLDER" || fail "the long reader failed"
        printf '%46s (a reader held one snapshot for %s s of it)\n' "" "$LONG_READ"
    fi
    printf '%46s bookings/health %s, bookings/quotes %s\n' "" "$(ratio "$LAST_RPS" "$HEALTH")" \
        "$(ratio "$LAST_RPS" "$QUOTES")"
    SUMMARY="$SUMMARY	bookings $c $LAST_RPS $LAST_P99 $(ratio "$LAST_RPS" "$HEALTH")"
    BOOKED=$(( BOOKED + ${GOOD:-0} ))
    BOOK_CONNS=$(( BOOK_CONNS + c ))
    day=$(( day + 1000 ))
done
load health 64 scripts/bench/health.lua
echo "health before and after: $HEALTH and $LAST_RPS req/s"
# The database must hold every booking acknowledged: at least the 201s
# counted, and at most those plus the requests still in flight when wrk
# stopped (one per connection).
IN_DB=$(count_booked)
echo "bookings acknowledged $BOOKED, in the database $IN_DB"
if [ "$IN_DB" -lt "$BOOKED" ] || [ "$IN_DB" -gt $(( BOOKED + BOOK_CONNS )) ]; then
    fail "the database holds $IN_DB bookings for $BOOKED acknowledged"
fi
for p in $PIDS; do kill "$p" 2>/dev/null || true; done
for p in $PIDS; do wait "$p" 2>/dev/null || true; done
PIDS=""
# What each allotd says at its stop: writes per group-commit batch, the
# writer's busy time, plans computed outside the writer (and repriced in
# it), reader waits (engine_stats, engine/README.md "Per-request costs").
for f in "$DIR"/allotd.*.log; do
    sed -n 's/^allotd: since start: /allotd: /p' "$f"
done
if ! "$BUILD/allot" verify --db "$DB" --policies policies; then
    fail "allot verify found problems"
fi
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at the end: $LOADAVG"
if [ -n "${BENCH_SUMMARY:-}" ]; then
    # A failed run's line says so: its figures are not a result.
    status=ok
    [ "$FAILED" -ne 0 ] && status="FAILED, $BAD bad answers: $WHY"
    printf '%s\t%s\thealth %s %s\tbooked %s %s\tload %s%s\n' "$LABEL" "$status" "$HEALTH" \
        "$LAST_RPS" "$BOOKED" "$IN_DB" "$LOADAVG" "$SUMMARY" >> "$BENCH_SUMMARY"
fi
if [ "$FAILED" -ne 0 ]; then
    if [ "$LB" -eq 1 ]; then
        echo "haproxy's abnormal exchanges (last 5 of $(wc -l < "$DIR/haproxy.log")):"
        tail -5 "$DIR/haproxy.log"
    fi
    echo "bench: FAILED (the figures above are not valid)"
    exit 1
fi
echo "bench: every answer checked, database and verify agree"
