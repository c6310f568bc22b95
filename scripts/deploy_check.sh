#!/bin/sh
# Runs engine/README.md's zero-downtime deploy by hand, under load: two
# allotd on one (throwaway) PostgreSQL database behind scripts/haproxy.cfg,
# bookings through haproxy from one wrk connection, and meanwhile node 1
# drained through haproxy's runtime API, stopped with SIGTERM once it has
# no session, started again and set ready.  Every answer must be a 201
# booking with no socket error, the database must hold the bookings
# acknowledged (plus at most the one in flight at the end), node 1 must
# have served again after the restart, and `allot verify` must pass;
# otherwise FAILED and exit 1.
#
#   sh scripts/deploy_check.sh        (needs haproxy: sh scripts/deps.sh bench)
#
# One connection, so the two nodes never book at the same instant: what is
# checked is the drain, not cross-node write conflicts (scripts/README.md).
set -eu
cd "$(dirname "$0")/.."
BUILD="${ALLOT_BUILD_DIR:-build}"
command -v haproxy >/dev/null 2>&1 || sh scripts/deps.sh bench
W=$(mktemp -d)
PGD=$(mktemp -d /tmp/allot-deploy-pg.XXXXXX)
HP="" WP=""
cleanup() {
    for f in "$W"/n1.pid "$W"/n2.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    [ -n "$HP" ] && kill "$HP" 2>/dev/null || true
    [ -n "$WP" ] && kill "$WP" 2>/dev/null || true
    sleep 1
    sh scripts/pg_cluster.sh stop "$PGD"
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "deploy_check: FAILED: $*"; exit 1; }
free_port() {
    lua5.4 -e 'local s = require("socket").bind("127.0.0.1", 0)
               local _, p = s:getsockname() s:close() print(p)'
}
DB=$(sh scripts/pg_cluster.sh start "$PGD")
KEY=$("$BUILD/allot" keys create --db "$DB" --create --role super_admin --policies policies | tail -1)
P=$(free_port) P1=$(free_port) P2=$(free_port)
start_node() { # i port
    "$BUILD/allotd" --db "$DB" --listen "127.0.0.1:$2" --policies policies --threads 48 \
        --pid-file "$W/n$1.pid" --fake-clock --now 2027-01-01T00:00:00Z >> "$W/n$1.log" 2>&1 &
    for _ in $(seq 1 300); do
        [ "$(grep -c "listening on http://127.0.0.1:$2" "$W/n$1.log")" -ge "$3" ] && return 0
        sleep 0.1
    done
    cat "$W/n$1.log"
    fail "node $1 did not start"
}
start_node 1 "$P1" 1
start_node 2 "$P2" 1
awk -v p="$P" -v p1="$P1" -v p2="$P2" -v sock="$W/h.sock" '
    /bind 127.0.0.1:8080/ { sub(/8080/, p) }
    /stats socket/ { sub(/\/run\/allot-haproxy.sock/, sock) }
    /server node1/ { sub(/8081/, p1) }
    /server node2/ { sub(/8082/, p2) }
    { print }' scripts/haproxy.cfg > "$W/h.cfg"
haproxy -f "$W/h.cfg" -db > "$W/h.log" 2>&1 &
HP=$!
cat > "$W/cli.lua" <<'EOF'
local s = require("socket.unix")()
assert(s:connect(arg[1]))
s:send(arg[2] .. "\n")
for l in function() return s:receive("*l") end do print(l) end
EOF
hap() { lua5.4 "$W/cli.lua" "$W/h.sock" "$1" 2>/dev/null || true; }
stat_of() { # node field-number of `show stat` (5 scur, 8 stot, 18 status)
    hap "show stat" | awk -F, -v n="$1" -v f="$2" '$1 == "allotd" && $2 == n { print $f }'
}
for _ in $(seq 1 100); do
    [ "$(stat_of node1 18)" = UP ] && [ "$(stat_of node2 18)" = UP ] && break
    sleep 0.1
done
URL="http://127.0.0.1:$P"
post() {
    curl -s -X POST "$URL$1" -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -d "$2"
}
id_of() { sed 's/.*"id":"\([a-z]*_[0-9]*\)".*/\1/'; }
B=$(post /v1/buildings '{"name":"D","timezone":"UTC","currency":"USD"}' | id_of)
T=$(post /v1/tenants "{\"name\":\"T\",\"building_ids\":[\"$B\"]}" | id_of)
U=$(post /v1/users "{\"tenant_id\":\"$T\",\"name\":\"U\",\"email\":\"u@x.io\"}" | id_of)
post /v1/allocations "{\"tenant_id\":\"$T\",\"building_ids\":[\"$B\"],\"unit\":\"hour\",\"lines\":[{\"scope\":\"all\",\"amount\":1000000000}],\"schedule\":{\"start\":\"2027-01-01\"}}" >/dev/null
ROOMS=""
for i in $(seq 1 20); do
    R=$(post /v1/resources "{\"building_id\":\"$B\",\"name\":\"R$i\",\"pricing\":{\"money\":{\"per_hour\":5000},\"credits\":{\"per_hour\":1,\"increment_minutes\":30}}}" | id_of)
    ROOMS="$ROOMS${ROOMS:+,}$R"
done
export KEY ROOMS USER_ID="$U" BASE_DAY=0
wrk -t1 -c1 -d25s --timeout 10s -s scripts/bench/booking.lua "$URL" > "$W/wrk.out" 2>&1 &
WP=$!
sleep 5
hap "set server allotd/node1 state drain" >/dev/null
cur=""
for _ in $(seq 1 100); do
    cur=$(stat_of node1 5)
    [ "$cur" = 0 ] && break
    sleep 0.1
done
[ "$cur" = 0 ] || fail "node 1 still has $cur sessions 10 s after the drain"
before=$(stat_of node1 8)
kill -TERM "$(cat "$W/n1.pid")"
for _ in $(seq 1 300); do
    grep -q "SIGTERM: stopping" "$W/n1.log" && ! [ -f "$W/n1.pid" ] && break
    sleep 0.1
done
echo "deploy_check: node 1 drained and stopped ($before sessions served)"
sleep 3
start_node 1 "$P1" 2
hap "set server allotd/node1 state ready" >/dev/null
echo "deploy_check: node 1 started again and ready"
wait "$WP"
WP=""
after=$(stat_of node1 8)
echo "deploy_check: node 1 served $((after - before)) sessions after the restart, node 2 $(stat_of node2 8) in all"
[ "$after" -gt "$before" ] || fail "node 1 served nothing after its restart"
grep -E "Requests/sec|^checked|^first_bad" "$W/wrk.out"
ok=$(awk '/^checked/ {print $3}' "$W/wrk.out")
bad=$(awk '/^checked/ {print $5}' "$W/wrk.out")
sock=$(awk '/^checked/ {print $7}' "$W/wrk.out")
[ -n "$ok" ] && [ "$ok" -gt 0 ] && [ "$bad" = 0 ] && [ "$sock" = 0 ] ||
    fail "not every answer was a booking ($bad bad, $sock socket errors)"
in_db=$(psql -X -q -tA "$DB" -c "SELECT count(*) FROM booking WHERE status = 'confirmed'")
echo "deploy_check: bookings acknowledged $ok, in the database $in_db"
[ "$in_db" -ge "$ok" ] && [ "$in_db" -le $((ok + 1)) ] || fail "the database holds $in_db bookings for $ok acknowledged"
for f in "$W"/n1.pid "$W"/n2.pid; do kill "$(cat "$f")"; done
sleep 2
"$BUILD/allot" verify --db "$DB" --policies policies | tail -1
"$BUILD/allot" verify --db "$DB" --policies policies >/dev/null || fail "allot verify found problems"
echo "deploy_check: passed"
