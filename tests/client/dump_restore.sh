#!/usr/bin/env bash
# pg_dump keeps users, memberships, credentials and signing keys: after a restore into a new
# database the same password still logs in, and a token minted for the old database is refused.
# Runs against the server in PGHOST/PGPORT as a superuser (scripts/test.sh sets them).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

for db in nile_dump_src nile_dump_dst; do "$BIN/dropdb" --if-exists "$db"; done
"$BIN/createdb" nile_dump_src
q -d nile_dump_src -c "CREATE EXTENSION nile_auth" \
  -c "SELECT nile_auth.signup('dump@example.com', 'dump test password', 'Dee', 'dump tenant')" >/dev/null
user_id=$(q -d nile_dump_src -c "SELECT id FROM nile_auth.users WHERE email = 'dump@example.com'")
old_token=$(q -d nile_dump_src -c "SELECT nile_auth.login('dump@example.com', 'dump test password')->'token'->>'jwt'")
old_refresh=$(q -d nile_dump_src -c "SELECT nile_auth.login('dump@example.com', 'dump test password')->>'refreshToken'")

dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
"$BIN/pg_dump" -Fc -d nile_dump_src -f "$dump"
"$BIN/createdb" nile_dump_dst
"$BIN/pg_restore" --exit-on-error -d nile_dump_dst "$dump"

check "user restored with its id" "$user_id" \
  "$(q -d nile_dump_dst -c "SELECT id FROM nile_auth.users WHERE email = 'dump@example.com'")"
check "same password logs in" "$user_id" \
  "$(q -d nile_dump_dst -c "SELECT nile_auth.login('dump@example.com', 'dump test password')->>'id'")"
check "wrong password still refused" "28P01" \
  "$(q -d nile_dump_dst -c "DO \$\$ BEGIN PERFORM nile_auth.login('dump@example.com', 'not the password'); RAISE 'accepted'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 | sed -nE 's/.*NOTICE: +//p')"
check "membership restored" "owner" \
  "$(q -d nile_dump_dst -c "SELECT array_to_string(roles, ',') FROM nile_auth.tenant_users tu JOIN nile_auth.tenants t ON t.id = tu.tenant_id WHERE t.name = 'dump tenant'")"
live_keys="SELECT string_agg(kid || ':' || state, ',' ORDER BY state) FROM nile_auth.signing_keys WHERE state IN ('current', 'standby')"
# CREATE EXTENSION made keys of its own; the dump's current and standby keys take their places back.
check "restored current and standby keys sign and wait again" "$(q -d nile_dump_src -c "$live_keys")" \
  "$(q -d nile_dump_dst -c "$live_keys")"
check "token for the old database refused here (audience)" "28000" \
  "$(q -d nile_dump_dst -c "DO \$\$ BEGIN PERFORM nile_auth.authenticate('$old_token'); RAISE 'accepted'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 | sed -nE 's/.*NOTICE: +//p')"
check "a session survives: its refresh token renews in the restored database" "$user_id" \
  "$(q -d nile_dump_dst -c "SELECT nile_auth.authenticate(nile_auth.refresh('$old_refresh')->'token'->>'jwt')")"
check "audit log restored and still appendable" "t" \
  "$(q -d nile_dump_dst -c "SELECT count(*) FILTER (WHERE event = 'user.signup') = 1 AND count(*) FILTER (WHERE event = 'login.succeeded') >= 2 FROM nile_auth.audit_log")"
check "a fresh token works in the restored database" "$user_id" \
  "$(q -d nile_dump_dst -c "SELECT nile_auth.authenticate(nile_auth.login('dump@example.com', 'dump test password')->'token'->>'jwt')")"
