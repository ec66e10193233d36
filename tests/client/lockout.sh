#!/usr/bin/env bash
# Lockout under attack from many connections (issue 10, class 4), as plain roles:
#   b) 40 concurrent wrong guesses: against 0.1.0 all were checked against the hash before the
#      lock landed; now at most max_failed_logins (5) are, the rest are refused unchecked;
#   a) the failure-recording worker runs as the bootstrap superuser: a plain role that can
#      create objects in public planted functions its SQL resolved to (found by review of the
#      first shared-memory version); the worker now pins search_path = pg_catalog, pg_temp;
#   c) background-worker slots filled by parallel queries: against 0.1.0 every failure went
#      unrecorded and the right password then logged in; the count is in shared memory now, so
#      the account locks all the same.
# Runs against the server in PGHOST/PGPORT as a superuser (scripts/test.sh sets them).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
DB=nile_lockout

app_db $DB lockout_web
q -d $DB >/dev/null <<'SQL'
GRANT CREATE ON SCHEMA public TO lockout_web;
SELECT nile_auth.signup('many@lockout.test', 'the right password');
SELECT nile_auth.signup('starved@lockout.test', 'the right password');
SQL
web() { "$BIN/psql" -X -q -A -t -d $DB -U lockout_web -v VERBOSITY=sqlstate "$@"; }
# How many wrong passwords the audit log says were checked against one account's hash.
checked() {
  q -d $DB -c "SELECT count(*) FROM nile_auth.audit_log
                WHERE target = (SELECT id::text FROM nile_auth.users WHERE email = '$1')
                  AND event IN ('login.failed', 'account.locked') AND details->>'reason' = 'wrong_password'"
}

# a) Functions planted in public, in the shape of those the worker's SQL calls: if the worker
# ran one, it would run as superuser and leave a row in public.pwned.
web >/dev/null <<'SQL'
CREATE TABLE pwned (who text);
GRANT INSERT ON pwned TO PUBLIC;
CREATE FUNCTION to_timestamp(numeric) RETURNS timestamptz LANGUAGE sql AS $$ INSERT INTO public.pwned VALUES (current_user) RETURNING now() $$;
CREATE FUNCTION to_timestamp(bigint) RETURNS timestamptz LANGUAGE sql AS $$ INSERT INTO public.pwned VALUES (current_user) RETURNING now() $$;
CREATE FUNCTION make_interval(secs numeric) RETURNS interval LANGUAGE sql AS $$ INSERT INTO public.pwned VALUES (current_user) RETURNING interval '1 s' $$;
CREATE FUNCTION make_interval(secs bigint) RETURNS interval LANGUAGE sql AS $$ INSERT INTO public.pwned VALUES (current_user) RETURNING interval '1 s' $$;
SELECT nile_auth.signup('planted@lockout.test', 'the right password');
SQL
for i in 1 2 3 4 5 6; do web -c "SELECT nile_auth.login('planted@lockout.test', 'guess $i')" >/dev/null 2>&1 || true; done
check "the worker locked the account (it ran)" "1" \
  "$(q -d $DB -c "SELECT count(*) FROM nile_auth.audit_log WHERE event = 'account.locked' AND target = (SELECT id::text FROM nile_auth.users WHERE email = 'planted@lockout.test')")"
check "... and ran none of the planted functions" "0" "$(q -d $DB -c "SELECT count(*) FROM public.pwned")"

# b) 40 guesses at once, from 40 connections.
for i in $(seq 1 40); do
  web -c "SELECT nile_auth.login('many@lockout.test', 'guess $i')" >/dev/null 2>&1 &
done
wait
n=$(checked many@lockout.test)
check "40 concurrent guesses: at most 5 checked against the hash (got $n)" yes \
  "$([ "$n" -ge 1 ] && [ "$n" -le 5 ] && echo yes || echo no)"
check "the right password is refused once locked" "ERROR:  28P01" \
  "$(web -c "SELECT nile_auth.login('many@lockout.test', 'the right password')" 2>&1 | head -1)"

# c) Fill the background-worker slots: two sessions run slow parallel queries with as many
# workers as they can get (plain roles may raise max_parallel_workers_per_gather).
web >/dev/null <<'SQL'
CREATE TABLE filler AS SELECT g FROM generate_series(1, 100000) g;
SQL
slow="SET max_parallel_workers_per_gather = 8; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
      SET min_parallel_table_scan_size = 0; SET statement_timeout = '120s';
      SELECT count(*) FROM filler WHERE pg_sleep(0.005) IS NOT NULL"
stop_hogs() {
  q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB' AND usename = 'lockout_web' AND backend_type = 'client backend'" >/dev/null
}
trap stop_hogs EXIT
web -c "$slow" >/dev/null 2>&1 & hog1=$!
web -c "$slow" >/dev/null 2>&1 & hog2=$!
for _ in $(seq 1 50); do  # until the hogs hold every slot
  busy=$(q -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'")
  [ "$busy" -ge 6 ] && break
  sleep 0.2
done
out=$(for i in 1 2 3 4 5 6; do web -c "SELECT nile_auth.login('starved@lockout.test', 'guess $i')" 2>&1 || true; done)
echo "(parallel workers busy: $busy)"
check "with the worker slots full, failures cannot be written down (WARNING)" "yes" \
  "$(grep -q 'WARNING:  01000' <<<"$out" && echo yes || echo "no: $out")"
check "... and the right password is refused all the same" "ERROR:  28P01" \
  "$(web -c "SELECT nile_auth.login('starved@lockout.test', 'the right password')" 2>&1 | grep ERROR | head -1)"
stop_hogs
wait "$hog1" "$hog2" 2>/dev/null || true
