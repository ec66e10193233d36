#!/usr/bin/env bash
# Trust cannot be set from a connection's startup options (issue 10, class 2). Against 0.1.0,
# `options=-c nile_auth.require_token=off` made an end-user role a trusted backend (a WARNING
# only) and it read another tenant's rows. Now trust is membership in nile_auth_backend, and
# no startup option, setting or role switch a client can make grants it.
# Runs against the server in PGHOST/PGPORT as a superuser (scripts/test.sh sets them).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
# The SQLSTATE of the last statement of a connection made with the given startup options.
state_with() { # options role sql...
  local options=$1 role=$2; shift 2
  PGOPTIONS=$options "$BIN/psql" -X -q -A -t -d nile_startup -U "$role" -v VERBOSITY=sqlstate "$@" 2>&1 | grep -oE '^(ERROR|FATAL): +[0-9A-Z]{5}' | awk '{print $2}' | tail -1
}

fresh_db nile_startup
q -d nile_startup >/dev/null <<'SQL'
CREATE EXTENSION nile_auth;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'startup_web') THEN CREATE ROLE startup_web LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'startup_backend') THEN CREATE ROLE startup_backend LOGIN; END IF;
END $$;
GRANT nile_auth_backend TO startup_backend;
GRANT USAGE ON SCHEMA nile_auth TO startup_web, startup_backend;
CREATE TABLE secrets (id serial PRIMARY KEY, body text);
SELECT nile_auth.enable_tenant_isolation('secrets');
GRANT SELECT ON secrets TO startup_web, startup_backend;
SELECT nile_auth.signup('victim@startup.test', 'victim password', NULL, 'victim co');
SQL
tenant=$(q -d nile_startup -c "SELECT id FROM nile_auth.tenants WHERE name = 'victim co'")
q -d nile_startup -c "SET nile.tenant_id = '$tenant'" -c "INSERT INTO secrets (body) VALUES ('victim secret')"

read_secret='SELECT body FROM secrets'
check "the backend role reads the tenant it names" "victim secret" \
  "$(PGOPTIONS="-c nile.tenant_id=$tenant" q -d nile_startup -U startup_backend -c "$read_secret")"
check "end-user role, tenant in startup options: 28000" "28000" \
  "$(state_with "-c nile.tenant_id=$tenant" startup_web -c "$read_secret")"
# The library is preloaded, so the retired setting is an unknown name under its reserved prefix.
check "end-user role, retired require_token=off in startup options: refused at connect" \
  'FATAL:  invalid configuration parameter name "nile_auth.require_token"' \
  "$(PGOPTIONS="-c nile_auth.require_token=off -c nile.tenant_id=$tenant" "$BIN/psql" -X -q -A -t -d nile_startup -U startup_web \
       -c "$read_secret" 2>&1 | grep -oE 'FATAL: +invalid configuration parameter name "[a-z_.]+"' | head -1)"
# A startup option that fails ends the connection (FATAL, no SQLSTATE shown by psql).
refused_at_connect() { # options role
  PGOPTIONS=$1 "$BIN/psql" -X -q -A -t -d nile_startup -U "$2" -c "SELECT current_user" 2>&1 | grep -oE 'FATAL: +permission denied to set [a-z ]+' | head -1 | sed 's/ *$//'
}
check "end-user role, role=nile_auth_backend in startup options: refused at connect" "FATAL:  permission denied to set role" \
  "$(refused_at_connect "-c role=nile_auth_backend" startup_web)"
check "end-user role, session_authorization in startup options: refused at connect" "FATAL:  permission denied to set session authorization" \
  "$(refused_at_connect "-c session_authorization=startup_backend" startup_web)"
check "backend role, garbage token in startup options: 28000, not the backend" "28000" \
  "$(state_with "-c nile.auth_token=garbage -c nile.tenant_id=$tenant" startup_backend -c "$read_secret")"
check "backend role, garbage token: is_trusted_backend() is false" "f" \
  "$(PGOPTIONS="-c nile.auth_token=garbage" q -d nile_startup -U startup_backend -c "SELECT nile_auth.is_trusted_backend()")"
check "end-user role with no options is no backend" "f" \
  "$(q -d nile_startup -U startup_web -c "SELECT nile_auth.is_trusted_backend()")"
