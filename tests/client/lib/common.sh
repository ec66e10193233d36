# Helpers sourced by tests/client/*.sh (this file is not a test: scripts/test.sh runs only the
# scripts directly in tests/client). They run against the server in PGHOST/PGPORT.
BIN=/usr/lib/postgresql/15/bin
q() { "$BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
check() { # name expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected [$2], got [$3]"; exit 1; fi
}
fresh_db() { # name: an empty database, dropped first if an earlier run left it
  "$BIN/dropdb" --if-exists "$1"
  "$BIN/createdb" "$1"
}
