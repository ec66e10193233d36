#!/usr/bin/env bash
# Runs every test from a fresh machine: installs what is missing, then
#   1. Rust unit tests and #[pg_test]s  (cargo pgrx test, in pgrx's own server)
#   2. the Debian package               (scripts/package.sh, checked by tests/package/check.sh)
#   3. the upgrade test                 (tests/upgrade/run.sh: previous release + data -> this one)
#   4. the pg_regress suite             (tests/pg_regress, against a private server, with the
#                                        package installed)
#   5. client tests                     (tests/client/*.sh, against the same server; app_*.sh
#                                        run the client apps of tests/clients)
#   6. the Citus test                   (tests/citus/run.sh: three nodes on loopback; skipped,
#                                        with a message, where Citus is not installed)
#   7. the benchmark runner in --quick mode, to prove it works (its numbers are not judged)
# Prints one closing line "N passed, M failed" and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
export PATH="$HOME/.cargo/bin:$PATH"

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
WORK=${NILE_AUTH_TEST_DIR:-/tmp/nile_auth-test}
PORT=${NILE_AUTH_TEST_PORT:-55432}
LOGS=$WORK-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
passed=0 failed=0

echo "== unit tests and #[pg_test]s"
install -d -o postgres "$WORK-pgtest"
env -u RUST_BACKTRACE cargo pgrx test pg15 --runas postgres --pgdata "$WORK-pgtest/data" 2>&1 | tee "$LOGS/cargo.log"
cargo_status=${PIPESTATUS[0]}
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
  sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$LOGS/cargo.log")
if [ "$cargo_status" -ne 0 ] && ! grep -qE '^test result: FAILED' "$LOGS/cargo.log"; then
  echo "cargo pgrx test failed before running tests"; failed=$((failed + 1))
fi

echo "== Debian package"
if ! deb=$(bash scripts/package.sh --out "$WORK-debs" 2>"$LOGS/package.log"); then
  tail -40 "$LOGS/package.log"; echo "$passed passed, $((failed + 1)) failed"; exit 1
fi
if bash tests/package/check.sh "$deb" >"$LOGS/package-check.log" 2>&1; then
  echo "ok      package: $(basename "$deb")"; passed=$((passed + 1))
else
  echo "FAILED  package: $(basename "$deb")"; cat "$LOGS/package-check.log"; failed=$((failed + 1))
fi

echo "== upgrade from the previous release"
bash tests/upgrade/run.sh "$deb" "$WORK-upgrade" "$((PORT + 2))" 2>&1 | tee "$LOGS/upgrade.log"
upgrade_status=${PIPESTATUS[0]}
passed=$((passed + $(grep -cE '^ok +upgrade:' "$LOGS/upgrade.log")))
upgrade_failed=$(grep -cE '^FAILED +upgrade:' "$LOGS/upgrade.log")
[ "$upgrade_status" -ne 0 ] && [ "$upgrade_failed" -eq 0 ] && upgrade_failed=1
failed=$((failed + upgrade_failed))

echo "== install the package and start a server"
if ! dpkg -i "$deb" >"$LOGS/install.log" 2>&1; then
  cat "$LOGS/install.log"; echo "$passed passed, $((failed + 1)) failed"; exit 1
fi
bash scripts/cluster.sh start "$WORK" "$PORT" || { echo "0 passed, $((failed + 1)) failed"; exit 1; }
trap 'bash scripts/cluster.sh stop "$WORK"' EXIT
export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres

echo "== pg_regress"
mkdir -p "$LOGS/regress"
"$PG_REGRESS" --bindir="$PG_BIN" --host="$WORK" --port="$PORT" --user=postgres \
  --inputdir=tests/pg_regress --outputdir="$LOGS/regress" --dbname=nile_auth_regress \
  $(grep -vE '^\s*(#|$)' tests/pg_regress/schedule) 2>&1 | tee "$LOGS/regress.log"
regress_status=${PIPESTATUS[0]}
regress_failed=$(grep -cE '\.\.\. (FAILED|failed)' "$LOGS/regress.log")
# pg_regress can also stop without a per-test verdict (missing expected file, lost server).
[ "$regress_status" -ne 0 ] && [ "$regress_failed" -eq 0 ] && regress_failed=1
passed=$((passed + $(grep -cE '\.\.\. ok' "$LOGS/regress.log")))
failed=$((failed + regress_failed))
[ -s "$LOGS/regress/regression.diffs" ] && cat "$LOGS/regress/regression.diffs"

echo "== client tests"
for t in tests/client/*.sh; do
  if bash "$t" >"$LOGS/$(basename "$t").log" 2>&1; then
    echo "ok      $t"; passed=$((passed + 1))
  else
    echo "FAILED  $t"; cat "$LOGS/$(basename "$t").log"; failed=$((failed + 1))
  fi
done

echo "== Citus (tests/citus/run.sh; skipped where Citus is not installed)"
bash tests/citus/run.sh "$WORK-citus" "$((PORT + 3))" 2>&1 | tee "$LOGS/citus.log"
citus_status=${PIPESTATUS[0]}
passed=$((passed + $(grep -cE '^ok +citus:' "$LOGS/citus.log")))
citus_failed=$(grep -cE '^FAILED +citus:' "$LOGS/citus.log")
[ "$citus_status" -ne 0 ] && [ "$citus_failed" -eq 0 ] && citus_failed=1
failed=$((failed + citus_failed))

echo "== benchmark runner smoke test (numbers not judged: bench/run.py --quick)"
bash scripts/cluster.sh stop "$WORK"
trap - EXIT
if python3 bench/run.py --quick --no-build --dir "$WORK-bench" --port "$((PORT + 1))" \
     --out "$LOGS/bench-quick.md" >"$LOGS/bench.log" 2>&1; then
  echo "ok      bench/run.py --quick"; passed=$((passed + 1))
else
  echo "FAILED  bench/run.py --quick"; tail -40 "$LOGS/bench.log"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
