#!/usr/bin/env bash
# Secrets stay out of shared views and the server log (issue 10, class 7; the calls of issue 11):
# - a failing nile_auth call that carries a password or token does not write its statement to
#   the server log (before, the STATEMENT line held the password);
# - the documented per-request call, set_context($1, $2) with bind parameters, shows other
#   sessions of the same role only "$1" in pg_stat_activity, never the token.
# Runs against the server in PGHOST/PGPORT as a superuser; the server log is $PGHOST/server.log
# (scripts/cluster.sh).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
LOG=$PGHOST/server.log
in_log() { grep -c -- "$1" "$LOG" || true; }

app_db nile_secrets secrets_web
q -d nile_secrets >/dev/null <<'SQL'
SELECT nile_auth.signup('sam@secrets.test', 'sam password 1', NULL, 'sam co');
SQL
tenant=$(q -d nile_secrets -c "SELECT id FROM nile_auth.tenants WHERE name = 'sam co'")
token=$(q -d nile_secrets -U secrets_web -c "SELECT nile_auth.login('sam@secrets.test', 'sam password 1')->'token'->>'jwt'")
marker=$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')

# Failing calls with a secret in their text: the secret reaches no log line.
for sql in "SELECT nile_auth.login('sam@secrets.test', 'wrong-$marker')" \
           "SELECT nile_auth.authenticate('tok-$marker')" \
           "SELECT nile_auth.set_context('tok-$marker')" \
           "SELECT nile_auth.change_password('old-$marker', 'new password 1')" \
           "SELECT nile_auth.change_email('new@secrets.test', 'pw-$marker')" \
           "SELECT nile_auth.verify_email('tok-$marker')" \
           "SELECT nile_auth.accept_invitation('inv-$marker')" \
           "SELECT nile_auth.refresh('nrt_$marker')" \
           "SELECT nile_auth.signup('new@secrets.test', 'pw-$marker', NULL, NULL, 'inv-$marker')"; do
  "$BIN/psql" -X -q -d nile_secrets -U secrets_web -c "$sql" >/dev/null 2>&1 || true
done
# The error itself is still logged (with its SQLSTATE's message), just not the statement.
"$BIN/psql" -X -q -d nile_secrets -c "SELECT 1" >/dev/null  # a round trip, so the log is written
check "failed calls are logged" "yes" "$([ "$(in_log 'invalid email or password')" -gt 0 ] && echo yes)"
check "no password or token from a failed call in the server log" "0" "$(in_log "$marker")"
# The control: an error that is not nile_auth's does write its statement, marker and all (as
# every failed login did before), so the check above can fail.
"$BIN/psql" -X -q -d nile_secrets -c "SELECT 1 / 0 AS \"control-$marker\"" >/dev/null 2>&1 || true
"$BIN/psql" -X -q -d nile_secrets -c "SELECT 1" >/dev/null
check "the control: another error's statement is logged" "1" "$(in_log "STATEMENT: .*control-$marker")"

# set_context with bind parameters (pgbench -M extended binds :token and :tenant).
# (A token's last 40 characters are its signature: its header is the same for every token of a key.)
script=$(mktemp)
trap 'rm -f "$script"' EXIT
printf 'BEGIN;\nSELECT nile_auth.set_context(:token, :tenant::uuid) IS NOT NULL, pg_sleep(3);\nCOMMIT;\n' >"$script"
"$BIN/pgbench" -n -M extended -t 1 -f "$script" -D "token=$token" -D "tenant=$tenant" -U secrets_web nile_secrets >"$script.out" 2>&1 &
bench=$!
seen=""
for _ in $(seq 50); do
  seen=$(q -d nile_secrets -U secrets_web -c "SELECT query FROM pg_stat_activity WHERE query LIKE '%set_context%' AND pid <> pg_backend_pid()")
  [ -n "$seen" ] && break
  sleep 0.1
done
wait "$bench" || { cat "$script.out"; exit 1; }
check "another session of the role sees the parameterised call" "SELECT nile_auth.set_context(\$1, \$2::uuid) IS NOT NULL, pg_sleep(3);" "$seen"
check "... and not the token" "0" "$(printf '%s' "$seen" | grep -c "${token: -40}" || true)"
check "set_context ran and committed" "yes" "$(grep -q 'number of transactions actually processed: 1' "$script.out" && echo yes)"
check "the token is in no log line" "0" "$(in_log "${token: -40}")"
rm -f "$script.out"
