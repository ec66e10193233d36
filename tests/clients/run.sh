#!/usr/bin/env bash
# Runs one stack's client apps (tests/clients/<stack>/run.sh) against a fresh database made with
# schema.sql: first connected directly, then through pgbouncer in transaction mode (one server
# connection, so successive requests share a backend). Against the server in PGHOST/PGPORT.
# Usage: tests/clients/run.sh python|node|rust
set -euo pipefail
stack=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../client/lib/common.sh"
db=clients_$stack
BOUNCER_PORT=${NILE_AUTH_APPS_BOUNCER_PORT:-6545}

fresh_db "$db"
q -d "$db" -f "$here/schema.sql" >/dev/null

dir=$(mktemp -d)
chown postgres "$dir"
cat >"$dir/pgbouncer.ini" <<INI
[databases]
$db = host=$PGHOST port=$PGPORT dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
INI
printf '"clustify_web" ""\n"clustify_api" ""\n' >"$dir/users.txt"
sudo -u postgres /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
trap 'kill "$(cat "$dir/pgbouncer.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do "$BIN/pg_isready" -q -h 127.0.0.1 -p "$BOUNCER_PORT" && break; sleep 0.1; done

# Each app reads: NILE_DB_HOST, NILE_DB_PORT, NILE_DB_NAME, NILE_DB_USER (the end-user role),
# NILE_VIA ("direct" or "pgbouncer"), and exits non-zero on the first failed check.
for via in direct pgbouncer; do
  if [ "$via" = direct ]; then host=$PGHOST port=$PGPORT; else host=127.0.0.1 port=$BOUNCER_PORT; fi
  # A fresh set of users per run: the apps sign up with this suffix in their emails.
  NILE_DB_HOST=$host NILE_DB_PORT=$port NILE_DB_NAME=$db NILE_DB_USER=clustify_web NILE_VIA=$via \
    NILE_RUN=$via-$$ bash "$here/$stack/run.sh"
done
