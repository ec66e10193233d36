#!/usr/bin/env bash
# From a fresh Debian machine, as root: installs what is needed, builds and installs the
# extension, starts a local PostgreSQL 15 (as the postgres user) with it, and runs the demo.
# Safe to run again: the server keeps its data; the demo database is made afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

DEV_DIR=${NILE_AUTH_DEV_DIR:-/tmp/nile_auth-dev}
DEV_PORT=${NILE_AUTH_DEV_PORT:-5499}
BIN=/usr/lib/postgresql/15/bin

cargo pgrx install --release --pg-config "$BIN/pg_config"
bash scripts/cluster.sh restart "$DEV_DIR" "$DEV_PORT"

export PGHOST=$DEV_DIR PGPORT=$DEV_PORT PGUSER=postgres
"$BIN/dropdb" --if-exists nile_demo
"$BIN/createdb" nile_demo
"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d nile_demo -f scripts/demo.sql

cat <<MSG

nile_auth is running. Connect with:
  psql -h $DEV_DIR -p $DEV_PORT -U postgres nile_demo
Stop it with:
  bash scripts/cluster.sh stop $DEV_DIR
MSG
