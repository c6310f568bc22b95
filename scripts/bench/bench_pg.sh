#!/bin/sh
# Bookings/s and quotes/s on SQLite beside PostgreSQL, one and two nodes
# (issue 11), and group commit's benefit on each: runs bench_http.sh once
# per set-up below and prints one table of every run's figures.  Each run
# checks every answer, the database and `allot verify` as bench_http.sh
# does; a run that fails is printed FAILED in the table and this script
# exits 1 after the table.
#
#   sh scripts/bench/bench_pg.sh [SETUP...]
#
# SETUP is a list of bench_http.sh flags in one word, `-` for none,
# commas for spaces: e.g. `--pg,--nodes,2`.  The default list is below.
set -u
cd "$(dirname "$0")/../.."
SETUPS="${*:-- --pg --pg,--nodes,2 --pg,--nodes,2,--tenants,16 --batch-max,1 --pg,--batch-max,1}"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "bench_pg: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
status=0
for setup in $SETUPS; do
    flags=$(echo "$setup" | tr ',' ' ')
    [ "$flags" = - ] && flags=""
    echo "== bench_http.sh $flags"
    # shellcheck disable=SC2086
    BENCH_SUMMARY="$OUT" sh scripts/bench/bench_http.sh $flags 2>&1 | grep -v '^ok ' || true
    if ! tail -1 "$OUT" 2>/dev/null | grep -q "	ok	"; then
        status=1
    fi
done
echo
echo "| set-up | load | 1 conn | 16 conn | 64 conn | ratio to health (64 conn) | run |"
echo "|---|---|---|---|---|---|---|"
# One summary line: label, status, "health H1 H2", "booked B D", "load L",
# then "quotes|bookings C RPS P99 RATIO" for each load.
awk -F '\t' '
    function n(x) { x = sprintf("%d", x + 0.5); while (x ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]$/, ",&", x); return x }
    {
        split($3, h, " ")
        split($5, la, " ")
        delete cell; delete last
        for (i = 6; i <= NF; i++) {
            split($i, f, " ")
            cell[f[1], f[2]] = n(f[3]) "/s, p99 " f[4]
            last[f[1]] = f[5]
        }
        run = $2 == "ok" ? "ok, load " la[2] : $2
        printf "| %s | health | %s / %s req/s (before / after) | | | 1 | |\n", $1, n(h[2]), n(h[3])
        for (k = 1; k <= 2; k++) {
            what = k == 1 ? "quotes" : "bookings"
            printf "| | %s | %s | %s | %s | %s | %s |\n", what, cell[what, 1], cell[what, 16],
                cell[what, 64], last[what], k == 2 ? run : ""
        }
    }' "$OUT"
if [ "$status" -ne 0 ]; then
    echo
    echo "bench_pg: FAILED (a run above is not valid: see its line)"
fi
exit "$status"
