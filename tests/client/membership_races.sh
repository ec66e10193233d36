#!/usr/bin/env bash
# Memberships ending while another transaction adds to them (review findings): an owner putting
# a member in a team while another request unlinks that member left the team row behind (the
# unlink did not see the uncommitted team row), and it came back when the member was re-added.
# Likewise add_member committing while delete_tenant ran left a live membership in a deleted
# tenant. Now the unlink waits for the team insert and ends it too (or, under REPEATABLE READ,
# fails with 40001), and delete_tenant waits for add_member and ends the new membership.
# Runs against the server in PGHOST/PGPORT as a superuser (scripts/test.sh sets them).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
DB=nile_membership_races

app_db $DB membership_races_web
web() { "$BIN/psql" -X -q -A -t -d $DB -U membership_races_web -v VERBOSITY=sqlstate "$@"; }
outcome() { local s; s=$(state || true); echo "${s:-none}"; } # the first SQLSTATE, or "none"
login() { q -d $DB -c "SELECT nile_auth.login('$1', '$2')->'token'->>'jwt'"; }
uid() { q -d $DB -c "SELECT id FROM nile_auth.users WHERE email = '$1'"; }

team_race() { # isolation level; prints: the adder's SQLSTATE, the unlinker's, B's team rows, B's live memberships
  local level=$1 tag=${1// /-} tenant ann1 ann2 bob_id team out1
  tenant=$(q -d $DB -c "SELECT nile_auth.signup('ann-$tag@team.test', 'ann password 1', NULL, 'Team Co $tag')->'tenants'->>0")
  q -d $DB -c "SELECT nile_auth.signup('bob-$tag@team.test', 'bob password 1')" >/dev/null
  q -d $DB -c "SELECT nile_auth.add_member('$tenant', 'bob-$tag@team.test')" >/dev/null
  ann1=$(login "ann-$tag@team.test" 'ann password 1')
  ann2=$(login "ann-$tag@team.test" 'ann password 1')
  bob_id=$(uid "bob-$tag@team.test")
  team=$(web -v ON_ERROR_STOP=1 <<SQL | tail -1
BEGIN;
SELECT nile_auth.set_context('$ann1', '$tenant') IS NOT NULL;
SELECT nile_auth.create_team('Team $tag')->>'id';
COMMIT;
SQL
)
  out1=$(mktemp)
  # Ann puts Bob in the team and holds her transaction open for two seconds; meanwhile, in
  # another request, she unlinks Bob from the tenant.
  web >"$out1" 2>&1 <<SQL &
BEGIN ISOLATION LEVEL $level;
SELECT nile_auth.set_context('$ann1', '$tenant');
SELECT nile_auth.add_team_member('$team', '$bob_id');
SELECT pg_sleep(2);
COMMIT;
SQL
  sleep 0.7
  web 2>&1 <<SQL | outcome
BEGIN ISOLATION LEVEL $level;
SELECT nile_auth.set_context('$ann2', '$tenant');
SELECT nile_auth.unlink_user('$bob_id');
COMMIT;
SQL
  wait
  outcome <"$out1"
  rm -f "$out1"
  q -d $DB -c "SELECT count(*) FROM nile_auth.team_members WHERE user_id = '$bob_id'"
  q -d $DB -c "SELECT count(*) FROM nile_auth.tenant_users WHERE tenant_id = '$tenant' AND user_id = '$bob_id' AND deleted IS NULL"
  echo "$tenant $bob_id" >"$TEAM_RACE_OUT"
}

TEAM_RACE_OUT=$(mktemp)
trap 'rm -f "$TEAM_RACE_OUT"' EXIT

# Printed in the order: unlinker's SQLSTATE, adder's SQLSTATE, team rows, live memberships.
check "READ COMMITTED: unlinking a member waits for a team insert and ends it too" \
  "none none 0 0" "$(team_race 'READ COMMITTED' | xargs)"
read -r tenant bob_id <"$TEAM_RACE_OUT"
ann=$(login 'ann-READ-COMMITTED@team.test' 'ann password 1')
bob=$(login 'bob-READ-COMMITTED@team.test' 'bob password 1')
web -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN;
SELECT nile_auth.set_context('$ann', '$tenant');
SELECT nile_auth.add_member('$tenant', 'bob-READ-COMMITTED@team.test');
COMMIT;
SQL
check "READ COMMITTED: a member added again after the race starts with no teams" "0" \
  "$(web -v ON_ERROR_STOP=1 <<SQL | tail -1
BEGIN;
SELECT nile_auth.set_context('$bob', '$tenant') IS NOT NULL;
SELECT cardinality(nile_auth.team_ids());
COMMIT;
SQL
)"
check "REPEATABLE READ: the unlink gets a serialization error; the member keeps the team" \
  "40001 none 1 1" "$(team_race 'REPEATABLE READ' | xargs)"

# add_member vs delete_tenant: Ann adds Bob to her tenant and holds the transaction open; in
# another request she deletes the tenant.
tenant=$(q -d $DB -c "SELECT nile_auth.signup('ann@delete.test', 'ann password 1', NULL, 'Doomed Co')->'tenants'->>0")
q -d $DB -c "SELECT nile_auth.signup('bob@delete.test', 'bob password 1')" >/dev/null
ann1=$(login 'ann@delete.test' 'ann password 1')
ann2=$(login 'ann@delete.test' 'ann password 1')
bob=$(login 'bob@delete.test' 'bob password 1')
out1=$(mktemp)
web >"$out1" 2>&1 <<SQL &
BEGIN;
SELECT nile_auth.set_context('$ann1', '$tenant');
SELECT nile_auth.add_member('$tenant', 'bob@delete.test');
SELECT pg_sleep(2);
COMMIT;
SQL
sleep 0.7
deleted=$(web 2>&1 <<SQL | outcome
BEGIN;
SELECT nile_auth.set_context('$ann2', '$tenant');
SELECT nile_auth.delete_tenant('$tenant');
COMMIT;
SQL
)
wait
added=$(outcome <"$out1")
rm -f "$out1"
check "add_member and delete_tenant at once: both succeed" "none none" "$added $deleted"
check "delete_tenant waits for add_member and ends the new membership too" "0" \
  "$(q -d $DB -c "SELECT count(*) FROM nile_auth.tenant_users WHERE tenant_id = '$tenant' AND deleted IS NULL")"
check "the member added during the deletion cannot use the deleted tenant" "42501" \
  "$(web -c "SELECT nile_auth.set_context('$bob', '$tenant')" 2>&1 | outcome)"
