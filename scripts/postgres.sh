#!/usr/bin/env bash
# A project-local PostgreSQL server for tinyfarm's tests (and for trying `--db postgresql://...`).
#
#   scripts/postgres.sh start      start it (idempotent) and print its database URL
#   scripts/postgres.sh url        print the URL of the running server (exit 1 when it is not running)
#   scripts/postgres.sh stop       stop it
#   scripts/postgres.sh run CMD..  start it if needed, run CMD with FARM_TEST_PG_URL set to its URL,
#                                  then stop it again if this call started it; exits with CMD's code
#
# The cluster lives in .farm/postgres (data/, log, port, socket dir), listens on 127.0.0.1 only, on a
# free port chosen when it starts, with trust authentication for the local user `farm` and a database
# `farm`. It is a throw-away test server: fsync is off. PostgreSQL refuses to run as root, so as root
# the cluster belongs to the `postgres` system user (created by Debian's postgresql package).
# Needs Debian's `postgresql` package (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

USER_NAME=farm
DB_NAME=farm

say() { printf '\033[1m[postgres]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

BIN=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [[ -x $dir/pg_ctl && -x $dir/initdb ]] && { BIN=$dir; break; }
done
[[ -n $BIN ]] || die "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): apt-get install postgresql"

if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' system user (apt-get install postgresql)"
  as_owner() { (cd / && runuser -u postgres -- "$@"); }
  OWNER=postgres
else
  as_owner() { "$@"; }
  OWNER=$(id -un)
fi

# The cluster's folder: .farm/postgres, unless the server's user cannot reach it (a checkout under
# /root, mode 700): then a folder of its own under /tmp, named after this checkout.
ROOT=$PWD/.farm/postgres
if [[ $OWNER != "$(id -un)" ]]; then
  mkdir -p "$ROOT" && chown "$OWNER" "$ROOT"
  if ! as_owner test -w "$ROOT" 2>/dev/null; then
    ROOT=/tmp/tinyfarm-postgres-$(printf '%s' "$PWD" | md5sum | cut -c1-12)
  fi
fi
DATA=$ROOT/data
SOCK=$ROOT/run
LOG=$ROOT/server.log
PORT_FILE=$ROOT/port

running() { [[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

url() { echo "postgresql+psycopg://$USER_NAME@127.0.0.1:$(cat "$PORT_FILE")/$DB_NAME"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  if running; then
    url
    return 0
  fi
  mkdir -p "$ROOT"
  chown "$OWNER" "$ROOT"
  if [[ ! -f $DATA/PG_VERSION ]]; then
    say "creating the cluster in $DATA"
    rm -rf "$DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --auth=trust -E UTF8 --no-locale >"$ROOT/initdb.log" 2>&1 \
      || die "initdb failed: see $ROOT/initdb.log"
  fi
  as_owner mkdir -p "$SOCK"
  local port
  port=$(free_port)
  echo "$port" >"$PORT_FILE"
  as_owner touch "$LOG" 2>/dev/null || true
  say "starting PostgreSQL ($(basename "$(dirname "$BIN")")) on 127.0.0.1:$port"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $SOCK -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
    start >/dev/null || die "the server did not start: see $LOG"
  if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$port" -U "$USER_NAME" -d postgres -tAc \
       "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$port" -U "$USER_NAME" "$DB_NAME"
  fi
  url
}

stop() {
  if running; then
    say "stopping PostgreSQL"
    as_owner "$BIN/pg_ctl" -D "$DATA" -w -t 60 -m fast stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  url) running || die "not running (scripts/postgres.sh start)"; url ;;
  stop) stop ;;
  run)
    shift
    [[ $# -gt 0 ]] || die "usage: scripts/postgres.sh run CMD [ARGS...]"
    started_here=0
    running || started_here=1
    FARM_TEST_PG_URL=$(start)
    export FARM_TEST_PG_URL
    code=0
    "$@" || code=$?
    ((started_here)) && stop
    exit "$code"
    ;;
  *) die "usage: scripts/postgres.sh start | url | stop | run CMD [ARGS...]" ;;
esac
