#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, all under /tmp: `start` (reuses a running one) prints the SQLAlchemy URL,
# `stop` shuts it down and removes it, `url` prints the URL. Trust auth on 127.0.0.1, fsync off: never for real data.
set -euo pipefail

PORT=${DUECOURSE_PG_PORT:-55432}
DIR=${DUECOURSE_PG_DIR:-/tmp/duecourse-pg}
DB=duecourse_test
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || { echo "pg.sh: no PostgreSQL server installed (run scripts/bootstrap.sh)" >&2; exit 1; }

# initdb refuses to run as root, so root runs the server as the postgres user.
as_owner() {
    # 9>&-: the server must not inherit the start lock, or it would hold it for its whole life.
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$1" 9>&-; else bash -c "$1" 9>&-; fi
}

running() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; }
psql_() { "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

start() {
    # One start at a time: two test runs starting together must not both initdb the same folder.
    exec 9>"$DIR.lock"
    flock 9
    if ! running; then
        # Not answering: whatever is left in the folder is stale (a previous session's server was killed).
        rm -rf "$DIR"
        mkdir -p "$DIR"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
        as_owner "'$PGBIN/initdb' -D '$DIR/data' -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N >'$DIR/initdb.log' 2>&1" \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
        as_owner "'$PGBIN/pg_ctl' -D '$DIR/data' -l '$DIR/server.log' -w -t 60 -o \"-p $PORT -k '$DIR' \
            -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start >/dev/null" \
            || { cat "$DIR/server.log" >&2; exit 1; }
    fi
    if [ -z "$(psql_ -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
        psql_ -c "CREATE DATABASE $DB" >/dev/null
    fi
    echo "$URL"
}

stop() {
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "'$PGBIN/pg_ctl' -D '$DIR/data' -m fast -w stop >/dev/null" || true
    fi
    rm -rf "$DIR" "$DIR.lock"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
