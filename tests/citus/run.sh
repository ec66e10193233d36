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
  --inputdir=tests/citus --outputdir="$OUT" setup story hostile >"$OUT/regress.log" 2>&1
while read -r line; do
  name=$(sed -E 's/^test ([a-z_]+) .*/\1/' <<<"$line")
  if grep -qE '\.\.\. ok' <<<"$line"; then echo "ok      citus: $name"; else echo "FAILED  citus: $name"; status=1; fi
done < <(grep -E '^test [a-z_]+ +\.\.\. ' "$OUT/regress.log")
grep -qE '^test [a-z_]+ +\.\.\. ' "$OUT/regress.log" || { cat "$OUT/regress.log"; echo "FAILED  citus: pg_regress"; status=1; }
[ -s "$OUT/regression.diffs" ] && cat "$OUT/regression.diffs"
exit $status
