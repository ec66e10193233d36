#!/usr/bin/env bash
# Through a real pgbouncer in transaction mode with ONE server connection, successive clients
# share a backend. SET LOCAL of nile.auth_token / nile.tenant_id (or the is_local forms of
# authenticate and set_tenant) scopes identity and tenant to one transaction, and nothing of one
# client's context is visible to the next. Runs against the server in PGHOST/PGPORT.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
BOUNCER_PORT=${NILE_AUTH_BOUNCER_PORT:-6544}

app_db nile_pool pool_web
q -d nile_pool >/dev/null <<'SQL'
CREATE TABLE notes (id serial PRIMARY KEY, body text);
SELECT nile_auth.enable_tenant_isolation('notes');
GRANT SELECT, INSERT ON notes TO pool_web;
GRANT USAGE ON SEQUENCE notes_id_seq TO pool_web;
-- Two users, each alone in a tenant with one note (written as the trusted backend).
SELECT nile_auth.signup('alice@pool.test', 'alice password', NULL, 'alice co');
SELECT nile_auth.signup('bob@pool.test', 'bob password', NULL, 'bob co');
SQL
tenant_of() { q -d nile_pool -c "SELECT tu.tenant_id FROM nile_auth.tenant_users tu JOIN nile_auth.users u ON u.id = tu.user_id WHERE u.email = '$1'"; }
alice_tenant=$(tenant_of alice@pool.test)
bob_tenant=$(tenant_of bob@pool.test)
q -d nile_pool -c "SET nile.tenant_id = '$alice_tenant'" -c "INSERT INTO notes (body) VALUES ('alice secret')"
q -d nile_pool -c "SET nile.tenant_id = '$bob_tenant'" -c "INSERT INTO notes (body) VALUES ('bob secret')"
alice_token=$(q -d nile_pool -c "SELECT nile_auth.login('alice@pool.test', 'alice password')->'token'->>'jwt'")
bob_token=$(q -d nile_pool -c "SELECT nile_auth.login('bob@pool.test', 'bob password')->'token'->>'jwt'")

start_pgbouncer nile_pool "$BOUNCER_PORT" pool_web

# Each call is a new client connection to pgbouncer, all sharing one server connection.
client() { q -h 127.0.0.1 -p "$BOUNCER_PORT" -U pool_web -d nile_pool "$@"; }

pid_alice=$(client -c "BEGIN" -c "SET LOCAL nile.auth_token = '$alice_token'" -c "SET LOCAL nile.tenant_id = '$alice_tenant'" \
  -c "SELECT pg_backend_pid() || ':' || string_agg(body, ',') FROM notes" -c "COMMIT")
check "alice sees her note (SET LOCAL)" "alice secret" "${pid_alice#*:}"
after=$(client -c "SELECT pg_backend_pid() || ':' || coalesce(nile_auth.user_id()::text, 'none') || ':' || coalesce(nile_auth.tenant_id()::text, 'none') || ':' || count(*) FROM notes")
check "next client is on the same server connection" "${pid_alice%%:*}" "${after%%:*}"
check "next client inherits no identity, tenant or rows" "none:none:0" "${after#*:}"

bob=$(client -c "BEGIN" -c "SELECT nile_auth.authenticate('$bob_token', true)" -c "SELECT nile_auth.set_tenant('$bob_tenant', true)" \
  -c "SELECT pg_backend_pid() || ':' || string_agg(body, ',') FROM notes" -c "COMMIT" | tail -1)
check "bob on the same connection" "${pid_alice%%:*}" "${bob%%:*}"
check "bob sees only his note (is_local functions)" "bob secret" "${bob#*:}"

# Bob holding his own token tries alice's tenant in his transaction: refused.
cross=$(client -c "BEGIN" -c "SET LOCAL nile.auth_token = '$bob_token'" -c "SET LOCAL nile.tenant_id = '$alice_tenant'" \
  -c "DO \$\$ BEGIN PERFORM count(*) FROM notes; RAISE NOTICE 'no error'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" -c "COMMIT" 2>&1 | sed -nE 's/.*NOTICE: +//p')
check "bob refused alice's tenant" "42501" "$cross"

last=$(client -c "SELECT coalesce(nile_auth.user_id()::text, 'none') || ':' || count(*) FROM notes")
check "after all of that, a fresh client has nothing" "none:0" "$last"
