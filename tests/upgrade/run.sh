#!/usr/bin/env bash
# The upgrade test: the previous release with real data, updated to this build, must keep every
# user, token, membership and isolated row, pass the whole pg_regress suite, and have exactly
# the schema of a fresh CREATE EXTENSION.
#   bash tests/upgrade/run.sh CURRENT_DEB WORK_DIR PORT
# 1. build a .deb of the previous release from a git worktree of its commit (scripts/releases.txt)
#    and install it (dpkg -i); start a private server;
# 2. populate: data through the previous release's functions (sql/populate.sql);
# 3. install CURRENT_DEB over it while the server runs, as a package upgrade does, and restart
#    (the library is preloaded);
# 4. between: before ALTER EXTENSION UPDATE the old SQL definitions call the new library; every
#    old C function's symbol still exists with the same signature, or calling it fails cleanly;
# 5. verify: ALTER EXTENSION nile_auth UPDATE, then logins, tokens, keys, memberships, isolation;
# 6. schema: the updated database's schema equals a fresh install's (tests/upgrade/schema.sql);
# 7. suite: the whole pg_regress suite against a copy of the updated database;
# and no backend crashed on the way.
# Prints "ok   STAGE" / "FAILED STAGE" lines (scripts/test.sh counts them); exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
current_deb=$(realpath "$1") work=$2 port=$3
BIN=/usr/lib/postgresql/15/bin
PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
LIB=/usr/lib/postgresql/15/lib/nile_auth.so
DB=nile_auth_upgrade        # populate.sql names it too (ALTER ROLE ... IN DATABASE)
FRESH=nile_auth_fresh
export PGHOST=$work PGPORT=$port PGUSER=postgres
failed=0
stage() { # name status [details file]
  if [ "$2" -eq 0 ]; then echo "ok     upgrade: $1"; else echo "FAILED upgrade: $1"; failed=1; [ -n "${3:-}" ] && cat "$3"; fi
}
q() { "$BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
regress() { # dbname inputdir test...
  local db=$1 dir=$2; shift 2
  "$PG_REGRESS" --bindir="$BIN" --host="$work" --port="$port" --user=postgres --use-existing \
    --inputdir="$dir" --outputdir="$work-out/$db" --dbname="$db" "$@" >"$work-out/$db.log" 2>&1
  local status=$?
  grep -E '\.\.\. ' "$work-out/$db.log" | sed 's/^/    /'
  [ -s "$work-out/$db/regression.diffs" ] && cat "$work-out/$db/regression.diffs"
  return $status
}

# The previous release: the newest line of scripts/releases.txt. Its tag, when this clone has
# tags, must point at the recorded commit.
read -r base_version base_commit < <(grep -vE '^\s*(#|$)' scripts/releases.txt | tail -1)
if tagged=$(git rev-parse -q --verify "refs/tags/v$base_version^{commit}"); then
  [ "$tagged" = "$base_commit" ] || { echo "FAILED upgrade: tag v$base_version is $tagged, scripts/releases.txt says $base_commit"; exit 1; }
fi
current_version=$(dpkg-deb -f "$current_deb" Version)
echo "   upgrade $base_version ($base_commit) -> $current_version"
[ -f "sql/nile_auth--$base_version--$current_version.sql" ]
stage "upgrade script sql/nile_auth--$base_version--$current_version.sql exists" $?

rm -rf "$work-out" && mkdir -p "$work-out"
src=$work-src
git worktree remove --force "$src" >/dev/null 2>&1; rm -rf "$src"; git worktree prune
git worktree add --detach "$src" "$base_commit" >"$work-out/worktree.log" 2>&1 || { stage "worktree of $base_version" 1 "$work-out/worktree.log"; exit 1; }
trap 'git worktree remove --force "$src" >/dev/null 2>&1; bash scripts/cluster.sh stop "$work"' EXIT
base_deb=$(bash scripts/package.sh --src "$src" --out "$work-out/debs" 2>"$work-out/base-build.log")
stage "build the $base_version package" $? "$work-out/base-build.log"
dpkg -i "$base_deb" >"$work-out/dpkg-base.log" 2>&1
stage "install the $base_version package" $? "$work-out/dpkg-base.log"
[ "$failed" -eq 0 ] || exit 1

bash scripts/cluster.sh start "$work" "$port" || { echo "FAILED upgrade: server start"; exit 1; }
"$BIN/createdb" "$DB"
regress "$DB" tests/upgrade populate
stage "populate $base_version" $?

# The package upgrade, with the server running and no ALTER EXTENSION yet.
dpkg -i "$current_deb" >"$work-out/dpkg-current.log" 2>&1
stage "install the $current_version package over $base_version" $? "$work-out/dpkg-current.log"
# The preloaded library is the postmaster's copy: the new one runs after a restart.
bash scripts/cluster.sh restart "$work" "$port"
stage "restart with the $current_version library preloaded" $?
started=$(q -d postgres -c "SELECT pg_postmaster_start_time()")
"$BIN/createdb" "$FRESH" && q -d "$FRESH" -c "CREATE EXTENSION nile_auth"
stage "fresh CREATE EXTENSION of $current_version" $?

# Old SQL definitions and the new library: (name|symbol|arguments|result) of every C function.
c_functions="SELECT p.oid::regprocedure, p.prosrc, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid)
               FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
              WHERE l.lanname = 'c' AND p.pronamespace = 'nile_auth'::regnamespace ORDER BY 1"
q -F '|' -d "$DB" -c "$c_functions" >"$work-out/old-functions.txt"
q -F '|' -d "$FRESH" -c "$c_functions" >"$work-out/new-functions.txt"
nm -D --defined-only "$LIB" | awk '{print $3}' | sort -u >"$work-out/symbols"
: >"$work-out/symbols.txt"
while IFS='|' read -r fn symbol args result; do
  if ! grep -qx "$symbol" "$work-out/symbols"; then
    # Gone from the library: a call must be a clean "could not find function" (42883).
    call=$(q -d "$DB" -c "SELECT format('SELECT %s(%s)', p.oid::regproc, coalesce(string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY n), ''))
                             FROM pg_proc p LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, n) ON true
                            WHERE p.oid = '$fn'::regprocedure GROUP BY p.oid")
    state=$(q -d "$DB" -c "DO \$\$ BEGIN EXECUTE \$q\$$call\$q\$; RAISE NOTICE 'no error'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 | sed -nE 's/.*NOTICE: +//p')
    [ "$state" = 42883 ] || echo "$fn: its symbol $symbol is gone, and calling it gave [$state], not 42883" >>"$work-out/symbols.txt"
  else
    # Still there: the new code behind it must expect the same arguments and result, or old SQL
    # calling it would hand it the wrong types. A changed signature needs a new Rust fn name.
    awk -F'|' -v s="$symbol" -v a="$args" -v r="$result" -v f="$fn" \
      '$2 == s && ($3 != a || $4 != r) {print f ": symbol " s " now belongs to " $1 " returning " $4}' \
      "$work-out/new-functions.txt" >>"$work-out/symbols.txt"
  fi
done <"$work-out/old-functions.txt"
[ ! -s "$work-out/symbols.txt" ]
stage "every $base_version C function keeps its symbol and signature, or fails cleanly" $? "$work-out/symbols.txt"
regress "$DB" tests/upgrade between
stage "$base_version SQL on the $current_version library, before ALTER EXTENSION UPDATE" $?

regress "$DB" tests/upgrade verify
stage "ALTER EXTENSION UPDATE keeps users, passwords, tokens, keys, memberships, isolation" $?

q -d "$DB" -f tests/upgrade/schema.sql >"$work-out/schema-updated.txt" &&
  q -d "$FRESH" -f tests/upgrade/schema.sql >"$work-out/schema-fresh.txt"
stage "describe both schemas" $?
diff -u --label "fresh CREATE EXTENSION ($current_version)" --label "updated from $base_version" \
  "$work-out/schema-fresh.txt" "$work-out/schema-updated.txt" >"$work-out/schema.diff"
same=$?  # taken before anything else runs: a $(...) in stage's arguments would reset $?
facts=$(wc -l <"$work-out/schema-fresh.txt")
stage "updated schema equals a fresh install ($facts facts compared)" $same "$work-out/schema.diff"

"$BIN/createdb" -T "$DB" "$DB-suite"
regress "$DB-suite" tests/pg_regress $(grep -vE '^\s*(#|$)' tests/pg_regress/schedule)
stage "the pg_regress suite on a copy of the updated database" $?

[ "$(q -d postgres -c "SELECT pg_postmaster_start_time()")" = "$started" ] &&
  ! grep -E 'terminated by signal|was terminated|server process .* exited with exit code [^0]' "$work/server.log" >"$work-out/crashes.txt"
stage "no backend crashed" $? "$work-out/crashes.txt"
exit "$failed"
