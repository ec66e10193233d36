#!/usr/bin/env bash
# Scale-out on Citus (issue 15, docs/scale-out.md): a coordinator and two workers on loopback with
# citus and nile_auth preloaded; nile_auth.distribute(), then pg_regress runs the Clustify story
# and the hostile cases against the coordinator (tests/citus/sql), and pgbench compares an
# isolated lookup with the same lookup with an explicit WHERE. Citus is in neither Debian nor the
# package registries: without it installed for this PostgreSQL, this says so and passes nothing.
#   tests/citus/run.sh [DIR] [PORT]     nodes on PORT (coordinator), PORT+1 and PORT+2
# Prints "ok      citus: ..." or "FAILED  citus: ..." lines (counted by scripts/test.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
PG_BIN=/usr/lib/postgresql/15/bin
PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/citus.control" ]; then
  echo "skip    citus: Citus is not installed for PostgreSQL 15 on this machine (docs/scale-out.md)"
  exit 0
fi
DIR=${1:-/tmp/nile_auth-citus} PORT=${2:-55480}
OUT=$DIR-out
rm -rf "$OUT" && mkdir -p "$OUT"
nodes=(0 1 2)
sql() { local n=$1; shift; sudo -u postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR$n" -p $((PORT + n)) -U postgres "$@" postgres; }
stop_all() { for n in "${nodes[@]}"; do bash scripts/cluster.sh stop "$DIR$n"; done; }
trap stop_all EXIT
for n in "${nodes[@]}"; do
  NILE_AUTH_PRELOAD=citus,nile_auth bash scripts/cluster.sh start "$DIR$n" $((PORT + n)) || { echo "FAILED  citus: node $n did not start"; exit 1; }
  sql "$n" -c "CREATE EXTENSION citus" >/dev/null || { echo "FAILED  citus: CREATE EXTENSION citus on node $n"; exit 1; }
done
# Context reaches the workers only as SET LOCAL statements, which Citus forwards with this.
sql 0 >/dev/null <<SQL || { echo "FAILED  citus: cluster set-up"; exit 1; }
ALTER SYSTEM SET citus.propagate_set_commands = 'local';
SELECT pg_reload_conf();
SELECT citus_set_coordinator_host('localhost', $PORT);
SELECT citus_add_node('localhost', $((PORT + 1)));
SELECT citus_add_node('localhost', $((PORT + 2)));
SQL

status=0
"$PG_REGRESS" --bindir="$PG_BIN" --host="${DIR}0" --port="$PORT" --user=postgres --use-existing --dbname=postgres \
  --inputdir=tests/citus --outputdir="$OUT" setup story hostile accounts forwarding >"$OUT/regress.log" 2>&1
while read -r line; do
  name=$(sed -E 's/^test ([a-z_]+) .*/\1/' <<<"$line")
  if grep -qE '\.\.\. ok' <<<"$line"; then echo "ok      citus: $name"; else echo "FAILED  citus: $name"; status=1; fi
done < <(grep -E '^test [a-z_]+ +\.\.\. ' "$OUT/regress.log")
grep -qE '^test [a-z_]+ +\.\.\. ' "$OUT/regress.log" || { cat "$OUT/regress.log"; echo "FAILED  citus: pg_regress"; status=1; }
[ -s "$OUT/regression.diffs" ] && cat "$OUT/regression.diffs"

# pgbench, one run mixing three scripts (per-script rates, so the same load for each): a cluster
# looked up by id with the policy alone (every shard is asked), the same with an explicit
# WHERE tenant_id (one shard), and that lookup hand-written on a plain copy of the table with no
# policy and no context (what the isolation costs on top). Recorded in docs/scale-out.md.
bench() {
  local token tenant id dir
  sql 0 >/dev/null <<SQL || return 1
CREATE TABLE clustify.plain_clusters (LIKE clustify.clusters);
SELECT create_distributed_table('clustify.plain_clusters', 'tenant_id', colocate_with => 'clustify.clusters');
INSERT INTO clustify.plain_clusters SELECT * FROM clustify.clusters;
GRANT SELECT ON clustify.plain_clusters TO clustify_web;
SQL
  token=$(sql 0 -At -c "SELECT nile_auth.login('shaun@clustify.dev', 'shaun password 1')->'token'->>'jwt'") || return 1
  read -r tenant id < <(sql 0 -At -F ' ' -c "SELECT c.tenant_id, c.id FROM clustify.clusters c JOIN nile_auth.tenants t ON t.id = c.tenant_id
                                              WHERE t.name = 'Managed Expenses' ORDER BY c.name LIMIT 1") || return 1
  dir=$(mktemp -d) && chmod 755 "$dir"
  printf '%s\n' "BEGIN;" "SELECT nile_auth.set_context('$token', '$tenant');" \
    "SELECT name FROM clustify.clusters WHERE id = '$id';" "COMMIT;" >"$dir/policy_only.sql"
  printf '%s\n' "BEGIN;" "SELECT nile_auth.set_context('$token', '$tenant');" \
    "SELECT name FROM clustify.clusters WHERE tenant_id = '$tenant' AND id = '$id';" "COMMIT;" >"$dir/with_where.sql"
  printf '%s\n' "BEGIN;" "SELECT name FROM clustify.plain_clusters WHERE tenant_id = '$tenant' AND id = '$id';" "COMMIT;" >"$dir/hand_written.sql"
  sudo -u postgres "$PG_BIN/pgbench" -n -h "${DIR}0" -p "$PORT" -U clustify_web -c 2 -j 2 -T "${CITUS_BENCH_SECONDS:-15}" \
    -f "$dir/policy_only.sql" -f "$dir/with_where.sql" -f "$dir/hand_written.sql" postgres >"$OUT/pgbench.log" 2>&1
  local rc=$?
  rm -rf "$dir"
  [ $rc -eq 0 ] || return 1
  python3 - "$OUT/pgbench.log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ms = {name: float(latency) for name, latency in
      re.findall(r'SQL script \d+: \S+/(\w+)\.sql\n(?:.*\n)*? - latency average = ([\d.]+) ms', text)}
if sorted(ms) != ['hand_written', 'policy_only', 'with_where'] or 'number of failed transactions: 0 ' not in text:
    sys.exit(1)
print(f"bench   citus: latency (ms) policy only {ms['policy_only']:.2f}, with WHERE {ms['with_where']:.2f}, "
      f"hand-written {ms['hand_written']:.2f}; with WHERE is {ms['policy_only'] / ms['with_where']:.1f}x as fast as policy only "
      f"and {ms['hand_written'] / ms['with_where']:.2f} of hand-written")
PY
}
if bench; then echo "ok      citus: pgbench"; else cat "$OUT/pgbench.log" 2>/dev/null; echo "FAILED  citus: pgbench"; status=1; fi
exit $status
