#!/usr/bin/env bash
# The last-owner rule under concurrency (issue 10, class 6): against 0.1.0, two owners leaving
# a tenant at the same moment each saw the other stay, and the tenant was left with no owner.
# Now the second waits for the first and then is refused (55000), or, under REPEATABLE READ,
# fails with a serialization error (40001) instead of counting a stale snapshot.
# Runs against the server in PGHOST/PGPORT as a superuser (scripts/test.sh sets them).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
DB=nile_last_owner

app_db $DB last_owner_web
web() { "$BIN/psql" -X -q -A -t -d $DB -U last_owner_web -v VERBOSITY=sqlstate "$@"; }

race() { # isolation level; prints the second owner's SQLSTATE, then the owners left
  local level=$1 tag=${1// /-} tenant ann bob ann_id bob_id
  tenant=$(q -d $DB -c "SELECT nile_auth.signup('ann-$tag@owner.test', 'ann password 1', NULL, 'Co $tag')->'tenants'->>0")
  q -d $DB -c "SELECT nile_auth.signup('bob-$tag@owner.test', 'bob password 1')" >/dev/null
  q -d $DB -c "SELECT nile_auth.add_member('$tenant', 'bob-$tag@owner.test', '{owner}')" >/dev/null
  ann=$(q -d $DB -c "SELECT nile_auth.login('ann-$tag@owner.test', 'ann password 1')->'token'->>'jwt'")
  bob=$(q -d $DB -c "SELECT nile_auth.login('bob-$tag@owner.test', 'bob password 1')->'token'->>'jwt'")
  ann_id=$(q -d $DB -c "SELECT id FROM nile_auth.users WHERE email = 'ann-$tag@owner.test'")
  bob_id=$(q -d $DB -c "SELECT id FROM nile_auth.users WHERE email = 'bob-$tag@owner.test'")
  # Ann leaves and holds her transaction open for two seconds; Bob leaves meanwhile.
  web >/dev/null 2>&1 <<SQL &
BEGIN ISOLATION LEVEL $level;
SELECT nile_auth.set_context('$ann', '$tenant');
SELECT nile_auth.unlink_user('$ann_id', '$tenant');
SELECT pg_sleep(2);
COMMIT;
SQL
  sleep 0.7
  web 2>&1 <<SQL | state || true
BEGIN ISOLATION LEVEL $level;
SELECT nile_auth.set_context('$bob', '$tenant');
SELECT nile_auth.unlink_user('$bob_id', '$tenant');
COMMIT;
SQL
  wait
  q -d $DB -c "SELECT count(*) FROM nile_auth.tenant_users WHERE tenant_id = '$tenant' AND deleted IS NULL AND 'owner' = ANY (roles)"
}

check "READ COMMITTED: the second owner to leave at once is refused; one owner stays" "55000 1" "$(race 'READ COMMITTED' | xargs)"
check "REPEATABLE READ: the second owner gets a serialization error; one owner stays" "40001 1" "$(race 'REPEATABLE READ' | xargs)"
