#!/bin/sh
# A throwaway PostgreSQL cluster for tests (Debian's postgresql 15).
#
#   sh scripts/pg_cluster.sh start [DIR]   creates DIR (a new temporary
#       directory by default), runs initdb and pg_ctl there on a free port of
#       127.0.0.1 with trust authentication, creates the database `allot`,
#       and prints its URI, postgresql://allot@127.0.0.1:PORT/allot (also
#       written to DIR/uri; a DIR made here is named on stderr).
#   sh scripts/pg_cluster.sh start --durable [DIR]   the same with
#       PostgreSQL's durable defaults (fsync, full page writes, synchronous
#       commit on): for benchmarks, where an acknowledged write must be on
#       disk as with SQLite's synchronous=FULL.
#   sh scripts/pg_cluster.sh stop DIR      stops the cluster and removes DIR.
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the
# system user `allotpg` (created when missing).  Without --durable,
# durability is off (fsync, full page writes, synchronous commit): the data
# is thrown away with the directory, and tests need no disk flushes.
set -eu
PGBIN="${ALLOT_PG_BIN:-/usr/lib/postgresql/15/bin}"
cmd="${1:-}"
durability="-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
if [ "$cmd" = start ] && [ "${2:-}" = --durable ]; then
    durability="-c fsync=on -c full_page_writes=on -c synchronous_commit=on"
    shift
fi
dir="${2:-}"

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u allotpg -- "$@"
    else
        "$@"
    fi
}

free_port() {
    lua5.4 -e 'local s = require("socket").bind("127.0.0.1", 0)
               local _, p = s:getsockname() s:close() print(p)'
}

case "$cmd" in
start)
    [ -x "$PGBIN/initdb" ] || { echo "pg_cluster: no $PGBIN/initdb (apt-get install postgresql)" >&2; exit 2; }
    if [ -z "$dir" ]; then
        dir="$(mktemp -d /tmp/allot-pg.XXXXXX)"
        echo "pg_cluster: $dir (stop with: sh scripts/pg_cluster.sh stop $dir)" >&2
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        id allotpg >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin allotpg
        chown allotpg "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U allot --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    tries=0
    while :; do
        port="$(free_port)"
        if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir \
                $durability -c max_connections=300" start >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 5 ]; then
            cat "$dir/server.log" >&2
            exit 1
        fi
    done
    "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U allot allot
    uri="postgresql://allot@127.0.0.1:$port/allot"
    echo "$uri" >"$dir/uri"
    echo "$uri"
    ;;
stop)
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "usage: pg_cluster.sh stop DIR" >&2; exit 2; }
    if [ -d "$dir/data" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg_cluster.sh start [--durable] [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
