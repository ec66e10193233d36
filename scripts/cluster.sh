#!/usr/bin/env bash
# Private PostgreSQL 15 clusters run as the postgres user (initdb refuses root).
#   scripts/cluster.sh start DIR PORT   fresh cluster in DIR (wiped first), socket in DIR
#   scripts/cluster.sh restart DIR PORT keep DIR's data if it exists, (re)start the server
#   scripts/cluster.sh stop DIR
# The server preloads nile_auth (its lockout counter lives in shared memory), so the library
# must be installed first; NILE_AUTH_PRELOAD replaces that list (tests/citus: citus,nile_auth).
# RUST_BACKTRACE is removed from the server's environment: with it, Rust backtraces land in
# error DETAIL lines and break expected output.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd=$1 dir=$2 port=${3:-}

as_postgres() { sudo -u postgres env -u RUST_BACKTRACE "$@"; }

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_postgres "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

start_server() {
  as_postgres "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=localhost -c shared_preload_libraries=${NILE_AUTH_PRELOAD:-nile_auth}" start >/dev/null
}

init() {
  install -d -o postgres -m 0755 "$dir"
  as_postgres "$BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
}

case "$cmd" in
  start)   stop; rm -rf "$dir"; init; start_server ;;
  restart) stop; [ -d "$dir/data" ] || init; start_server ;;
  stop)    stop ;;
  *) echo "usage: $0 start|restart|stop DIR [PORT]" >&2; exit 2 ;;
esac
