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

start_pgbouncer "$db" "$BOUNCER_PORT" clustify_web clustify_api

# Each app reads: NILE_DB_HOST, NILE_DB_PORT, NILE_DB_NAME, NILE_DB_USER (the end-user role),
# NILE_DB_BACKEND_USER (the trusted backend role, for jobs with no end user),
# NILE_VIA ("direct" or "pgbouncer"), and exits non-zero on the first failed check.
for via in direct pgbouncer; do
  if [ "$via" = direct ]; then host=$PGHOST port=$PGPORT; else host=127.0.0.1 port=$BOUNCER_PORT; fi
  # A fresh set of users per run: the apps sign up with this suffix in their emails.
  NILE_DB_HOST=$host NILE_DB_PORT=$port NILE_DB_NAME=$db NILE_DB_USER=clustify_web NILE_DB_BACKEND_USER=clustify_api NILE_VIA=$via \
    NILE_RUN=$via-$$ bash "$here/$stack/run.sh"
done
